"""Training throughput of the world-model presets (trajectories/s) measured in the same run, and
the cost of one planner-sized unroll.

    python -m benchmarks.bench_world_model [--steps 5] [--ref-batch 32] [--threads 0] [--json out.json]

A "trajectory" is one training window of the preset (the reference: 17 frames, 16 actions; the cpu
(pixel) and profile presets: 41 states, 40 actions, so per environment step their lead is 2.4x
larger; the pixel preset renders and encodes every 5th frame of its windows). Each preset
runs a full training step (data generation + forward + backward + optimiser) on its own batch
size; the reference preset (IMPALA CNN + 512-d GRU) is measured on a smaller batch by default
because one 384-window step takes about a minute on 2 cores (its per-window cost barely depends
on the batch size on a CPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from jepa_agent.precision import autocast, use_bf16
from jepa_agent.world_model import WorldModel
from training.wm_config import make_config
from training.data import WindowSource


def train_throughput(preset: str, steps: int, batch_size: int | None = None) -> dict:
    overrides = [f"batch_size={batch_size}"] if batch_size else []
    cfg = make_config(["--preset", preset, *overrides])
    torch.manual_seed(0)
    model = WorldModel(cfg.model_config())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    source = WindowSource(cfg)
    bf16 = use_bf16(cfg.amp, "cpu")

    def one_step(i: int) -> None:
        batch = source.batch(i)
        obs = batch["profiles"] if "profiles" in batch else batch["frames"]
        layout = torch.stack([batch["wall_x"], batch["door_y"]], dim=1)
        with autocast("cpu", bf16):
            loss, _ = model(obs, batch["actions"], batch["positions"], layout)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one_step(0)  # warm-up (allocations, caches)
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        one_step(i)
    dt = (time.perf_counter() - t0) / steps
    return {"preset": preset, "encoder": cfg.encoder, "bf16": bf16, "batch_size": cfg.batch_size, "seconds_per_step": dt,
            "trajectories_per_s": cfg.batch_size / dt,
            "parameters": sum(p.numel() for p in model.parameters())}


@torch.inference_mode()
def unroll_cost(preset: str, samples: int = 256, horizon: int = 90) -> dict:
    cfg = make_config(["--preset", preset])
    model = WorldModel(cfg.model_config()).eval()
    z0 = torch.randn(samples, model.latent_dim)
    a = torch.randn(samples, horizon - horizon % model.action_chunk, 2)
    model.unroll(z0, a)
    t0 = time.perf_counter()
    model.unroll(z0, a)
    return {"preset": preset, "unroll_samples": samples, "unroll_horizon": horizon,
            "unroll_seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--ref-batch", type=int, default=32, help="batch of the reference preset (its own is 384)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}",
        "cpu": train_throughput("cpu", args.steps),
        "profile": train_throughput("profile", args.steps),
        "reference": train_throughput("reference", max(1, args.steps // 2), args.ref_batch),
        "unroll_cpu": unroll_cost("cpu"),
        "unroll_reference": unroll_cost("reference", samples=64),
    }
    ratio = results["cpu"]["trajectories_per_s"] / results["reference"]["trajectories_per_s"]
    results["cpu_over_reference"] = ratio
    for key in ("cpu", "profile", "reference"):
        r = results[key]
        print(f"{key:9s} ({r['encoder']}, bf16 {'on' if r['bf16'] else 'off'}) batch {r['batch_size']:4d}: "
              f"{r['trajectories_per_s']:8.1f} trajectories/s ({r['seconds_per_step']:.3f} s/step, "
              f"{r['parameters']:,} parameters)")
    print(f"cpu / reference throughput: {ratio:.1f}x")
    for key in ("unroll_cpu", "unroll_reference"):
        r = results[key]
        print(f"{key}: {r['unroll_samples']} samples x {r['unroll_horizon']} steps in {r['unroll_seconds']:.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
