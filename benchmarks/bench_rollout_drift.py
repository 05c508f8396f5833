"""How far a world model's imagined rollout drifts from the true one, on planner-like motions.

    python -m benchmarks.bench_rollout_drift [CHECKPOINT ...]    # default: the shipped checkpoint

Decoded-position error (px, position probe on the imagined latent) after t steps of one constant
action, from 1,000 random free starts per family: straight at 1.0 and 2.45 px/step, and straight
along the centre wall at 2.45 px/step starting 0.5-2 px from its face (where plans slide to the door);
and the oracle baseline's 90-step door route (the planner's horizon) from two kinds of start: an
evaluation task's start, and a stall state (0-3 px from the centre wall, the goal 3-12 px across it),
where the agent fails when the model imagines this detour drifting (``eval.diagnose``).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from eval.baselines.scripted import OraclePolicy

from jepa_agent.world_model import load_world_model
from tworooms_env import core
from tworooms_env import random_walk as rw

STEPS = (5, 10, 20, 30, 40, 60, 90)


def families(n: int = 1000, horizon: int = max(STEPS), seed: int = 1) -> dict:
    """name -> (start [n, 2], pixel actions [n, horizon, 2], wall_x, door_y)."""
    rng = np.random.default_rng(seed)
    wall_x, door_y = core.sample_layouts(rng, n)
    start = rw.sample_free_starts(rng, wall_x, door_y).astype(np.float64)
    heading = rng.uniform(0, 2 * np.pi, n)
    unit = np.stack([np.cos(heading), np.sin(heading)], 1)
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    face = core.WALL_HALF_WIDTH + core.CONTACT_MARGIN
    wall_start = np.stack([wall_x + side * (face + rng.uniform(0.5, 2.0, n)), rng.uniform(10, 54, n)], 1)
    along = np.zeros((n, 2))
    along[:, 1] = np.where(wall_start[:, 1] < 32, 1.0, -1.0) * core.MAX_STEP_NORM
    out = {f"straight {sp} px": (start, unit * sp) for sp in (1.0, core.MAX_STEP_NORM)}
    out["along the wall"] = (wall_start, along)
    fams = {k: (s, np.repeat(a[:, None], horizon, 1), wall_x, door_y) for k, (s, a) in out.items()}
    task_start, task_goal = core.sample_start_goal(rng, wall_x, door_y)
    fams["door route (task)"] = (task_start, door_routes(task_start, task_goal, wall_x, door_y, horizon), wall_x, door_y)
    stall_side = np.where(task_goal[:, 0] > wall_x, -1.0, 1.0)  # the start room: across from the goal
    stall = np.stack([wall_x + stall_side * (face + rng.uniform(0.0, 3.0, n)), rng.uniform(8, 56, n)], 1)
    stall = rw.clip_to_free(rng, stall, wall_x, door_y).astype(np.float64)
    near_goal = np.stack([wall_x - stall_side * (face + rng.uniform(3.0, 12.0, n)),
                          np.clip(stall[:, 1] + rng.uniform(-8, 8, n), 8, 56)], 1)
    fams["door route (stall)"] = (stall, door_routes(stall, near_goal, wall_x, door_y, horizon), wall_x, door_y)
    return fams


def door_routes(start, goal, wall_x, door_y, horizon: int) -> np.ndarray:
    """The oracle baseline's per-step pixel actions [N, horizon, 2] (true dynamics, privileged)."""
    oracle, pos, out = OraclePolicy(), start.astype(np.float64).copy(), []
    for _ in range(horizon):
        infos = [{"position": p, "goal": g, "wall_x": w, "door_y": d} for p, g, w, d in zip(pos, goal, wall_x, door_y)]
        a = oracle.act_batch(None, None, infos).astype(np.float64) * core.MAX_STEP_NORM
        out.append(a)
        pos = core.step_positions(pos, a, wall_x, door_y)[0]
    return np.stack(out, axis=1)


@torch.no_grad()
def drift(model, fams: dict) -> dict[str, dict[int, float]]:
    k = model.action_chunk
    res = {}
    for name, (start, actions, wall_x, door_y) in fams.items():
        true = core.rollout_positions(start, actions, wall_x, door_y)
        z0 = model.encode(torch.from_numpy(core.render_frames(start, wall_x, door_y)))
        z = model.unroll(z0, torch.as_tensor(actions, dtype=torch.float32))
        res[name] = {t: float(np.linalg.norm(model.probe(z[:, t // k]).numpy() - true[:, t], axis=1).mean())
                     for t in STEPS if t % k == 0}
    return res


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(1)
    paths = (sys.argv[1:] if argv is None else argv) or [None]
    fams = families()
    for path in paths:
        res = drift(load_world_model(path), fams)
        print(f"{path or 'shipped checkpoint'}: decoded-position error (px) at t = " + " / ".join(map(str, STEPS)))
        for name, errs in res.items():
            print(f"  {name:18s} " + " / ".join(f"{errs[t]:.2f}" if t in errs else "-" for t in STEPS))


if __name__ == "__main__":
    main()
