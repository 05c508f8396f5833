"""What a pixel encoder's stem costs on a CPU: forward + backward of N frames for stem variants.

    python -m benchmarks.bench_pixel_encoder [--frames 2304] [--threads 1] [--repeats 4] [--json out.json]

2,304 frames = one batch of the pixel ``cpu`` preset's old size (256 windows x 9 encoded frames;
the preset now uses 128 windows). Every variant ends in the same 32 x 8 x 8 map and a linear head
to 256 features; only the stem differs:

- ``pool2-gelu``: 2 x 2 average pool, stride-1 3 x 3 conv (16), two stride-2 convs (32), GELU;
- ``pool2-relu``: the same with ReLU;
- ``patch4``: a 4 x 4 stride-4 "patchify" conv (32), a stride-2 and a stride-1 3 x 3 conv, ReLU
  (``jepa_agent.encoders.PixelEncoder``'s trunk).

Each is timed in fp32 and under bf16 autocast (where the CPU has native bf16), channels_last.
Prints the median seconds per forward + backward.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from jepa_agent.encoders import PixelEncoder
from jepa_agent.precision import cpu_has_native_bf16


def _pool_stem(act: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(2, 16, 3, padding=1), act(), nn.Conv2d(16, 32, 3, 2, 1), act(),
                         nn.Conv2d(32, 32, 3, 2, 1), act(), nn.Flatten(), nn.Linear(2048, 256))


def variants() -> dict[str, nn.Module]:
    patch = PixelEncoder(agent_dim=16, layout_dim=0, width=32, hidden=256)
    return {"pool2-gelu": _pool_stem(nn.GELU), "pool2-relu": _pool_stem(nn.ReLU),
            "patch4": nn.Sequential(patch.trunk, nn.Linear(2048, 256))}


def time_variant(net: nn.Module, frames: torch.Tensor, bf16: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            x = frames.to(torch.bfloat16 if bf16 else torch.float32).mul_(1.0 / 255.0)
            out = net(x.contiguous(memory_format=torch.channels_last))
        out.float().pow(2).mean().backward()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[len(times[1:]) // 2]  # the first call warms caches


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=2304)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    if args.frames < 1 or args.threads < 1 or args.repeats < 1:
        print("error: --frames, --threads and --repeats must be >= 1")
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    frames = (torch.rand(args.frames, 2, 65, 65) * 255).to(torch.uint8)
    precisions = [False] + ([True] if cpu_has_native_bf16() else [])
    results = {"frames": args.frames, "threads": args.threads, "seconds": {}}
    for name, net in variants().items():
        for bf16 in precisions:
            key = f"{name} {'bf16' if bf16 else 'fp32'}"
            results["seconds"][key] = time_variant(net, frames, bf16, args.repeats)
            print(f"{key:18s} {results['seconds'][key]:.3f} s per forward + backward of {args.frames} frames",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
