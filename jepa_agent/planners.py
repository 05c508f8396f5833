"""Sampling-based planners in latent space: MPPI (the paper's Algorithm 1) and CEM.

A planner minimises the planning energy of the paper's eq. 14, the distance between imagined
latents and the goal latent, over action sequences, using only ``model.encode``-space latents and
``model.unroll``. Everything is batched over E episodes x N samples: one ``model.unroll`` call per
iteration, so one predictor call per horizon step for all episodes and samples together.

Plans are piecewise constant: the optimiser works on ``S = ceil(h / k)`` segments of
``segment_length = k`` steps, each one 2-D action repeated k times (k = 1 is the classic per-step
plan). Temporally coherent samples explore far more ground per sample than per-step noise, which is
what crossing the door needs (docs/experiments/: 100 % vs 76 % with the true dynamics).

Every place where the reference code deviates from the paper (docs/reference.md#mppi-as-the-reference-runs-it) is an
explicit option of ``PlannerConfig`` (``jepa_agent.planner_config``, re-exported here);
``PlannerConfig.reference_mppi()`` reproduces the reference.

Usage::

    planner = MPPIPlanner(PlannerConfig(seed=0))
    z0, z_goal = model.encode(obs), model.encode(goal_obs)          # [E, D] each
    actions = planner.plan(model, z0, z_goal, steps_left=200)       # [E, H, 2] pixels
    # after executing n steps: warm start from the rest of that plan
    actions = planner.plan(model, z1, z_goal, 200 - n, warm_start=shift_plan(actions, n))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from jepa_agent.objectives import drop_each_segment, plan_cost, retime_segments
from jepa_agent.planner_config import COSTS, PlannerConfig
from tworooms_env.core import MAX_STEP_NORM  # pixels: the env's clip


@dataclass
class Plan:
    """A planner's answer for E episodes.

    actions: [E, h, 2] per-step actions in pixels (h = max over episodes of min(H, steps left));
    cost: [E] planning cost of the returned plan; for ``execute="mean"`` without
        ``return_latents`` it is the best sample's cost of the last iteration (saves one unroll),
        and with ``execute_retimed`` without ``return_latents`` the cost of the plan as searched;
    latents: [E, L + 1, D] imagined latents of the returned plan (only with ``return_latents``);
    iterations: optimisation iterations used.
    """

    actions: torch.Tensor
    cost: torch.Tensor
    latents: torch.Tensor | None = None
    iterations: int = 0
    stats: dict[str, float] = field(default_factory=dict)


def shift_plan(actions: torch.Tensor, executed: int) -> torch.Tensor:
    """The warm start after ``executed`` steps of a plan: its remaining actions [E, h - executed, 2]."""
    if executed < 0:
        raise ValueError(f"executed must be >= 0, got {executed}")
    return actions[:, executed:]


def clip_norm(actions: torch.Tensor, max_norm: float = MAX_STEP_NORM) -> torch.Tensor:
    """Scale every 2-D action down to a norm of at most ``max_norm``."""
    norm = actions.norm(dim=-1, keepdim=True)
    return actions * torch.clamp(max_norm / norm.clamp_min(1e-12), max=1.0)


def mppi_weights(
    costs: torch.Tensor, temperature: float, mode: str = "divide", normalize: bool = False
) -> torch.Tensor:
    """Normalised MPPI weights over the last dim of ``costs`` (the elites), Algorithm 1:

    w_i = exp(-(S_i - S_min) / tau) / sum_j exp(-(S_j - S_min) / tau)   ("divide", paper)
    w_i = exp(-tau (S_i - S_min)) / sum_j ...                           ("multiply", reference)
    With ``normalize`` the gaps S_i - S_min are first divided by their range over the elites.
    """
    gap = costs - costs.min(dim=-1, keepdim=True).values
    if normalize:
        gap = gap / gap.max(dim=-1, keepdim=True).values.clamp_min(1e-12)
    logits = -gap / temperature if mode == "divide" else -gap * temperature
    w = torch.exp(logits)
    return w / w.sum(dim=-1, keepdim=True)


def check_world_model(model: Any) -> None:
    """Raise TypeError unless ``model`` offers what planning needs: ``encode`` and ``unroll``."""
    missing = [name for name in ("encode", "unroll") if not callable(getattr(model, name, None))]
    if missing:
        raise TypeError(
            f"{type(model).__name__} cannot be planned with: it lacks {' and '.join(missing)}(); a world "
            "model needs encode(obs [..., 2, 65, 65]) -> z [..., D] and unroll(z0 [B, D], actions [B, H, 2]) -> [B, H + 1, D]"
        )


class _SamplingPlanner:
    """Shared machinery of MPPI and CEM; subclasses define ``_refit``."""

    name = "base"

    def __init__(self, config: PlannerConfig | None = None, device: str | torch.device = "cpu", **overrides: Any):
        config = config or PlannerConfig()
        if not isinstance(config, PlannerConfig):
            raise TypeError(f"config must be a PlannerConfig, got {type(config).__name__}")
        self.config = replace(config, **overrides) if overrides else config
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.reseed(self.config.seed)
        self.predictor_calls = 0  # horizon steps unrolled since construction (batched calls)

    def reseed(self, seed: int) -> None:
        """Restart the sampling noise from ``seed`` (same inputs + same seed -> same plan)."""
        self.generator.manual_seed(int(seed))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # ------------------------------------------------------------------------------- API
    def plan(self, model, z0, z_goal, steps_left, warm_start=None, warm_mask=None) -> torch.Tensor:
        """Plan for E episodes at once: actions [E, h, 2] in pixels (see ``plan_with_info``)."""
        return self.plan_with_info(model, z0, z_goal, steps_left, warm_start, warm_mask).actions

    @torch.inference_mode()
    def plan_with_info(
        self,
        model: Any,
        z0: torch.Tensor,
        z_goal: torch.Tensor,
        steps_left: int | torch.Tensor,
        warm_start: torch.Tensor | None = None,
        warm_mask: torch.Tensor | None = None,
        return_latents: bool = False,
    ) -> Plan:
        """Optimise action sequences for E episodes.

        Args:
            model: any object with ``unroll(z0 [B, D], actions [B, H, 2]) -> [B, H/k + 1, D]``
                (``action_chunk`` k, default 1) and optionally ``planning_distance``.
            z0, z_goal: [E, D] current and goal latents.
            steps_left: env steps left in each episode (int or [E]); the horizon is min(H, it).
            warm_start: [E, h', 2] per-step actions to start from (``shift_plan`` of the last plan),
                or None. Ignored when ``config.warm_start`` is False.
            warm_mask: [E] bool, episodes whose warm start is valid (default: all).
            return_latents: also unroll the returned plan and give its latents (for videos).
        """
        check_world_model(model)
        cfg = self.config
        z0, z_goal = self._check_latents(z0, z_goal)
        n_ep = z0.shape[0]
        h_ep = self._horizons(steps_left, n_ep)  # [E] per-episode horizon in steps
        h_max = int(h_ep.max())
        k = cfg.segment_length
        n_seg = math.ceil(h_max / k)
        chunk = int(getattr(model, "action_chunk", 1) or 1)
        last_idx = torch.div(h_ep + chunk - 1, chunk, rounding_mode="floor")  # latent index of step h_e

        mean, std, warm = self._initial_distribution(n_ep, n_seg, warm_start, warm_mask)
        # warm-started episodes refine for iterations_later, the others (cold) for iterations_first;
        # every iteration draws noise for all episodes, so the sampling stream does not depend on the mix
        iters = torch.where(warm, cfg.iterations_later, cfg.iterations_first).clamp(min=1)
        n = cfg.num_samples
        rows = torch.arange(n_ep, device=self.device)
        best_seq, best_cost = mean.clone(), torch.full((n_ep,), math.inf, device=self.device)
        elites = elite_costs = weights = None
        for it in range(int(iters.max())):
            noise = torch.randn((n_ep, n, n_seg, 2), generator=self.generator, device=self.device, dtype=z0.dtype)
            active = rows if bool((iters > it).all()) else rows[iters > it]  # episodes still refining
            samples = mean[active, None] + std[active, None] * noise[active]  # [A, N, S, 2]
            if cfg.include_mean:
                samples[:, 0] = mean[active]
            fresh = ~warm[active] if it == 0 else torch.zeros_like(warm[active])  # cold, no mean yet
            if cfg.retime and n > 1:  # the mean on its own route at full speed
                fast = retime_segments(mean[active], k, cfg.max_norm)
                samples[:, 1] = torch.where(fresh[:, None, None], samples[:, 1], fast)
            if cfg.drop_segments and n > n_seg + 2:  # the mean without each one of its segments
                shorter = drop_each_segment(mean[active])
                block = samples[:, 2 : 2 + n_seg]
                samples[:, 2 : 2 + n_seg] = torch.where(fresh[:, None, None, None], block, shorter)
            if cfg.carry_elites and elites is not None:  # iCEM: keep the best of the last iteration
                c = min(cfg.carry_elites, elites.shape[1])
                samples[:, n - c :] = elites[active, :c]
            if cfg.clip_norm:
                samples = clip_norm(samples, cfg.max_norm)
            costs, samples = self._costs(model, z0[active], z_goal[active], samples, h_max, chunk, last_idx[active])
            e_costs, idx = torch.topk(costs, cfg.num_elites, dim=1, largest=False)  # sorted
            e_seqs = torch.gather(samples, 1, idx[:, :, None, None].expand(-1, -1, n_seg, 2))
            improved = e_costs[:, 0] < best_cost[active]
            best_seq[active] = torch.where(improved[:, None, None], e_seqs[:, 0], best_seq[active])
            best_cost[active] = torch.where(improved, e_costs[:, 0], best_cost[active])
            new_mean, new_std, w = self._refit(e_costs, e_seqs)
            mean[active], std[active] = new_mean, new_std.clamp(min=cfg.min_std, max=cfg.max_std)
            if elites is None:  # the first iteration refines every episode
                elites, elite_costs, weights = e_seqs, e_costs, w
            else:
                elites[active], elite_costs[active], weights[active] = e_seqs, e_costs, w
        iterations = int(iters.max())

        if cfg.execute == "mean":
            chosen = clip_norm(mean, cfg.max_norm) if cfg.clip_norm else mean
            chosen_cost = best_cost  # replaced by the mean's own cost when it is unrolled
        elif cfg.execute == "best":
            chosen, chosen_cost = best_seq, best_cost
        else:
            pick = torch.multinomial(weights, 1, generator=self.generator)[:, 0]
            chosen, chosen_cost = elites[rows, pick], elite_costs[rows, pick]
        actions = self._executed_steps(chosen, h_max)
        latents = None
        if return_latents:
            latents = self._unroll(model, z0, self._pad_to_chunk(actions, chunk))
            chosen_cost = self._sequence_cost(model, latents, z_goal, last_idx)
        self.predictor_calls += iterations * math.ceil(h_max / chunk)
        return Plan(
            actions=actions, cost=chosen_cost, latents=latents if return_latents else None,
            iterations=iterations, stats={"elite_cost_min": float(elite_costs[:, 0].mean())},
        )

    # ---------------------------------------------------------------------------- pieces
    def _check_latents(self, z0: torch.Tensor, z_goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(z0, torch.Tensor) or not isinstance(z_goal, torch.Tensor):
            raise TypeError("z0 and z_goal must be torch tensors [E, D] (encode the observations first)")
        if z0.ndim != 2 or z0.shape != z_goal.shape:
            raise ValueError(f"z0 and z_goal must both be [E, D], got {tuple(z0.shape)} and {tuple(z_goal.shape)}")
        z0 = z0.to(self.device, torch.float32)
        return z0, z_goal.to(self.device, torch.float32)

    def _horizons(self, steps_left: int | torch.Tensor, n_ep: int) -> torch.Tensor:
        steps = torch.as_tensor(steps_left, device=self.device).long().reshape(-1)
        if steps.numel() == 1:
            steps = steps.expand(n_ep)
        if steps.numel() != n_ep:
            raise ValueError(f"steps_left must be an int or have one entry per episode ({n_ep}), got {steps.numel()}")
        if bool((steps < 1).any()):
            raise ValueError(f"steps_left must be >= 1, got {steps.tolist()}")
        return steps.clamp(max=self.config.horizon)

    def _initial_distribution(self, n_ep, n_seg, warm_start, warm_mask):
        """Segment mean and std [E, S, 2] to start from, and ``warm`` [E] bool: episodes warm-started."""
        cfg = self.config
        mean = torch.zeros((n_ep, n_seg, 2), device=self.device)
        std = torch.full((n_ep, n_seg, 2), cfg.init_std, device=self.device)
        if warm_start is None or not cfg.warm_start or warm_start.shape[1] == 0:
            return mean, std, torch.zeros(n_ep, dtype=torch.bool, device=self.device)
        if warm_start.ndim != 3 or warm_start.shape[0] != n_ep or warm_start.shape[2] != 2:
            raise ValueError(f"warm_start must be [E={n_ep}, h, 2], got {tuple(warm_start.shape)}")
        mask = torch.ones(n_ep, dtype=torch.bool, device=self.device) if warm_mask is None else warm_mask.to(self.device).bool()
        k = cfg.segment_length
        steps = torch.zeros((n_ep, n_seg * k, 2), device=self.device)
        h = min(warm_start.shape[1], n_seg * k)
        steps[:, :h] = warm_start[:, :h].to(self.device, torch.float32)  # unknown tail: stay put
        warm_mean = steps.reshape(n_ep, n_seg, k, 2).mean(dim=2)
        warm_std = cfg.init_std if cfg.warm_std is None else cfg.warm_std
        mean = torch.where(mask[:, None, None], warm_mean, mean)
        std = torch.where(mask[:, None, None], torch.full_like(std, warm_std), std)
        return mean, std, mask

    def _segments_to_steps(self, segments: torch.Tensor, h: int) -> torch.Tensor:
        """[..., S, 2] segment actions -> [..., h, 2] per-step actions (each repeated k times)."""
        return segments.repeat_interleave(self.config.segment_length, dim=-2)[..., :h, :]

    def _executed_steps(self, segments: torch.Tensor, h: int) -> torch.Tensor:
        """The chosen plan's per-step actions [..., h, 2]; with ``execute_retimed`` the same route
        walked at ``max_norm`` px per step (the search scores ``_segments_to_steps`` unchanged)."""
        actions = self._segments_to_steps(segments, h)
        return retime_segments(actions, 1, self.config.max_norm) if self.config.execute_retimed else actions

    @staticmethod
    def _pad_to_chunk(actions: torch.Tensor, chunk: int) -> torch.Tensor:
        """Zero-pad [B, h, 2] to a multiple of the model's action chunk (zero moves: stay put)."""
        pad = (-actions.shape[1]) % chunk
        if pad:
            actions = torch.cat([actions, actions.new_zeros(actions.shape[0], pad, 2)], dim=1)
        return actions

    @staticmethod
    def _unroll(model, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        z_seq = model.unroll(z0, actions)
        if z_seq.ndim != 3 or z_seq.shape[0] != z0.shape[0]:
            raise ValueError(f"model.unroll must return [B, L + 1, D], got {tuple(z_seq.shape)}")
        return z_seq.float()

    def _distance(self, model, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        """Distance of latents z [B, L, D] to z_goal [B, D] -> [B, L] (eq. 14's summand)."""
        custom = getattr(model, "planning_distance", None)
        if callable(custom):
            return custom(z, z_goal[:, None, :].expand_as(z))
        diff = z - z_goal[:, None, :]
        if self.config.distance == "mse":
            return diff.pow(2).mean(dim=-1)
        return diff.norm(dim=-1)

    def _sequence_cost(
        self, model, z_seq: torch.Tensor, z_goal: torch.Tensor, last_idx: torch.Tensor, return_stop: bool = False
    ):
        """Cost [B] of unrolled latents z_seq [B, L + 1, D]; ``last_idx`` [B] is each one's final latent.
        With ``return_stop`` also the segment [B] after which a "stop" plan stands still (else None)."""
        d = self._distance(model, z_seq[:, 1:], z_goal)  # [B, L]; t = 0 is the same for every sample
        chunk = int(getattr(model, "action_chunk", 1) or 1)
        out, stop = plan_cost(d, last_idx, chunk, self.config)
        return (out, stop) if return_stop else out

    def _costs(self, model, z0, z_goal, samples, h_max, chunk, last_idx):
        """Costs [E, N] of samples [E, N, S, 2] from latents z0, z_goal [E, D], and the samples (for
        "stop", each one standing still after its best stopping segment)."""
        n_ep, n = samples.shape[:2]
        actions = self._segments_to_steps(samples, h_max).reshape(n_ep * n, h_max, 2)
        z_seq = self._unroll(model, z0.repeat_interleave(n, dim=0), self._pad_to_chunk(actions, chunk))
        cost, stop = self._sequence_cost(model, z_seq, z_goal.repeat_interleave(n, dim=0), last_idx.repeat_interleave(n),
                                         return_stop=True)
        if stop is not None:
            seg = torch.arange(samples.shape[2], device=samples.device)
            samples = samples * (seg[None, None, :] <= stop.reshape(n_ep, n)[:, :, None])[..., None]
        return cost.reshape(n_ep, n), samples

    def _refit(self, elite_costs: torch.Tensor, elites: torch.Tensor):
        raise NotImplementedError


class MPPIPlanner(_SamplingPlanner):
    """MPPI, the paper's Algorithm 1: exponentially weighted refit over the top-Q elites."""

    name = "mppi"

    def _refit(self, elite_costs, elites):
        cfg = self.config
        w = mppi_weights(elite_costs, cfg.temperature, cfg.temperature_mode, cfg.normalize_costs)  # [E, Q]
        wb = w[:, :, None, None]
        mean = (wb * elites).sum(dim=1)
        std = torch.sqrt((wb * (elites - mean[:, None]) ** 2).sum(dim=1))
        return mean, std, w


class CEMPlanner(_SamplingPlanner):
    """Cross-entropy method (docs/reference.md#cem): mean and unbiased std of the top-Q elites, uniform weights."""

    name = "cem"

    def _refit(self, elite_costs, elites):
        q = elites.shape[1]
        w = torch.full(elite_costs.shape, 1.0 / q, device=elites.device)
        std = elites.std(dim=1, unbiased=True) if q > 1 else torch.zeros_like(elites[:, 0])
        return elites.mean(dim=1), std, w


PLANNERS = {"mppi": MPPIPlanner, "cem": CEMPlanner, "grad": None}  # grad: jepa_agent.grad_planner (imported late)


def make_planner(name: str = "mppi", config: PlannerConfig | None = None, device: str = "cpu", **overrides: Any):
    """Build a planner by name: "mppi", "cem", "grad" (Adam through the model, seeded by MPPI), or
    "<planner>-<cost>" ("mppi-last", "cem-sum", "grad-arrive", ...)."""
    # "-last" and "-sum" are the earlier planners exactly: without drop_segments and execute_retimed
    earlier = {"drop_segments": False, "execute_retimed": False}
    variants = {f"{p}-{c}": (p, {"cost": c, **(earlier if c in ("last", "sum") else {})})
                for p in PLANNERS for c in COSTS}
    key = name.lower()
    if key in variants:
        key, extra = variants[key]
        overrides = {**extra, **overrides}
    if key not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; expected one of {sorted(PLANNERS) + sorted(variants)}")
    if key == "grad":
        from jepa_agent.grad_planner import GradPlanner  # it builds on MPPIPlanner

        return GradPlanner(config, device=device, **overrides)
    return PLANNERS[key](config, device=device, **overrides)
