"""Planning costs of imagined distances and the proposals that go with them (``PlannerConfig.cost``).

``d`` [B, L] is the planning distance of each imagined latent after the first (latent t covers env
steps up to t * chunk) to the goal; ``last_idx`` [B] is each sequence's final latent (its horizon).

- "last": d_h; "sum": sum_t d_t (eq. 14);
- "arrive": min_t [max(max_{s >= t} d_s - eps, 0) + lambda t] (stay near the goal from t on);
- "min": min_t [max(d_t - eps, 0) + lambda t];
- "stop": "min" over segment ends; the segment after which a sample that arrived (within eps)
  stands still is returned too, so that the planner can zero the rest of that sample.

lambda = ``time_penalty`` per env step, eps = ``arrive_radius``, both in planning-distance units.
With ``arrive_slope`` c > 0 the goal region of a latent t env steps ahead is eps + c max(t - k, 0)
(k = ``segment_length``: the first segment end keeps eps): an imagined latent drifts further from
the truth the further it is unrolled, so a plan that truly arrives after many steps is imagined
further from the goal than one that arrives within a segment. Replanning shrinks the region as the
goal comes closer, so the last approach is held to eps.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tworooms_env.core import MAX_STEP_NORM  # pixels: the env's clip



def plan_cost(d: torch.Tensor, last_idx: torch.Tensor, chunk: int, cfg: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(cost [B], stop [B] or None): the planning cost of ``cfg.cost``; for "stop", the last moving
    segment of each sequence (``n_seg`` where it does not arrive: it keeps all its segments)."""
    cost, stop = cfg.cost, None
    index = torch.arange(1, d.shape[1] + 1, device=d.device)
    if cost == "last":
        out = d.gather(1, (last_idx - 1)[:, None])[:, 0]
    elif cost == "sum":
        out = (d * (index[None, :] <= last_idx[:, None])).sum(dim=1)
    elif cost == "stop":  # only at segment ends: the plan can stand still from there on
        k = cfg.segment_length
        n_seg = math.ceil(d.shape[1] * chunk / k)
        ends = torch.arange(1, n_seg + 1, device=d.device) * k  # env steps at the end of each segment
        at = torch.minimum(torch.div(ends[None, :] + chunk - 1, chunk, rounding_mode="floor"), last_idx[:, None])
        steps = torch.minimum(ends[None, :], last_idx[:, None] * chunk).to(d.dtype)
        radius = cfg.arrive_radius + cfg.arrive_slope * (steps - k).clamp_min(0.0)
        outside = (d.gather(1, at - 1) - radius).clamp_min(0.0)  # [B, S]
        out, stop = (outside + cfg.time_penalty * steps).min(dim=1)
        arrived = outside.gather(1, stop[:, None])[:, 0] == 0  # only these stand still after ``stop``
        stop = torch.where(arrived, stop, torch.full_like(stop, n_seg))
    else:
        valid = index[None, :] <= last_idx[:, None]  # latents inside each episode's horizon
        steps = (chunk * index).to(d.dtype)  # env steps to latent t
        penalty = cfg.time_penalty * steps
        if cost == "arrive":  # max_{s >= t} d_s: a reverse cumulative max over the valid latents
            d = torch.flip(torch.cummax(torch.flip(torch.where(valid, d, torch.zeros_like(d)), [1]), dim=1).values, [1])
        radius = cfg.arrive_radius + cfg.arrive_slope * (steps - cfg.segment_length).clamp_min(0.0)
        outside = (d - radius[None, :]).clamp_min(0.0)
        out = torch.where(valid, outside + penalty[None, :], torch.full_like(d, math.inf)).min(dim=1).values
    return out, stop


def retime_segments(segments: torch.Tensor, k: int, speed: float = MAX_STEP_NORM) -> torch.Tensor:
    """The same route at full speed: segment actions [..., S, 2] (k steps each) whose path (the
    polyline of cumulated displacements) is walked at ``speed`` px/step, then stays at its end.
    Every new segment is a chord of the old path, so its norm is at most ``speed``."""
    disp = segments * k  # displacement of each segment [..., S, 2]
    lead, n_seg = disp.shape[:-2], disp.shape[-2]
    zero = disp.new_zeros(*lead, 1, 2)
    corners = torch.cat([zero, disp.cumsum(dim=-2)], dim=-2)  # [..., S + 1, 2]
    length = disp.norm(dim=-1)  # [..., S]
    arc = torch.cat([zero[..., 0], length.cumsum(dim=-1)], dim=-1)  # [..., S + 1]
    target = torch.arange(n_seg + 1, device=disp.device, dtype=disp.dtype) * (k * speed)
    target = torch.minimum(target.expand_as(arc), arc[..., -1:]).contiguous()
    idx = (torch.searchsorted(arc.contiguous(), target, right=True) - 1).clamp(0, n_seg - 1)
    frac = ((target - arc.gather(-1, idx)) / length.gather(-1, idx).clamp_min(1e-9)).clamp(0.0, 1.0)
    idx2 = idx[..., None].expand(*idx.shape, 2)
    points = corners.gather(-2, idx2) + frac[..., None] * disp.gather(-2, idx2)  # [..., S + 1, 2]
    return points.diff(dim=-2) / k


def drop_each_segment(segments: torch.Tensor) -> torch.Tensor:
    """[..., S, 2] -> [..., S, S, 2]: candidate j is the plan without segment j, a zero segment at the end."""
    n_seg = segments.shape[-2]
    s = torch.arange(n_seg, device=segments.device)
    src = s[None, :] + (s[None, :] >= s[:, None]).long()  # [j, s]: s < j keeps s, else s + 1
    padded = torch.cat([segments, segments.new_zeros(*segments.shape[:-2], 1, 2)], dim=-2)
    return padded[..., src, :]
