"""Throughput of the video JEPA: Moving MNIST generation, training step and evaluation, in clips/s.

    python -m benchmarks.bench_video                      # cpu preset sizes
    python -m benchmarks.bench_video --preset reference --iters 2
    python -m benchmarks.bench_video threads=1 batch_size=32

Prints one JSON line per measurement and the projected wall-clock time of the preset's training.
Figures on a shared machine are noisy: report the load (printed) beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from jepa_agent.precision import autocast, use_bf16
from jepa_agent.video import train as vj
from jepa_agent.video.moving_mnist import generate_moving_mnist


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernels)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", choices=sorted(vj.PRESETS))
    parser.add_argument("--iters", type=int, default=5, help="timed training steps")
    args, rest = parser.parse_known_args(argv)
    cfg = vj.CLI.parse(["--preset", args.preset, *rest])
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = vj.resolve_device(cfg.device)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "load_avg_1min": os.getloadavg()[0], "device": str(device)}  # fmt: skip
    print(json.dumps({"machine": machine, "preset": args.preset}))

    train_digits, _ = vj.digit_split(cfg)
    rng = np.random.default_rng(0)
    gen = timed(lambda: generate_moving_mnist(train_digits, 256, rng), 3)
    print(json.dumps({"what": "generate 256 sequences x 20 frames", "seconds": round(gen, 4), "sequences_per_s": round(256 / gen)}))

    torch.manual_seed(0)
    model = vj.VideoJEPA(cfg.model_config()).to(device)
    opt = vj.make_optimizer(model, cfg)
    x, y = (t.to(device) for t in vj.train_batch(train_digits, cfg, 0))
    bf16 = use_bf16(cfg.amp, device)

    def step() -> None:
        with autocast(device, bf16):
            loss = model.losses(x, y)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    dt = timed(step, args.iters)
    rate = cfg.batch_size / dt
    params = {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in ("encoder", "predictor")}
    print(json.dumps({"what": "training step", "batch_clips": cfg.batch_size, "K": cfg.steps, "bf16": bf16, "seconds": round(dt, 3),
                      "clips_per_s": round(rate, 1), "params": params,
                      "projected_minutes_for_preset": round(cfg.iterations * dt / 60, 1)}))  # fmt: skip

    frames, maps = vj.val_clips(train_digits, cfg, 64)
    ev = timed(lambda: vj.evaluate(model, frames, maps, cfg.eval_batch, device, bf16), 1)
    print(json.dumps({"what": "evaluation (8 horizons)", "clips": len(frames), "clips_per_s": round(len(frames) / ev, 1)}))


if __name__ == "__main__":
    main()
