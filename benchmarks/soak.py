"""Soak test: the agent for many episodes in batches; NaN actions, memory growth and determinism.

    python -m benchmarks.soak                                  # 10,000 episodes, true dynamics, cheap MPPI
    python -m benchmarks.soak --episodes 2000 --batch-size 100
    python -m benchmarks.soak --model shipped --planner-option num_samples=64   # the shipped world model

Each batch runs ``--batch-size`` PROTOCOL tasks (``task_seed=--seed``, consecutive task indices) in
lockstep in ``TwoRooms-v0`` envs through ``JEPAAgent.act_batch``, after ``agent.reset(n)``. Checked:

- every action is finite and within the env's bound (norm <= 1 in env units);
- resident memory (VmRSS from /proc/self/status) after each batch: the growth from the end of the
  first batch (allocator and caches warm) to the end of the last must stay under ``--max-growth-mb``;
- determinism: ``--repeat`` batches (first, middle and last by default; ``all`` for every one) are run
  again with a fresh agent, and each episode's actions (sha256 of their bytes) and final distance
  must be identical. ``agent.reset`` reseeds the planner, so a batch is a function of its tasks alone.

Prints the figures and exits 1 if any check fails. The default model, ``jepa_agent.analytic.
TruePositionModel`` (the true dynamics), keeps 10,000 episodes to minutes of CPU; ``--model shipped``
(or ``--checkpoint PATH``) soaks the learned world model with the same checks.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import sys
import time
import tracemalloc
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import tworooms_env  # noqa: F401 - registers TwoRooms-v0
from eval.planning import parse_options
from jepa_agent.agent import JEPAAgent
from jepa_agent.validation import run_cli

CHEAP = dict(num_samples=32, num_elites=4, iterations_first=3, iterations_later=1, horizon=40)


def rss_mb() -> float:
    """Resident set size of this process in MB (VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise OSError("no VmRSS in /proc/self/status (Linux only)")


def make_agent(args: argparse.Namespace) -> JEPAAgent:
    options = {**(CHEAP if args.model == "true-dynamics" and args.checkpoint is None else {}),
               **parse_options(args.planner_option), "seed": args.seed}
    if args.checkpoint is not None or args.model == "shipped":
        return JEPAAgent.from_pretrained(args.checkpoint, planner=args.planner, **options)
    from jepa_agent.analytic import TruePositionModel

    return JEPAAgent(TruePositionModel(walls=True), planner=args.planner, **options)


def run_batch(agent: JEPAAgent, envs: list, seed: int, indices: range, steps: int) -> dict:
    """One batch in lockstep: per-episode action hashes and final distances, bad-action count."""
    resets = [env.reset(options={"task_seed": seed, "task_index": i}) for env, i in zip(envs, indices)]
    obs = np.stack([o for o, _ in resets])
    goal = np.stack([info["goal_obs"] for _, info in resets])
    agent.reset(len(indices))
    actions = np.empty((steps, len(indices), 2), dtype=np.float32)
    dist = np.zeros(len(indices))
    for t in range(steps):
        a = agent.act_batch(obs, goal)
        actions[t] = a
        for j, env in enumerate(envs):
            o, _, _, _, info = env.step(a[j])
            obs[j], dist[j] = o, info["distance"]
    finite = np.isfinite(actions).all(axis=(0, 2))
    in_bound = np.linalg.norm(np.nan_to_num(actions, nan=9.0), axis=-1).max(axis=0) <= 1.0 + 1e-5
    hashes = [hashlib.sha256(actions[:, j].tobytes()).hexdigest() for j in range(len(indices))]
    return {"hashes": hashes, "distance": dist.copy(), "non_finite": int((~finite).sum()),
            "out_of_bound": int((~in_bound).sum()), "success": int((dist < 4.5).sum())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=200, help="steps per episode (the env's time limit)")
    p.add_argument("--model", default="true-dynamics", choices=["true-dynamics", "shipped"])
    p.add_argument("--checkpoint", default=None, help="a world-model checkpoint (implies the learned model)")
    p.add_argument("--planner", default="mppi")
    p.add_argument("--planner-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--repeat", default="sample", choices=["sample", "all", "none"],
                   help="batches re-run for determinism: first/middle/last, every one, or none")
    p.add_argument("--max-growth-mb", type=float, default=64.0, help="allowed RSS growth after the first batch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tracemalloc", action="store_true",
                   help="also measure the Python heap (tracemalloc; slower): tells a leak from allocator growth")
    args = p.parse_args(argv)
    if args.episodes < 1 or args.batch_size < 1 or args.steps < 1:
        raise ValueError("--episodes, --batch-size and --steps must be >= 1")
    torch.set_num_threads(args.threads)
    batches = [range(lo, min(lo + args.batch_size, args.episodes)) for lo in range(0, args.episodes, args.batch_size)]
    envs = [gym.make("TwoRooms-v0", disable_env_checker=True) for _ in range(min(args.batch_size, args.episodes))]
    agent = make_agent(args)
    t0, rss, results = time.perf_counter(), [], []
    heap = []
    for i, b in enumerate(batches):
        results.append(run_batch(agent, envs[: len(b)], args.seed, b, args.steps))
        rss.append(rss_mb())
        if args.tracemalloc:
            if i == 0:
                tracemalloc.start()
            gc.collect()
            heap.append(tracemalloc.get_traced_memory()[0] / 2**20)
    seconds = time.perf_counter() - t0
    chosen = {"sample": sorted({0, len(batches) // 2, len(batches) - 1}), "all": range(len(batches)), "none": []}[args.repeat]
    mismatched = 0
    fresh = make_agent(args) if chosen else None
    for i in chosen:
        again = run_batch(fresh, envs[: len(batches[i])], args.seed, batches[i], args.steps)
        mismatched += sum(h1 != h2 for h1, h2 in zip(results[i]["hashes"], again["hashes"]))
        mismatched += int((results[i]["distance"] != again["distance"]).sum())
    non_finite = sum(r["non_finite"] for r in results)
    out_of_bound = sum(r["out_of_bound"] for r in results)
    growth = rss[-1] - rss[0]
    # least-squares trend of RSS over the batches after the first, in MB per 1,000 episodes
    slope = np.polyfit(np.arange(len(rss) - 1), rss[1:], 1)[0] * (1000 / args.batch_size) if len(rss) > 2 else 0.0
    n = args.episodes
    print(f"soak: {n} episodes x {args.steps} steps in {len(batches)} batches of {args.batch_size}, "
          f"model {args.checkpoint or args.model}, planner {args.planner} {agent.planner.config.to_dict() if hasattr(agent.planner, 'config') else ''}")
    print(f"  time: {seconds:.1f} s ({1000 * seconds / n:.1f} ms per episode, {n * args.steps / seconds:.0f} steps/s), "
          f"torch threads {torch.get_num_threads()}")
    print(f"  success@end: {sum(r['success'] for r in results) / n:.3f}")
    print(f"  non-finite actions: {non_finite} episodes; actions beyond the bound: {out_of_bound} episodes")
    print(f"  RSS: {rss[0]:.1f} MB after batch 1, {rss[-1]:.1f} MB at the end, max {max(rss):.1f} MB; growth "
          f"{growth:+.1f} MB (bound {args.max_growth_mb:g} MB), trend {slope:+.2f} MB per 1,000 episodes")
    if len(heap) > 2:  # batch 1 ends before tracing starts; batch 2 replaces the state it held
        print(f"  Python heap (tracemalloc): {heap[-1] - heap[1]:+.3f} MB from the end of batch 2 to the end")
    print(f"  determinism: {len(chosen)} batches re-run with a fresh agent, {mismatched} mismatches")
    ok = non_finite == 0 and out_of_bound == 0 and growth <= args.max_growth_mb and mismatched == 0
    print("soak: PASS" if ok else "soak: FAIL")
    for env in envs:
        env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
