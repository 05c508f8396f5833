"""Latent distance to the goal against the true distance in px, near the goal along oracle routes:
the scale in which ``PlannerConfig.time_penalty`` and ``arrive_radius`` are set.

    python -m eval.calibrate [--checkpoint PATH] [--tasks 100] [--seed 0] [--speed 1.2] [--threads 1] [--json out.json]

For each task of an evaluation seed, the oracle's route (``eval.baselines.scripted.oracle_route``,
true dynamics, privileged) from the start to the goal is walked; at every latent step of the model
(every ``action_chunk`` env steps) the planning distance ``model.planning_distance`` to the encoded
goal frame is taken twice: of the encoded true frame (``encoded``) and of the latent the model
imagines by unrolling the route's actions from the encoded start (``imagined``: what the planner
scores). Each is binned by the true distance to the goal (px); per bin the median latent distance
and the median latent distance per px are printed. A second table gives the imagined distance where
the route first comes within 4.5 px of the goal, by the route's length: the drift of the unroll,
the floor below which a long plan that truly arrives is not scored.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from eval.baselines.scripted import oracle_route
from eval.runner import check_counts
from eval.tasks import protocol_tasks
from tworooms_env import core
from tworooms_env.cli import ConfigCLI, run_cli

BINS = ((0.0, 2.0), (2.0, 4.5), (4.5, 8.0), (8.0, 16.0), (16.0, 32.0))  # px from the goal
LENGTH_BINS = ((0, 20), (20, 40), (40, 60), (60, 90), (90, 201))  # env steps of the route to its arrival


@torch.no_grad()
def latent_distance_scale(model: Any, seed: int = 0, tasks: int = 100, steps: int = 200, speed: float | None = None,
                          bins: Sequence[tuple[float, float]] = BINS,
                          length_bins: Sequence[tuple[int, int]] = LENGTH_BINS) -> dict[str, Any]:
    """The calibration table of ``model`` on tasks 0 .. tasks - 1 of evaluation ``seed``.

    ``speed`` (px per step, None: 2.45) slows the oracle's route down, to see how the model's drift
    depends on the step size. Returns {"bins": [{"px": [lo, hi], "n", "encoded_median", "encoded_per_px", "imagined_median",
    "imagined_per_px"}], "arrival": [{"steps": [lo, hi], "n", "imagined_median", "imagined_p90"}]}: medians
    over route points by true distance, and the imagined distance where a route of lo..hi steps first
    comes within 4.5 px of the goal (the floor a plan that truly arrives is scored with).
    """
    device = next(iter(model.parameters()), torch.zeros(0)).device if hasattr(model, "parameters") else torch.device("cpu")
    k = int(getattr(model, "action_chunk", 1) or 1)
    steps -= steps % k
    t = protocol_tasks(seed, tasks)
    route = oracle_route(t["start"], t["goal"], t["wall_x"], t["door_y"], steps, speed)  # [N, T, 2]
    pos = core.rollout_positions(t["start"], route, t["wall_x"], t["door_y"])[:, ::k]  # [N, T/k + 1, 2]
    true_d = np.linalg.norm(pos - t["goal"][:, None], axis=-1)
    n, m = true_d.shape
    # the route up to one latent step after its first arrival within 1 px (it stays there after)
    arrive = np.where((true_d < 1.0).any(axis=1), (true_d < 1.0).argmax(axis=1), m - 1)
    keep = np.arange(m)[None, :] <= np.minimum(arrive + 1, m - 1)[:, None]

    def encode(points: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        frames = core.render_frames(points, t["wall_x"][rows], t["door_y"][rows])
        return torch.cat([model.encode(torch.from_numpy(f).to(device)) for f in np.array_split(frames, max(1, len(frames) // 512))])

    z_goal = encode(t["goal"], np.arange(n))
    z0 = encode(t["start"], np.arange(n))
    imagined = model.unroll(z0, torch.as_tensor(route, dtype=torch.float32, device=device))  # [N, T/k + 1, D]
    d_imag = model.planning_distance(imagined, z_goal[:, None].expand_as(imagined)).cpu().numpy()
    near = keep & (true_d < bins[-1][1])  # encode only the true frames the bins use
    rows, cols = np.nonzero(near)
    z_true = encode(pos[rows, cols], rows)
    d_enc = np.full_like(true_d, np.nan)
    d_enc[rows, cols] = model.planning_distance(z_true, z_goal[rows]).cpu().numpy()

    table = []
    for lo, hi in bins:
        sel = keep & (true_d >= lo) & (true_d < hi)
        row = {"px": [lo, hi], "n": int(sel.sum())}
        for name, d in (("encoded", d_enc), ("imagined", d_imag)):
            row[f"{name}_median"] = float(np.median(d[sel])) if sel.any() else float("nan")
            ratio = d[sel] / np.maximum(true_d[sel], 1e-6)
            row[f"{name}_per_px"] = float(np.median(ratio[true_d[sel] >= 1.0])) if (true_d[sel] >= 1.0).any() else float("nan")
        table.append(row)
    # the imagined distance where the route first comes within 4.5 px (success), by its length in steps
    hit = true_d < core.SUCCESS_RADIUS
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    arrival = []
    for lo, hi in length_bins:
        sel = (first >= 0) & (first * k >= lo) & (first * k < hi)
        at = d_imag[np.flatnonzero(sel), first[sel]]
        arrival.append({"steps": [lo, hi], "n": int(sel.sum()),
                        "imagined_median": float(np.median(at)) if sel.any() else float("nan"),
                        "imagined_p90": float(np.quantile(at, 0.9)) if sel.any() else float("nan")})
    return {"seed": seed, "tasks": tasks, "speed": speed or core.MAX_STEP_NORM, "action_chunk": k, "bins": table, "arrival": arrival}


def format_calibration(result: dict[str, Any]) -> str:
    lines = ["| true distance (px) | points | encoded: median | per px | imagined: median | per px |",
             "|---|---|---|---|---|---|"]
    for r in result["bins"]:
        lines.append(f"| {r['px'][0]:g}-{r['px'][1]:g} | {r['n']} | {r['encoded_median']:.3f} | {r['encoded_per_px']:.3f} "
                     f"| {r['imagined_median']:.3f} | {r['imagined_per_px']:.3f} |")
    lines += ["", "| route length to arrival (steps) | routes | imagined distance at arrival: median | p90 |", "|---|---|---|---|"]
    for r in result["arrival"]:
        lines.append(f"| {r['steps'][0]}-{r['steps'][1]} | {r['n']} | {r['imagined_median']:.3f} | {r['imagined_p90']:.3f} |")
    return "\n".join(lines)


@dataclass
class CalibrateConfig:
    """The options of ``python -m eval.calibrate``."""

    checkpoint: str | None = None  # world model (none: the shipped pixel model)
    seed: int = 0  # evaluation seed of the tasks (a development seed)
    tasks: int = 100  # tasks 0 .. tasks - 1
    speed: float = 0.0  # the oracle route's largest step in px (0: the env's 2.45 px)
    threads: int = 1  # torch CPU threads (0: torch's default)
    json: str = ""  # write the table to this JSON file

    def __post_init__(self) -> None:
        check_counts(self, at_least_one=("tasks",), non_negative=("threads", "seed"))


CLI = ConfigCLI(CalibrateConfig, prog="python -m eval.calibrate", description=__doc__.splitlines()[0])


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from jepa_agent.world_model import load_world_model

    result = latent_distance_scale(load_world_model(args.checkpoint), args.seed, args.tasks, speed=args.speed or None)
    result["checkpoint"] = args.checkpoint
    print(format_calibration(result))
    if args.json:
        from eval.metrics import write_json

        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
