"""``PlannerConfig``: every knob of the latent planners (MPPI, CEM, the gradient planner), with its
validation and the named presets of the paper's and the reference's MPPI.

Kept apart from ``jepa_agent.planners`` so that the configuration, the one part users set, reads on
its own; ``jepa_agent.planners`` re-exports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from tworooms_env.core import MAX_STEP_NORM  # pixels: the env's clip

COSTS = ("last", "sum", "arrive", "min", "stop")


@dataclass(frozen=True)
class PlannerConfig:
    """Every knob of MPPI/CEM. Defaults: segment MPPI with the "stop" cost (time_penalty 0.01,
    arrive_radius 0.5 in the shipped model's latent units), drop_segments proposals, and the chosen
    route executed at full speed (execute_retimed) (docs/experiments/planning-objective.md);
    the earlier default, the last-step cost, is ``cost="last"`` (``make_planner("mppi-last")``).

    Attributes:
        horizon: planning horizon H in env steps; the planner uses min(H, steps left).
        segment_length: k, steps per piecewise-constant action segment (1: per-step actions).
        num_samples: N candidate sequences per episode and iteration.
        num_elites: Q, the top-Q samples that the refit uses.
        iterations_first: optimisation iterations of a plan without a warm start.
        iterations_later: iterations of a warm-started plan (replans during an episode).
        init_std: initial std of each action coordinate (pixels) without a warm start.
        warm_std: initial std around a warm start (None: ``init_std``).
        min_std: floor on the refitted std, so that later replans keep exploring.
        max_std: ceiling on the refitted std (None: no ceiling).
        max_norm: action norm limit in pixels (the env clips at 2.45).
        clip_norm: clip every sampled action to ``max_norm`` (paper; the reference MPPI does not).
        cost: "last" scores only the last imagined latent (the paper's "MPPI-last"), "sum" sums
            the distance over the horizon steps (eq. 14), "arrive" is
            min_t [max(max_{s >= t} d_s - arrive_radius, 0) + time_penalty * t]: the first time from
            which the plan stays within ``arrive_radius`` of the goal, traded against how far outside
            it the plan stays (indifferent to the route like "last", which it equals with both
            parameters 0; among plans that arrive, the earliest costs least); "min" is
            min_t [max(d_t - arrive_radius, 0) + time_penalty * t] (the same without having to stay);
            "stop" is "min" over the segment ends, and a sample that is within ``arrive_radius`` of
            the goal at its best segment end stands still (zero actions) after it: each sample is
            scored by its best stopping time, and the plans stop at the goal, which random segments
            almost never do (without it, samples that arrive early move on, so the plans found
            arrive at the end of the horizon). Samples that do not arrive keep all their segments.
        time_penalty: lambda of "arrive", "min" and "stop", in the model's planning-distance units per env
            step (ignored by "last" and "sum").
        arrive_radius: epsilon of "arrive", "min" and "stop", the goal region in planning-distance units.
        arrive_slope: growth of that goal region per env step ahead beyond the first segment
            (planning-distance units per step; 0: a fixed region): the imagined latents drift further from the truth the
            further they are unrolled, so a plan that truly arrives late is imagined further from
            the goal than one that arrives soon; the region shrinks back to ``arrive_radius`` as
            the agent nears the goal and its plans shorten.
        distance: "l2" (paper, unsquared), "mse" (reference: squared distance / D). Ignored when
            the model defines ``planning_distance(z, z_goal)``.
        temperature: tau of the MPPI weights.
        temperature_mode: "divide": w = exp(-(S - S_min) / tau) (paper, Algorithm 1);
            "multiply": w = exp(-tau (S - S_min)) (reference code, docs/reference.md#mppi-as-the-reference-runs-it).
        normalize_costs: divide the elite cost gaps S - S_min by their range first, so that tau is
            unit-free and one value works for any model's latent scale (not in the paper).
        execute: "mean" returns the refined mean (paper); "random_elite" an elite of the last
            iteration drawn with the weights (reference); "best" the lowest-cost sample
            seen in any iteration of this plan (the warm start included).
        warm_start: use the caller's warm start (reference: no warm start).
        include_mean: add the current mean as one of the N samples (scores the warm start).
        carry_elites: carry this many elites of an iteration into the next one's samples (iCEM),
            so that a refit never loses the best sequences found (not in the paper).
        retime: add the current mean, retimed to full speed along its own path (``retime_segments``),
            as one more sample of every iteration but the first of a cold plan: a proposal that
            arrives earlier on the same route (with "arrive" and "min", earlier is cheaper).
        execute_retimed: return the chosen plan walked at ``max_norm`` px per step along its own
            path (per step: ``retime_segments`` with k = 1), ending where the plan ends: the route
            the model scored, without the slow segments that the stop-at-segment-ends rule and the
            model's drift at full speed make the search prefer (the positions it passes, not the
            speed, decide where a route goes in free space).
        drop_segments: add the current mean with one segment left out (the later ones moved one
            segment earlier, a still segment appended), for each segment, as samples of every
            iteration but the first of a cold plan: proposals that skip a detour or a wait (wall
            pushes, loops) and so arrive one segment earlier on the rest of the route.
        seed: seed of the planner's torch.Generator (sampling noise); ``reseed`` resets it.
        grad_steps: Adam steps of the gradient planner (``make_planner("grad")``) on each plan.
        grad_lr: Adam's learning rate (pixels per step of the segment actions).
        grad_seed_iterations: MPPI iterations that seed a warm-started gradient plan (a cold one
            gets ``iterations_first``); 0: Adam starts from the warm start (or zeros) directly.
        grad_candidates: sequences optimised per episode: the seed and perturbations of it (std
            ``init_std`` / 4); the one with the lowest final cost is returned.
    """

    horizon: int = 90
    segment_length: int = 10
    num_samples: int = 256
    num_elites: int = 32
    iterations_first: int = 20
    iterations_later: int = 6
    init_std: float = 3.0
    warm_std: float | None = None
    min_std: float = 0.1
    max_std: float | None = None
    max_norm: float = MAX_STEP_NORM
    clip_norm: bool = True
    cost: Literal["last", "sum", "arrive", "min", "stop"] = "stop"
    time_penalty: float = 0.01
    arrive_radius: float = 0.5
    arrive_slope: float = 0.0
    distance: Literal["l2", "mse"] = "l2"
    temperature: float = 0.1
    temperature_mode: Literal["divide", "multiply"] = "divide"
    normalize_costs: bool = True
    execute: Literal["mean", "random_elite", "best"] = "mean"
    warm_start: bool = True
    include_mean: bool = True
    carry_elites: int = 0
    retime: bool = False
    execute_retimed: bool = True
    drop_segments: bool = True
    seed: int = 0
    grad_steps: int = 20
    grad_lr: float = 0.3
    grad_seed_iterations: int = 2
    grad_candidates: int = 4

    def __post_init__(self) -> None:
        positive = ("horizon", "segment_length", "num_samples", "num_elites", "iterations_first", "grad_candidates")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PlannerConfig.{name} must be a positive integer, got {value!r}")
        for name in ("iterations_later", "grad_steps", "grad_seed_iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"PlannerConfig.{name} must be an integer >= 0, got {value!r}")
        if self.num_elites > self.num_samples:
            raise ValueError(f"num_elites ({self.num_elites}) must be <= num_samples ({self.num_samples})")
        for name in ("init_std", "temperature", "max_norm", "grad_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PlannerConfig.{name} must be > 0, got {getattr(self, name)!r}")
        choices = {"cost": COSTS, "distance": ("l2", "mse"), "temperature_mode": ("divide", "multiply"),
                   "execute": ("mean", "random_elite", "best")}
        for name in ("time_penalty", "arrive_radius", "arrive_slope"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"PlannerConfig.{name} must be a number >= 0, got {value!r}")
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"PlannerConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PlannerConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown planner option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def reference_mppi(cls, **overrides: Any) -> "PlannerConfig":
        """The reference code's MPPI (docs/reference.md#mppi-as-the-reference-runs-it): per-step, 200
        samples, 20 elites, 20 iterations every step, sigma 2, tau 0.005 multiplying an MSE sum over the
        horizon, no clipping, a random elite executed, no warm start. About 25 minutes per episode on a
        2-core CPU: for comparison only."""
        base = dict(
            horizon=90, segment_length=1, num_samples=200, num_elites=20, iterations_first=20,
            iterations_later=20, init_std=2.0, min_std=0.0 + 1e-6, max_std=None, clip_norm=False,
            cost="sum", distance="mse", temperature=0.005, temperature_mode="multiply",
            normalize_costs=False, execute="random_elite", warm_start=False, include_mean=False, drop_segments=False,
            execute_retimed=False,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def paper_mppi(cls, **overrides: Any) -> "PlannerConfig":
        """The paper's Algorithm 1 as written: per-step actions, summed L2 cost, weights
        exp(-(S - S_min)/tau), clipped norms, refined mean executed."""
        base = dict(
            segment_length=1, num_samples=200, num_elites=20, init_std=2.0, cost="sum",
            distance="l2", temperature_mode="divide", normalize_costs=False, temperature=1.0,
            execute="mean", include_mean=False, drop_segments=False, execute_retimed=False,
        )
        base.update(overrides)
        return cls(**base)
