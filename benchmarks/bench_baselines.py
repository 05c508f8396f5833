"""Throughput of the learned baselines' training, to choose budgets that fit a machine.

    python -m benchmarks.bench_baselines --out outputs/bench_baselines.json [--threads 1]

Prints and writes: GCBC training samples/s (batch 256), SAC + HER env steps/s from state and from
pixels (default hyper-parameters, one gradient step every ``train_freq`` env steps, measured after
learning starts), and the policies' acting time for a batch of 50 episodes. Figures depend on
the machine and on its load: state whether it was shared.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from eval.baselines import gcbc_cnn as gcbc, sb3_agents
from tworooms_env import core
from tworooms_env.random_walk import generate_trajectories


def bench_gcbc(steps: int) -> dict:
    traj = generate_trajectories(np.random.default_rng(0), 2000)
    tc = gcbc.GCBCTrainConfig(steps=steps, log_every=steps, val_trajectories=10, val_samples=64)
    policy, stats = gcbc.train(tc, trajectories=traj, progress=False)
    agent = gcbc.GCBCAgent(policy)
    obs = core.render_frames(traj.positions[:50, 0], traj.wall_x[:50], traj.door_y[:50])
    agent.act_batch(obs, obs)
    t0 = time.perf_counter()
    for _ in range(10):
        agent.act_batch(obs, obs)
    return {"train_samples_per_second": stats["samples_per_second"], "batch_size": tc.batch_size,
            "act_batch_50_ms": 100.0 * (time.perf_counter() - t0)}


def bench_sb3(obs_kind: str, steps: int) -> dict:
    learning_starts = 201  # one finished 200-step episode: HER can sample
    t0 = time.perf_counter()
    model, _ = sb3_agents.train(obs_kind, learning_starts, None, device="cpu", progress=False, learning_starts=learning_starts)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)  # now every train_freq steps is a gradient step
    rate = steps / (time.perf_counter() - t0)
    return {"env_steps_per_second_while_learning": rate, "setup_and_random_steps_seconds": setup,
            "batch_size": model.batch_size, "train_freq": model.train_freq.frequency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/bench_baselines.json")
    parser.add_argument("--gcbc-steps", type=int, default=20)
    parser.add_argument("--sb3-steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"torch_threads": torch.get_num_threads(), "gcbc": bench_gcbc(args.gcbc_steps)}
    for kind in sb3_agents.OBS_KINDS:
        result[f"sac_her_{kind}"] = bench_sb3(kind, args.sb3_steps)
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
