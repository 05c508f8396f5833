"""Why did an episode fail? Model error or search error, at the state where the agent stalled.

    python -m eval.diagnose --checkpoint PATH --seed 1 --tasks 53,63 --json out.json
    python -m eval.diagnose --from-json outputs/eval/jepa_seed1.json     # the failures of an evaluation

Each task is re-run alone (one episode, the agent's default planner). At the state where it ended,
the world model scores three action sequences of the planning horizon with the planner's cost (the
latent distance of the last imagined state to the goal):

- ``plan``: a fresh MPPI plan from that state (what the agent would do next);
- ``door_route``: the oracle baseline's route from that state (privileged: through the door, then
  to the goal), which truly reaches the goal;
- ``stay``: doing nothing.

and the true dynamics say where ``plan`` really ends; the model's position probe says where it
imagines each sequence ends. A plan that the model scores below the door route but that truly ends
far from the goal is a *model* error the planner exploits; a door route scored best but not found
is a *search* error.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import gymnasium
import numpy as np
import torch

import tworooms_env  # noqa: F401 - registers TwoRooms-v0
from eval.runner import check_counts
from eval.baselines.scripted import oracle_route
from jepa_agent.agent import JEPAAgent
from jepa_agent.planners import MPPIPlanner
from tworooms_env import core
from tworooms_env.cli import ConfigCLI, run_cli


@torch.no_grad()
def diagnose_task(agent: JEPAAgent, seed: int, index: int, max_steps: int = 200) -> dict[str, Any]:
    """Re-run task (seed, index) with ``agent`` and diagnose the state it ends in."""
    env = gymnasium.make("TwoRooms-v0", max_episode_steps=max_steps)
    obs, info = env.reset(options={"task_seed": seed, "task_index": index})
    goal_obs = info["goal_obs"]
    agent.reset()
    for _ in range(max_steps):
        obs, _, terminated, truncated, info = env.step(agent.act(obs, goal_obs))
        if terminated or truncated:
            break
    env.close()
    pos, goal = np.asarray(info["position"], np.float64), np.asarray(info["goal"], np.float64)
    wall_x, door_y = int(info["wall_x"]), int(info["door_y"])
    model = agent.model
    frames = core.render_frames(np.stack([pos, goal]), np.array([wall_x] * 2), np.array([door_y] * 2))
    z = model.encode(torch.from_numpy(frames).to(agent.device))
    z0, z_goal = z[:1], z[1:]
    horizon = agent.planner.config.horizon
    chunk = int(getattr(model, "action_chunk", 1) or 1)
    horizon -= horizon % chunk

    def imagine(actions: np.ndarray) -> tuple[float, list | None]:
        """The planner's cost of a sequence and where the position probe puts its imagined end."""
        z_end = model.unroll(z0, torch.as_tensor(actions, dtype=torch.float32, device=agent.device)[None])[:, -1]
        cost = float(model.planning_distance(z_end[:, None], z_goal[:, None])[0, 0])
        probe = getattr(model, "probe", None)
        return cost, (probe(z_end)[0].cpu().numpy().tolist() if callable(probe) else None)

    route = oracle_route(pos, goal, wall_x, door_y, horizon)[0]
    planner = MPPIPlanner(agent.planner.config, device=agent.device)
    plan = planner.plan(model, z0, z_goal, horizon)[0].cpu().numpy()[:horizon]
    walls = (np.array([wall_x]), np.array([door_y]))
    plan_end = core.rollout_positions(pos[None], plan[None], *walls)[0, -1]
    route_end = core.rollout_positions(pos[None], route[None], *walls)[0, -1]
    (plan_cost, plan_imagined), (route_cost, route_imagined) = imagine(plan), imagine(route)
    costs = {"plan": plan_cost, "door_route": route_cost, "stay": imagine(np.zeros_like(route))[0]}
    dist = float(np.linalg.norm(pos - goal))
    verdict = "success" if dist < core.SUCCESS_RADIUS else (
        "model error (a plan scored better than the door route ends far from the goal)"
        if costs["plan"] < costs["door_route"] and np.linalg.norm(plan_end - goal) >= core.SUCCESS_RADIUS
        else "search error (the door route scores best but was not found)"
        if costs["door_route"] <= min(costs["plan"], costs["stay"]) else "other")
    return {
        "seed": seed, "index": index, "wall_x": wall_x, "door_y": door_y, "final_distance": dist,
        "final_position": pos.tolist(), "goal": goal.tolist(), "cost": costs,
        "plan_true_end": plan_end.tolist(), "plan_imagined_end": plan_imagined,
        "door_route_imagined_end": route_imagined,
        "plan_true_end_distance": float(np.linalg.norm(plan_end - goal)),
        "door_route_true_end_distance": float(np.linalg.norm(route_end - goal)), "verdict": verdict,
    }


@dataclass
class DiagnoseConfig:
    """The options of ``tworooms-diagnose``."""

    checkpoint: str | None = None  # world model (none: the shipped one, or the one an eval JSON names)
    seed: int = 1  # evaluation seed of --tasks
    tasks: str = ""  # comma-separated task indices
    from_json: str = ""  # diagnose the failed episodes of an eval.planning JSON
    threads: int = 1  # torch CPU threads (0: torch's default)
    json: str = ""  # write the diagnoses to this JSON file

    def __post_init__(self) -> None:
        check_counts(self, at_least_one=())


CLI = ConfigCLI(DiagnoseConfig, prog="tworooms-diagnose", description=__doc__.splitlines()[0])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``tworooms-diagnose``); a user mistake is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks: list[tuple[int, int]] = [(args.seed, int(i)) for i in args.tasks.split(",") if i.strip()]
    checkpoint = args.checkpoint
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        tasks += [(e["seed"], e["index"]) for e in result["per_episode"] if not e["success"]]
        checkpoint = checkpoint or result.get("checkpoint")
    if not tasks:
        raise ValueError("no tasks: give --tasks or --from-json with failed episodes")
    agent = JEPAAgent.from_pretrained(checkpoint)
    rows = []
    for seed, index in tasks:
        r = diagnose_task(agent, seed, index)
        rows.append(r)
        c = r["cost"]
        print(f"seed {seed} task {index:4d}: ends {r['final_distance']:5.1f} px from the goal | cost plan "
              f"{c['plan']:.3f} (truly ends {r['plan_true_end_distance']:5.1f} px) door route {c['door_route']:.3f} "
              f"stay {c['stay']:.3f} | {r['verdict']}")
        if r["plan_imagined_end"] is not None:
            goal = np.asarray(r["goal"])
            off = {k: float(np.linalg.norm(np.asarray(r[f"{k}_imagined_end"]) - goal)) for k in ("plan", "door_route")}
            print(f"    imagined (position probe): the plan ends at x = {r['plan_imagined_end'][0]:.1f} (wall x = "
                  f"{r['wall_x']}, true end x = {r['plan_true_end'][0]:.1f}), {off['plan']:.1f} px from the goal; "
                  f"the door route ends {off['door_route']:.1f} px from it")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": checkpoint, "tasks": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
