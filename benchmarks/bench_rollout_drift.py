"""How far a world model's imagined rollout drifts from the true one, on planner-like motions.

    python -m benchmarks.bench_rollout_drift [CHECKPOINT ...]    # default: the shipped checkpoint

Decoded-position error (px, position probe on the imagined latent) after t steps of one constant
action, from 1,000 random free starts per family: straight at 1.0 and 2.45 px/step, and straight
along the centre wall at 2.45 px/step starting 0.5-2 px from its face (where plans slide to the door);
pressed against the centre wall away from the door: holding still, pushing straight into it and
pushing diagonally into it (the true dot stays put; a model that imagines it moving invites plans
that stall there);
and the oracle baseline's 90-step door route (the planner's horizon) from two kinds of start: an
evaluation task's start, and a stall state (0-3 px from the centre wall, the goal 3-12 px across it),
where the agent fails when the model imagines this detour drifting (``eval.diagnose``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from eval.baselines.scripted import oracle_route
from jepa_agent.validation import run_cli
from jepa_agent.world_model import load_world_model
from tworooms_env import core
from tworooms_env import random_walk as rw

STEPS = (5, 10, 20, 30, 40, 60, 90)
AROUND_CROSSING = (-5, 5, 10)  # door routes: steps relative to the step that crosses the wall's centre line


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
    # pressed against the centre wall (0-0.5 px from its face, away from the door): hold still, push
    # straight into it, push diagonally into it. The true dot does not move in any of the three.
    away = rng.uniform(core.DOOR_HALF_HEIGHT + 3, 40, n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    contact_y = np.where(np.abs(door_y + away - 32) < 24, door_y + away, door_y - away)  # stays in 8..56
    contact = np.stack([wall_x + side * (face + rng.uniform(0.0, 0.5, n)), contact_y], 1)
    contact = rw.clip_to_free(rng, contact, wall_x, door_y).astype(np.float64)
    into = np.zeros((n, 2))
    into[:, 0] = -side * core.MAX_STEP_NORM
    diagonal = np.stack([-side, np.where(rng.random(n) < 0.5, -1.0, 1.0)], 1) * core.MAX_STEP_NORM / np.sqrt(2)
    out["hold at the wall"] = (contact, np.zeros((n, 2)))
    out["push into the wall"] = (contact, into)
    out["diagonal push"] = (contact, diagonal)
    fams = {k: (s, np.repeat(a[:, None], horizon, 1), wall_x, door_y) for k, (s, a) in out.items()}
    task_start, task_goal = core.sample_start_goal(rng, wall_x, door_y)
    fams["door route (task)"] = (task_start, oracle_route(task_start, task_goal, wall_x, door_y, horizon), wall_x, door_y)
    stall_side = np.where(task_goal[:, 0] > wall_x, -1.0, 1.0)  # the start room: across from the goal
    stall = np.stack([wall_x + stall_side * (face + rng.uniform(0.0, 3.0, n)), rng.uniform(8, 56, n)], 1)
    stall = rw.clip_to_free(rng, stall, wall_x, door_y).astype(np.float64)
    near_goal = np.stack([wall_x - stall_side * (face + rng.uniform(3.0, 12.0, n)),
                          np.clip(stall[:, 1] + rng.uniform(-8, 8, n), 8, 56)], 1)
    fams["door route (stall)"] = (stall, oracle_route(stall, near_goal, wall_x, door_y, horizon), wall_x, door_y)
    return fams


@torch.no_grad()
def drift(model, fams: dict) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    """(error at each of STEPS, and for door routes the error around the crossing) per family."""
    k = model.action_chunk
    res, around = {}, {}
    for name, (start, actions, wall_x, door_y) in fams.items():
        true = core.rollout_positions(start, actions, wall_x, door_y)
        z0 = model.encode(torch.from_numpy(core.render_frames(start, wall_x, door_y)))
        z = model.unroll(z0, torch.as_tensor(actions, dtype=torch.float32))
        err = np.linalg.norm(model.probe(z).numpy() - true[:, ::k], axis=-1)  # [N, H // k + 1] at t = 0, k, ...
        res[name] = {t: float(err[:, t // k].mean()) for t in STEPS if t % k == 0}
        if name.startswith("door route"):
            side = np.sign(true[:, :, 0] - wall_x[:, None])
            crossed = side != side[:, :1]
            rows = np.flatnonzero(crossed.any(axis=1))
            cross = crossed[rows].argmax(axis=1)
            around[name] = {}
            for rel in AROUND_CROSSING:  # the last imagined state at or before that step
                idx = (cross + rel) // k
                ok = (idx >= 0) & (idx < err.shape[1])
                around[name][rel] = float(err[rows[ok], idx[ok]].mean())
    return res, around


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*", help="world-model checkpoints (default: the shipped one)")
    paths = p.parse_args(argv).checkpoints or [None]
    torch.set_num_threads(1)
    fams = families()
    for path in paths:
        res, around = drift(load_world_model(path), fams)
        print(f"{path or 'shipped checkpoint'}: decoded-position error (px) at t = " + " / ".join(map(str, STEPS)))
        for name, errs in res.items():
            print(f"  {name:18s} " + " / ".join(f"{errs[t]:.2f}" if t in errs else "-" for t in STEPS))
        for name, errs in around.items():
            print(f"  {name}, around the crossing: " + ", ".join(f"{e:.2f} px at {rel:+d} steps" for rel, e in errs.items()))


if __name__ == "__main__":
    sys.exit(run_cli(main))
