"""Evaluation of a video JEPA: detection AP on predicted representations for every horizon, the
encoder-only AP, and the paper's Figure 4 (input, decoded encodings, one-step predictions and the
full rollout, as a PNG grid and a GIF).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from jepa_agent.precision import autocast, use_bf16
from jepa_agent.video.models import VideoJEPA, average_precision


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model: VideoJEPA, frames: torch.Tensor, maps: torch.Tensor, batch: int, device: torch.device,
             bf16: bool | None = None) -> dict:
    """AP of the detection head on predicted representations, for every horizon h = 1 .. T - v.

    Horizon h scores the h-step rollouts u^(h)[:, v + h - 1:], pooled over the whole set (the
    reference averages per-batch APs and skips the longest horizon: docs/reference.md#detection-ap). mAP = mean over all horizons;
    mAP_ref = mean over h = 1 .. T - v - 1, the reference's definition (its README's 0.607).
    ``bf16``: autocast the encoder and predictor (None: what ``amp="auto"`` picks for ``device``)."""
    bf16 = use_bf16("auto", device) if bf16 is None else bf16
    model.eval()
    v, t = model.cfg.context, frames.shape[1]
    horizons = t - v
    scores: list[list[torch.Tensor]] = [[] for _ in range(horizons + 1)]  # index 0 = real encodings
    recon = det = 0.0
    for i in range(0, len(frames), batch):
        x, y = frames[i : i + batch].to(device), maps[i : i + batch].to(device)
        with autocast(device, bf16):
            s = model.encode(x)
            rollouts = model.unroll(s, horizons)
            recon += F.mse_loss(model.decode(s).float(), x, reduction="sum").item()
        # the detection head in fp32: bf16 logits would tie many scores and blur the ranking AP measures
        scores[0].append(model.detect(s.float()).cpu())
        for h, u in enumerate(rollouts, start=1):
            scores[h].append(model.detect(u[:, v + h - 1 :].float()).cpu())
        det += F.binary_cross_entropy_with_logits(scores[0][-1], y.cpu(), reduction="sum").item()
    ap = [average_precision(torch.cat(scores[h]), maps[:, v + h - 1 :]) for h in range(1, horizons + 1)]
    model.train()
    return {
        "AP": ap,
        "mAP": float(np.mean(ap)),
        "mAP_ref": float(np.mean(ap[:-1])) if horizons > 1 else float(ap[0]),
        "AP_encoder": average_precision(torch.cat(scores[0]), maps),
        "val_recon": recon / frames.numel(),
        "val_det": det / maps.numel(),
        "clips": len(frames),
    }


@torch.no_grad()
def encoder_ap(model: VideoJEPA, frames: torch.Tensor, maps: torch.Tensor, batch: int, device: torch.device,
               bf16: bool | None = None) -> float:
    """AP of the detection head on encoded real frames only (``evaluate``'s AP_encoder, without the
    rollouts): what the benchmarks use when the predictor is not part of the question."""
    bf16 = use_bf16("auto", device) if bf16 is None else bf16
    model.eval()
    scores = []
    for i in range(0, len(frames), batch):
        with autocast(device, bf16):
            s = model.encode(frames[i : i + batch].to(device))
        scores.append(model.detect(s.float()).cpu())
    model.train()
    return average_precision(torch.cat(scores), maps)


# ---------------------------------------------------------------- figure (paper Fig. 4)
@torch.no_grad()
def figure_rows(model: VideoJEPA, clip: torch.Tensor, device: torch.device) -> dict[str, np.ndarray]:
    """Rows of images [T, 64, 64] in [0, 1]: input, decoded encodings, decoded one-step predictions,
    decoded full rollout (from the v context frames only); context frames repeat the decoded input."""
    model.eval()
    x = clip.to(device)
    s = model.encode(x)
    rollouts = model.unroll(s, x.shape[1] - model.cfg.context)
    rows = {"input": x, "decoded": model.decode(s), "one-step": model.decode(rollouts[0]), "rollout": model.decode(rollouts[-1])}
    model.train()
    return {k: v[0, :, 0].float().clamp(0, 1).cpu().numpy() for k, v in rows.items()}


def save_figure(model: VideoJEPA, clip: torch.Tensor, stem: Path, device: torch.device) -> None:
    """Write ``stem``.png (rows x frames grid) and ``stem``.gif (rows side by side, one frame per step)."""
    import imageio.v2 as imageio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = figure_rows(model, clip, device)
    t = clip.shape[1]
    fig, axes = plt.subplots(len(rows), t, figsize=(1.2 * t, 1.3 * len(rows)), squeeze=False)
    for r, (name, imgs) in enumerate(rows.items()):
        for j in range(t):
            ax = axes[r, j]
            ax.imshow(imgs[j], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
            if r == 0:
                ax.set_title(f"t={j}" + (" (ctx)" if j < model.cfg.context else ""), fontsize=7)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=100)
    plt.close(fig)
    strip = np.concatenate([np.pad(v, ((0, 0), (2, 2), (2, 2)), constant_values=0.5) for v in rows.values()], axis=2)
    frames = (np.kron(strip, np.ones((2, 2))) * 255).astype(np.uint8)  # x2 upscale for viewing
    imageio.mimsave(stem.with_suffix(".gif"), list(frames), duration=0.3, loop=0)
