"""The data tiers: what an offline TwoRooms dataset may contain, defined once for every learner.

==========  ==================================================================================
tier        contents
==========  ==================================================================================
random      the paper's data: von Mises random walks with truncated-normal step lengths, and a
            share of door-crossing trajectories (``cross_wall_rate``, 0.35); starts uniform in the
            free space. The step distribution may be widened up to the action bound (2.45 px),
            nothing else. No trajectory is placed or steered with knowledge of a task.
contact     ``random`` plus goal-free families that use the layout to place their starts: wall
            bumps, runs along walls, pushes into the centre wall, straight door crossings,
            piecewise-constant segments (:func:`tworooms_env.families.segment_trajectories`).
navigate    ``contact`` plus goal-directed noisy door routes: a noisy expert going to random goals
            (:func:`tworooms_env.families.detour_trajectories`), as OGBench's navigate datasets.
==========  ==================================================================================

The ``random`` tier has a low-quality variant, ``door_crossings=False`` (``tworooms-collect
--no-door-crossings``): no forced crossings, and every walk that changes room is rejected, so no
trajectory passes through the door (PLDM's no-door-crossing data). Its files still hold tier
``random``; the variant is recorded in their generator parameters.

A training window may start anywhere in a stored trajectory; choosing windows with the true
positions (for example forcing a crossing inside the window) is curation and belongs to
``contact``, not ``random``. ``docs/protocol.md`` states the same rules for evaluations.

    cfg = tier_config("random")                       # the defaults of the tier
    traj = generate_tier(np.random.default_rng(0), 1000, cfg)

Every field of :class:`TierConfig` is a generator parameter, stored in a dataset file's metadata;
the names are the same as the world-model trainer's stream options, so that a trainer can check
that a dataset honours the rates it was asked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from tworooms_env.families import segment_trajectories
from tworooms_env.random_walk import Trajectories, WalkConfig, crossing_steps, generate_trajectories

TIERS = ("random", "contact", "navigate")
GENERATOR_NAME = "tworooms_env.tiers v1"


@dataclass(frozen=True)
class TierConfig:
    """Generator parameters of one data tier (shares are of all trajectories unless noted)."""

    tier: str = "random"
    length: int = 91  # states per trajectory (length - 1 actions), docs/reference.md#layouts-and-geometry
    step_mean: float = 1.2  # random-walk step lengths: truncated normal (px); the paper: 1.0 / 0.4 / 1.8
    step_std: float = 0.6
    step_min: float = 0.2
    step_max: float = 2.45  # widened to the action bound, so that the data covers what plans do
    heading_kappa: float = 5.0  # von Mises concentration of heading changes (the paper: 1 / 0.2)
    cross_wall_rate: float = 0.35  # of the random-walk part: door-crossing trajectories
    wall_bump_rate: float = 0.0  # of the random-walk part: walks started near the wall heading into it (contact)
    segment_rate: float = 0.0  # piecewise-constant families (contact)
    parallel_rate: float = 0.0  # of the segment part: runs along a wall face
    door_aim_rate: float = 0.0  # of the segment part: straight door crossings
    push_rate: float = 0.0  # of the segment part: pushes into the centre wall
    detour_rate: float = 0.0  # of the segment part, drawn first: noisy expert door routes to a random goal (navigate)
    fixed_wall: bool = False  # one layout only (wall 32, door 18)
    door_crossings: bool = True  # False: no trajectory changes room (PLDM's low-quality data; needs cross_wall_rate 0)

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"unknown data tier {self.tier!r}; expected one of {', '.join(TIERS)}")
        for name in ("cross_wall_rate", "wall_bump_rate", "segment_rate", "parallel_rate", "door_aim_rate",
                     "push_rate", "detour_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a share and must be in [0, 1], got {value}")
        if self.parallel_rate + self.door_aim_rate + self.push_rate > 1.0 + 1e-9:
            raise ValueError("parallel_rate + door_aim_rate + push_rate must be <= 1 (shares of the segment "
                             "part that is not a detour)")
        layout_aware = {k: getattr(self, k) for k in ("wall_bump_rate", "segment_rate") if getattr(self, k)}
        if self.tier == "random" and layout_aware:
            raise ValueError(f"the 'random' tier holds random walks and door crossings only; {layout_aware} "
                             "belong to the 'contact' tier")
        if self.tier != "navigate" and self.detour_rate:
            raise ValueError(f"detour_rate={self.detour_rate}: goal-directed routes belong to the 'navigate' tier")
        if self.detour_rate and not self.segment_rate:
            raise ValueError("detour_rate is a share of the segment part: set segment_rate > 0 too")
        if not self.door_crossings and (self.cross_wall_rate or self.segment_rate):
            raise ValueError("door_crossings=False keeps only walks that stay in their room: set cross_wall_rate=0 "
                             f"(got {self.cross_wall_rate}) and no segment families (got {self.segment_rate})")
        self.walk_config()  # validates lengths and step sizes

    def walk_config(self) -> WalkConfig:
        """The random-walk generator's parameters for the walk part."""
        return WalkConfig(length=self.length, step_mean=self.step_mean, step_std=self.step_std,
                          step_min=self.step_min, step_max=self.step_max, heading_kappa=self.heading_kappa,
                          cross_wall_rate=self.cross_wall_rate, wall_bump_rate=self.wall_bump_rate,
                          fixed_wall=self.fixed_wall)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.door_crossings:  # the default stays implicit: files of earlier versions keep their bytes
            del d["door_crossings"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TierConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown tier parameters {unknown}; expected some of {sorted(known)}")
        return cls(**d)


_CONTACT = dict(cross_wall_rate=0.3, wall_bump_rate=0.45, segment_rate=0.5, parallel_rate=0.35,
                door_aim_rate=0.25, push_rate=0.2)
TIER_DEFAULTS: dict[str, dict[str, Any]] = {
    "random": {},
    "contact": _CONTACT,
    "navigate": {**_CONTACT, "detour_rate": 0.3},
}


def tier_config(tier: str = "random", **overrides: Any) -> TierConfig:
    """The default parameters of ``tier`` with ``overrides``; an unknown tier or key is a clear error."""
    if tier not in TIERS:
        raise ValueError(f"unknown data tier {tier!r}; expected one of {', '.join(TIERS)}")
    known = {f.name for f in fields(TierConfig)} - {"tier"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown tier parameters {unknown}; expected some of {sorted(known)}")
    return replace(TierConfig(tier=tier, **TIER_DEFAULTS[tier]), **overrides) if overrides else \
        TierConfig(tier=tier, **TIER_DEFAULTS[tier])


def generate_tier(rng: np.random.Generator, n: int, cfg: TierConfig, layouts: np.ndarray | None = None) -> Trajectories:
    """``n`` trajectories of ``cfg.length`` states of the tier's mix (walks first, then families).

    ``layouts`` [K, 2]: draw layouts uniformly from these rows only (the random tier). With
    ``cfg.door_crossings`` False every walk that changes room is rejected and redrawn."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n_seg = int(round(cfg.segment_rate * n))
    walk = cfg.walk_config()
    if layouts is not None and n_seg:
        raise ValueError("layout-restricted datasets are only implemented for the 'random' tier")
    if not cfg.door_crossings:
        return _walks_within_rooms(rng, n, walk, layouts)
    parts = [generate_trajectories(rng, n - n_seg, walk, layouts=layouts)]
    if n_seg:
        parts.append(segment_trajectories(rng, n_seg, cfg.length, walk, cfg.parallel_rate, cfg.door_aim_rate,
                                          cfg.push_rate, cfg.detour_rate))
    return Trajectories.concatenate(parts)


def _walks_within_rooms(rng: np.random.Generator, n: int, walk: WalkConfig, layouts: np.ndarray | None) -> Trajectories:
    """``n`` random walks none of which changes room: walks that cross are rejected and redrawn.

    Rejection keeps every trajectory's full length; the kept walks are those of the plain generator
    conditioned on staying in their start room (~90 % of 91-state walks with the default steps)."""
    parts, kept = [], 0
    while kept < n:
        need = n - kept
        batch = generate_trajectories(rng, need + need // 4 + 8, walk, layouts=layouts)
        stays = ~crossing_steps(batch.positions, batch.wall_x).any(axis=1)
        rows = np.flatnonzero(stays)[:need]
        parts.append(_rows(batch, rows))
        kept += rows.size
    return Trajectories.concatenate(parts) if parts else generate_trajectories(rng, 0, walk, layouts=layouts)


def _rows(traj: Trajectories, rows: np.ndarray) -> Trajectories:
    names = ("positions", "actions", "blocked", "wall_x", "door_y", "kind")
    return Trajectories(**{k: getattr(traj, k)[rows] for k in names})


__all__ = ["TIERS", "TierConfig", "TIER_DEFAULTS", "tier_config", "generate_tier", "GENERATOR_NAME"]
