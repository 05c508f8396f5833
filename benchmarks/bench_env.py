"""Throughput of the Two Rooms environment.

1. One ``TwoRooms-v0`` env with pixel observations, steps/s (target >= 20,000 on one core), both
   the raw ``TwoRoomsEnv`` and the ``gym.make`` stack (PassiveEnvChecker, OrderEnforcing, TimeLimit).
2. Batched dynamics + rendering for data collection: ``core.step_positions`` then
   ``core.render_frames`` on a batch, frames/s (target >= 200,000).

Usage: ``python -m benchmarks.bench_env [--steps 50000] [--batch 4096] [--cpu 0]``. Figures are
printed and written to ``outputs/bench_env.json``. The process is pinned to one core (``--cpu``)
where the OS allows it; on a shared machine read the figures as lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import tworooms_env  # noqa: F401  (registers the ids)
from tworooms_env import core
from tworooms_env.env import TwoRoomsEnv


def best_rate(fn, count: int, repeats: int) -> tuple[float, float]:
    """Items per second of ``fn`` (which processes ``count`` items), best of ``repeats`` runs.

    Returns (per wall-clock second, per CPU second of this process). On a shared machine the
    CPU-time rate is what one dedicated core would give; the wall-clock rate is what we got.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(count / (time.perf_counter() - start))
        cpu.append(count / max(time.process_time() - start_cpu, 1e-9))
    return max(wall), max(cpu)


def env_steps(env: gym.Env, steps: int, seed: int = 0) -> None:
    """Step with random actions, resetting whenever an episode ends."""
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, 2)).astype(np.float32)
    env.reset(seed=seed)
    for t in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[t])
        if terminated or truncated:
            env.reset()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per timing run")
    parser.add_argument("--batch", type=int, default=4096, help="batch size of the batched timing")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs; the best is reported")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: do not pin)")
    parser.add_argument("--out", default="outputs/bench_env.json")
    args = parser.parse_args()

    pinned = False
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
        pinned = True

    raw = best_rate(lambda: env_steps(TwoRoomsEnv(), args.steps), args.steps, args.repeats)
    made = best_rate(lambda: env_steps(gym.make("TwoRooms-v0"), args.steps), args.steps, args.repeats)

    rng = np.random.default_rng(0)
    n = args.batch
    wall_x, door_y = core.sample_layouts(rng, n)
    start, _ = core.sample_start_goal(rng, wall_x, door_y)
    actions = rng.uniform(-core.MAX_STEP_NORM, core.MAX_STEP_NORM, (n, 2))
    dynamics = best_rate(lambda: core.step_positions(start, actions, wall_x, door_y), n, args.repeats)
    rendering = best_rate(lambda: core.render_frames(start, wall_x, door_y), n, args.repeats)

    def step_and_render() -> None:
        new_pos, _ = core.step_positions(start, actions, wall_x, door_y)
        core.render_frames(new_pos, wall_x, door_y)

    batched = best_rate(step_and_render, n, args.repeats)

    figures = {
        "env_steps_per_s_raw": raw,
        "env_steps_per_s_gym_make": made,
        "batched_step_positions_per_s": dynamics,
        "batched_render_frames_per_s": rendering,
        "batched_step_and_render_frames_per_s": batched,
    }
    results = {
        "wall_clock": {k: round(v[0]) for k, v in figures.items()},
        "cpu_time": {k: round(v[1]) for k, v in figures.items()},
        "targets": {"env_steps_per_s": 20_000, "batched_frames_per_s": 200_000},
        "batch": n,
        "steps": args.steps,
        "pinned_to_one_core": pinned,
        "cpu": cpu_name(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "numpy": np.__version__,
    }
    rows = [
        ("single env, pixels, raw TwoRoomsEnv", raw, "steps/s", "target 20,000"),
        ("single env, pixels, gym.make stack", made, "steps/s", ""),
        (f"batched core.step_positions (batch {n})", dynamics, "moves/s", ""),
        (f"batched core.render_frames (batch {n})", rendering, "frames/s", ""),
        (f"batched step + render (batch {n})", batched, "frames/s", "target 200,000"),
    ]
    print(f"{'':42s} {'wall-clock':>12s} {'per CPU-s':>12s}")
    for name, (wall, cpu), unit, target in rows:
        print(f"{name:42s} {wall:12,.0f} {cpu:12,.0f} {unit:8s} {target}")
    print(f"cpu: {results['cpu']}, pinned: {pinned}, load average: {results['load_average_1min']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
