"""Optimisers and the one learning-rate schedule of every trainer (world model, image, video).

- ``LARS``: SGD with momentum and a layer-wise trust ratio; biases and norm weights (1-D
  parameters) get plain SGD-momentum without weight decay or scaling, as in the reference.
- ``build_optimizer``: LARS or AdamW over named parameter groups, each with its own base lr.
- ``warmup_cosine_factor`` / ``WarmupCosine``: linear warmup then cosine decay to a final factor,
  stepped once per ITERATION and applied to every group relative to that group's own base lr; the
  world-model trainer (warmup ``warmup_frac`` of the steps, down to ``min_lr / lr``) and the video
  trainer (``lr_schedule=cosine``) use the same function. This fixes the reference's per-epoch schedule,
  whose first epoch ran at the full lr with no warmup and which overwrote the probe's lr with the
  backbone's (docs/reference.md#optimiser-and-schedule).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al. 2017), the reference's variant.

    For a parameter p with ndim > 1 and nonzero norms: trust = eta |p| / (|g| + wd |p| + eps),
    clipped to lr (``clip_lr``: scale = min(trust / lr, 1)), d = (g + wd p) scale;
    buf = momentum buf + d; p -= lr buf. 1-D parameters: d = g (no decay, no scaling).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        eta: float = 0.02,
        clip_lr: bool = True,
        eps: float = 1e-8,
    ):
        if lr < 0 or not 0 <= momentum < 1 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"invalid LARS settings lr={lr}, momentum={momentum}, weight_decay={weight_decay}, eta={eta}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, clip_lr=clip_lr, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1:
                    p_norm, g_norm = p.norm(), d.norm()
                    trust = group["eta"] * p_norm / (g_norm + wd * p_norm + group["eps"])
                    scale = torch.clamp(trust / max(lr, 1e-12), max=1.0) if group["clip_lr"] else trust
                    scale = torch.where((p_norm > 0) & (g_norm > 0), scale, torch.ones_like(scale))
                    d = (d + wd * p) * scale
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = d.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                p.add_(state["momentum_buffer"], alpha=-lr)
        return loss


def build_optimizer(
    name: str, groups: list[dict], weight_decay: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """``groups``: [{"params": ..., "lr": base_lr}, ...]; ``name`` is "lars" or "adamw"."""
    if name == "lars":
        return LARS(groups, lr=groups[0]["lr"], momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=groups[0]["lr"], weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'lars' or 'adamw', got {name!r}")


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, final_factor: float = 0.0) -> float:
    """Multiplier of the base lr at iteration ``step`` (0-based).

    Linear from 1/warmup to 1 over the first ``warmup_steps`` iterations (never 0: the first step
    learns), then cosine from 1 to ``final_factor`` at ``total_steps``.
    """
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got {total_steps}, {warmup_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def WarmupCosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, final_factor: float = 0.0
) -> LambdaLR:
    """Per-iteration schedule: call ``scheduler.step()`` after every ``optimizer.step()``."""
    warmup_cosine_factor(0, total_steps, warmup_steps)  # validate now, not at the first step
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, total_steps, warmup_steps, final_factor))
