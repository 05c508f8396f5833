"""How well could the video JEPA's encoder architecture locate digits at all? A supervised ceiling.

    python -m benchmarks.video_detection_ceiling                  # cpu preset encoder, 1,000 steps
    python -m benchmarks.video_detection_ceiling iterations=300 threads=1 enc_hidden=16

Trains the preset's encoder and detection head end-to-end on the digit maps (binary cross-entropy,
Adam, the preset's lr, batch and amp; no JEPA loss), then scores Average Precision on encoded real
frames of held-out clips, as ``AP_encoder`` in ``jepa_agent.video.train``. The self-supervised run's
``AP_encoder`` below this figure is what the JEPA objective leaves out, not what the grid can hold.
Prints one JSON line per evaluation and writes them to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from jepa_agent.precision import autocast, use_bf16
from jepa_agent.video.models import VideoJEPA
from jepa_agent.video import train as vj


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", choices=sorted(vj.PRESETS))
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--out", default="", help="write the evaluations as JSON lines to this file")
    args, rest = parser.parse_known_args(argv)
    preset, overrides, _ = vj.CLI.parse_given(["--preset", args.preset, *rest])
    overrides.setdefault("iterations", 1000)
    overrides.setdefault("val_sequences", 250)
    cfg = vj.CLI.build(preset, overrides)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = vj.resolve_device(cfg.device)
    bf16 = use_bf16(cfg.amp, device)
    torch.manual_seed(cfg.seed)
    model = VideoJEPA(cfg.model_config()).to(device)
    train_digits, val_digits = vj.digit_split(cfg)
    frames, maps = vj.val_clips(val_digits, cfg, cfg.val_sequences)
    params = list(model.encoder.parameters()) + list(model.detector.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    lines, t0 = [], time.perf_counter()
    for it in range(cfg.iterations):
        x, y = (t.to(device) for t in vj.train_batch(train_digits, cfg, it))
        with autocast(device, bf16):
            s = model.encode(x)
        loss = F.binary_cross_entropy_with_logits(model.detect(s.float()), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (it + 1) % args.eval_every == 0 or it + 1 == cfg.iterations:
            line = {"iteration": it + 1, "train_bce": round(loss.item(), 5),
                    "AP_encoder": round(vj.encoder_ap(model, frames, maps, cfg.eval_batch, device, bf16), 4),
                    "clips": len(frames), "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            print(json.dumps(line), flush=True)
            lines.append(line)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(line) + "\n" for line in lines))


if __name__ == "__main__":
    main()
