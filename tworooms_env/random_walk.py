"""Reward-free random-walk trajectories through the environment's own dynamics
(docs/reference.md#offline-data-the-random-tier).

Three kinds of trajectories, all vectorised over trajectories (the only loop is over time):

- plain random walks: start uniform in the free arena, heading changes ~ von Mises(0, kappa),
  step length ~ Normal(mean, std) truncated to [min, max];
- door crossings (share ``cross_wall_rate``): a walk built backwards and forwards from a point in
  the door, so the dot really passes through the door at a random step;
- wall bumps (share ``wall_bump_rate``): start 2-8 px from the centre wall heading into it (half of
  them near the door height), so that the data shows contact with the wall.

Every transition is then simulated with :func:`tworooms_env.core.step_positions` on float32
states: the stored float32 positions satisfy
``float32(step_positions(p_t, a_t)) == p_{t+1}`` exactly, and ``blocked`` is the dynamics' flag.

Usage::

    rng = np.random.default_rng(0)
    traj = generate_trajectories(rng, 1000, WalkConfig(length=91))
    traj.positions  # float32 [1000, 91, 2]; traj.actions float32 [1000, 90, 2] (pixels)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tworooms_env import core

KIND_WALK, KIND_CROSSING, KIND_BUMP = 0, 1, 2
_DOOR_POINT_STD = 1.4  # docs/reference.md#door-crossings: the door point's height around door_y


@dataclass(frozen=True)
class WalkConfig:
    """Parameters of the trajectory generator (defaults: docs/reference.md#offline-data-the-random-tier,
    plus wall bumps)."""

    length: int = 91  # states per trajectory (length - 1 actions)
    step_mean: float = 1.0
    step_std: float = 0.4
    step_min: float = 0.2
    step_max: float = 1.8
    heading_kappa: float = 5.0  # von Mises concentration of heading changes (1 / 0.2)
    cross_wall_rate: float = 0.35
    wall_bump_rate: float = 0.25  # reference: 0; contact-focused data helps (docs/experiments/)
    bump_distance: tuple[float, float] = (2.0, 8.0)  # start distance from the wall face, px
    fixed_wall: bool = False

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ValueError(f"length must be >= 2 states, got {self.length}")
        if not 0.0 < self.step_min <= self.step_mean <= self.step_max <= core.MAX_STEP_NORM:
            raise ValueError(
                "need 0 < step_min <= step_mean <= step_max <= MAX_STEP_NORM, got "
                f"{self.step_min}, {self.step_mean}, {self.step_max}"
            )
        if self.step_std <= 0 or self.heading_kappa <= 0:
            raise ValueError("step_std and heading_kappa must be positive")
        rates = (self.cross_wall_rate, self.wall_bump_rate)
        if min(rates) < 0 or sum(rates) > 1:
            raise ValueError(f"cross_wall_rate and wall_bump_rate must be >= 0 and sum to <= 1, got {rates}")
        lo, hi = self.bump_distance
        if not 0 < lo <= hi:
            raise ValueError(f"bump_distance must be (lo, hi) with 0 < lo <= hi, got {self.bump_distance}")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "WalkConfig":
        d = dict(d)
        if "bump_distance" in d:
            d["bump_distance"] = tuple(d["bump_distance"])
        return cls(**d)


@dataclass
class Trajectories:
    """A batch of N trajectories of L states (all arrays indexed by trajectory first)."""

    positions: np.ndarray  # float32 [N, L, 2]
    actions: np.ndarray  # float32 [N, L-1, 2], action t leads from state t to t+1 (pixels)
    blocked: np.ndarray  # bool [N, L-1], the move was stopped at a contact point
    wall_x: np.ndarray  # int16 [N]
    door_y: np.ndarray  # int16 [N]
    kind: np.ndarray  # int8 [N]: KIND_WALK, KIND_CROSSING or KIND_BUMP

    def __len__(self) -> int:
        return self.positions.shape[0]

    @staticmethod
    def concatenate(parts: list["Trajectories"]) -> "Trajectories":
        fields = ("positions", "actions", "blocked", "wall_x", "door_y", "kind")
        return Trajectories(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


# ------------------------------------------------------------------------------ action pieces
def sample_step_lengths(rng: np.random.Generator, shape: tuple[int, ...], cfg: WalkConfig) -> np.ndarray:
    """Truncated normal step lengths by vectorised rejection (~95 % accepted per round)."""
    out = rng.normal(cfg.step_mean, cfg.step_std, size=shape)
    bad = (out < cfg.step_min) | (out > cfg.step_max)
    while bad.any():
        out[bad] = rng.normal(cfg.step_mean, cfg.step_std, size=int(bad.sum()))
        bad = (out < cfg.step_min) | (out > cfg.step_max)
    return out


def sample_headings(rng: np.random.Generator, first: np.ndarray, n_steps: int, kappa: float) -> np.ndarray:
    """Headings [N, n_steps]: ``first`` then cumulative von Mises(0, kappa) changes
    (docs/reference.md#random-walks)."""
    changes = rng.vonmises(0.0, kappa, size=(first.shape[0], n_steps - 1))
    headings = np.concatenate([first[:, None], changes], axis=1).cumsum(axis=1)
    return np.mod(headings, 2.0 * np.pi)


def random_walk_actions(
    rng: np.random.Generator, first_heading: np.ndarray, n_steps: int, cfg: WalkConfig
) -> np.ndarray:
    """Random-walk displacements [N, n_steps, 2] (float64, pixels) from initial headings [N]."""
    theta = sample_headings(rng, first_heading, n_steps, cfg.heading_kappa)
    r = sample_step_lengths(rng, theta.shape, cfg)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1)


# --------------------------------------------------------------------------- state helpers
def violates_margin(positions: np.ndarray, wall_x, door_y) -> np.ndarray:
    """True where a position lies strictly inside a margin-inflated obstacle.

    ``step_positions`` requires its input to be outside every obstacle inflated by
    ``CONTACT_MARGIN`` (contact points lie exactly on the inflated face, which is allowed).
    """
    p = np.asarray(positions, dtype=np.float64)
    lo, hi = core.BORDER_LO + core.CONTACT_MARGIN, core.BORDER_HI - core.CONTACT_MARGIN
    outside = np.any((p < lo) | (p > hi), axis=-1)
    return outside | core.in_wall(p, wall_x, door_y, core.CONTACT_MARGIN)


def sample_free_starts(rng: np.random.Generator, wall_x: np.ndarray, door_y: np.ndarray) -> np.ndarray:
    """Starts uniform in the arena outside the (margin-inflated) wall, float32 [N, 2]."""
    n = wall_x.shape[0]
    lo, hi = core.BORDER_LO + core.CONTACT_MARGIN, core.BORDER_HI - core.CONTACT_MARGIN
    out = rng.uniform(lo, hi, size=(n, 2)).astype(np.float32)
    bad = ~core.is_free(out, wall_x, door_y, core.CONTACT_MARGIN)
    while bad.any():  # the wall covers ~5 % of the arena: a few rounds
        out[bad] = rng.uniform(lo, hi, size=(int(bad.sum()), 2)).astype(np.float32)
        bad = ~core.is_free(out, wall_x, door_y, core.CONTACT_MARGIN)
    return out


def simulate(
    start: np.ndarray, actions: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the core dynamics on float32 states: (positions f32 [N,T+1,2], actions f32, blocked).

    Each step is ``float32(step_positions(float64(p_t), float64(a_t)))``. In the rare case that
    rounding to float32 lands a dot strictly inside the contact margin (the dynamics' input
    precondition), that action is shrunk by 0.1 % and the step redone, so every stored
    transition is exact and every stored state is a valid input.
    """
    actions = np.asarray(actions, dtype=np.float32).copy()
    n, t_len = actions.shape[:2]
    positions = np.empty((n, t_len + 1, 2), dtype=np.float32)
    blocked = np.empty((n, t_len), dtype=bool)
    positions[:, 0] = start
    for t in range(t_len):  # sequential in time by nature; vectorised over trajectories
        p = positions[:, t].astype(np.float64)
        new, hit = core.step_positions(p, actions[:, t].astype(np.float64), wall_x, door_y)
        new32 = new.astype(np.float32)
        bad = np.flatnonzero(violates_margin(new32, wall_x, door_y))
        while bad.size:
            actions[bad, t] *= np.float32(0.999)
            new_b, hit_b = core.step_positions(
                p[bad], actions[bad, t].astype(np.float64), wall_x[bad], door_y[bad]
            )
            new32[bad], hit[bad] = new_b.astype(np.float32), hit_b
            bad = bad[violates_margin(new32[bad], wall_x[bad], door_y[bad])]
        positions[:, t + 1], blocked[:, t] = new32, hit
    return positions, actions, blocked


# ------------------------------------------------------------------------- trajectory kinds
def walk_starts_actions(rng, wall_x, door_y, n_actions, cfg):
    """Plain random walks: (start [N,2], actions [N,n_actions,2])."""
    start = sample_free_starts(rng, wall_x, door_y)
    actions = random_walk_actions(rng, rng.uniform(0, 2 * np.pi, wall_x.shape[0]), n_actions, cfg)
    return start, actions


def clip_to_free(rng: np.random.Generator, points: np.ndarray, wall_x, door_y) -> np.ndarray:
    """Float32 starts from wished-for points [N, 2]: clipped 1 px inside the border; any that is
    still not free (inside the wall or its contact margin) is redrawn uniformly."""
    lo, hi = core.BORDER_LO + 1.0, core.BORDER_HI - 1.0
    start = np.clip(points, lo, hi).astype(np.float32)
    bad = ~core.is_free(start, wall_x, door_y, core.CONTACT_MARGIN)
    if bad.any():
        start[bad] = sample_free_starts(rng, wall_x[bad], door_y[bad])
    return start


def bump_starts_actions(rng, wall_x, door_y, n_actions, cfg):
    """Wall bumps: start 2-8 px from a wall face, heading into the wall within +-45 degrees.

    Half of them start within the door's height +- 4 px (they meet the door edges or pass),
    the others anywhere along the wall.
    """
    n = wall_x.shape[0]
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)  # -1: start left of the wall
    dist = rng.uniform(*cfg.bump_distance, size=n)
    x = wall_x + side * (core.WALL_HALF_WIDTH + dist)
    lo, hi = core.BORDER_LO + 1.0, core.BORDER_HI - 1.0
    near_door = rng.random(n) < 0.5
    reach = core.DOOR_HALF_HEIGHT + 4.0
    y = np.where(near_door, door_y + rng.uniform(-reach, reach, n), rng.uniform(lo, hi, n))
    start = clip_to_free(rng, np.stack([x, y], axis=1), wall_x, door_y)
    toward = np.where(side < 0, 0.0, np.pi)
    heading = toward + rng.uniform(-np.pi / 4, np.pi / 4, n)
    return start, random_walk_actions(rng, heading, n_actions, cfg)


def _door_points(rng, wall_x, door_y):
    """Points inside the door gap: x within the wall band, y ~ N(door_y, 1.4) truncated
    (docs/reference.md#door-crossings)."""
    n = wall_x.shape[0]
    half = core.DOOR_HALF_HEIGHT - core.CONTACT_MARGIN
    dy = rng.normal(0.0, _DOOR_POINT_STD, n)
    bad = np.abs(dy) >= half
    while bad.any():
        dy[bad] = rng.normal(0.0, _DOOR_POINT_STD, int(bad.sum()))
        bad = np.abs(dy) >= half
    dx = rng.uniform(-core.WALL_HALF_WIDTH, core.WALL_HALF_WIDTH, n)
    return np.stack([wall_x + dx, door_y + dy], axis=1).astype(np.float32).astype(np.float64)


def _escaping_walk(rng, start, first_heading, n_steps, wall_x, door_y, cfg):
    """Simulate a random walk whose blocked steps are retried reflected or reversed.

    Returns the realised displacements [N, n_steps, 2] (float64). Used backwards from the door:
    replaying them reversed and negated from the end point leads back to the door.
    """
    intended = random_walk_actions(rng, first_heading, n_steps, cfg)
    realised = np.empty_like(intended)
    p = start.copy()
    flips = np.ones((start.shape[0], 2))  # per-row sign pattern kept so the walk keeps its new direction
    for t in range(n_steps):
        a = intended[:, t] * flips
        new, hit = core.step_positions(p, a, wall_x, door_y)
        for pattern in ((-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)):
            if not hit.any():
                break
            rows = np.flatnonzero(hit)
            a_try = a[rows] * pattern
            new_r, hit_r = core.step_positions(p[rows], a_try, wall_x[rows], door_y[rows])
            ok = rows[~hit_r]
            new[ok], hit[ok] = new_r[~hit_r], False
            flips[ok] *= pattern
        realised[:, t] = new - p
        p = new
    return realised


def crossing_starts_actions(rng, wall_x, door_y, n_actions, cfg):
    """Door crossings: a backward walk from a door point, replayed reversed, then a forward walk.

    The crossing happens after k ~ UniformInt[1, n_actions - 1] actions; the backward walk heads
    into one room (a fair coin) within +-45 degrees of the wall normal, the forward walk into the
    other. The backward walk's realised displacements (blocked steps retried reflected) are
    replayed reversed and negated, so the replay reaches the door point whatever it met.
    """
    n = wall_x.shape[0]
    if n_actions < 2:
        return walk_starts_actions(rng, wall_x, door_y, n_actions, cfg)
    door = _door_points(rng, wall_x, door_y)
    k = rng.integers(1, n_actions, size=n)  # actions before the door point
    back_dir = np.where(rng.random(n) < 0.5, np.pi, 0.0)
    back_heading = back_dir + rng.uniform(-np.pi / 4, np.pi / 4, n)
    back = _escaping_walk(rng, door, back_heading, n_actions, wall_x, door_y, cfg)
    fwd_heading = back_dir + np.pi + rng.uniform(-np.pi / 4, np.pi / 4, n)
    fwd = random_walk_actions(rng, fwd_heading, n_actions, cfg)
    # Action j < k replays backward step k - 1 - j reversed; action j >= k is forward step j - k.
    j = np.arange(n_actions)[None, :]
    back_idx = np.clip(k[:, None] - 1 - j, 0, n_actions - 1)
    fwd_idx = np.clip(j - k[:, None], 0, n_actions - 1)
    rows = np.arange(n)[:, None]
    actions = np.where((j < k[:, None])[..., None], -back[rows, back_idx], fwd[rows, fwd_idx])
    back_cum = np.cumsum(back, axis=1)
    start = door + back_cum[np.arange(n), k - 1]
    start32 = start.astype(np.float32)
    bad = violates_margin(start32, wall_x, door_y)
    start32[bad] = door[bad]  # rounding at a contact point: start from the door instead (rare)
    return start32, actions


# ---------------------------------------------------------------------------------- driver
def generate_trajectories(
    rng: np.random.Generator,
    n: int,
    cfg: WalkConfig | None = None,
    layouts: np.ndarray | None = None,
) -> Trajectories:
    """``n`` trajectories of ``cfg.length`` states: walks, door crossings and wall bumps mixed.

    The kind of each trajectory is drawn independently (crossing with ``cross_wall_rate``,
    bump with ``wall_bump_rate``, else a plain walk). Layouts are uniform over the random-wall
    set (or the fixed one), or uniform over the rows of ``layouts`` ([K, 2] of (wall_x, door_y))
    when given, e.g. to keep held-out layouts out of a training stream.
    """
    cfg = cfg or WalkConfig()
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n_actions = cfg.length - 1
    if layouts is None:
        wall_x, door_y = core.sample_layouts(rng, n, cfg.fixed_wall)
    else:
        layouts = np.asarray(layouts)
        if layouts.ndim != 2 or layouts.shape[1] != 2 or layouts.shape[0] == 0:
            raise ValueError(f"layouts must be a non-empty [K, 2] array, got shape {layouts.shape}")
        core.validate_layout(layouts[:, 0], layouts[:, 1])
        pick = layouts[rng.integers(0, layouts.shape[0], size=n)].astype(np.int64)
        wall_x, door_y = pick[:, 0], pick[:, 1]
    u = rng.random(n)
    kind = np.full(n, KIND_WALK, dtype=np.int8)
    kind[u < cfg.cross_wall_rate] = KIND_CROSSING
    kind[(u >= cfg.cross_wall_rate) & (u < cfg.cross_wall_rate + cfg.wall_bump_rate)] = KIND_BUMP
    start = np.empty((n, 2), dtype=np.float32)
    actions = np.empty((n, n_actions, 2), dtype=np.float64)
    makers = {KIND_WALK: walk_starts_actions, KIND_CROSSING: crossing_starts_actions, KIND_BUMP: bump_starts_actions}
    for code, make in makers.items():
        rows = np.flatnonzero(kind == code)
        if rows.size:
            start[rows], actions[rows] = make(rng, wall_x[rows], door_y[rows], n_actions, cfg)
    positions, actions32, blocked = simulate(start, actions, wall_x, door_y)
    return Trajectories(
        positions=positions,
        actions=actions32,
        blocked=blocked,
        wall_x=wall_x.astype(np.int16),
        door_y=door_y.astype(np.int16),
        kind=kind,
    )


# ------------------------------------------------------------------------------- measures
def crossing_steps(positions: np.ndarray, wall_x: np.ndarray) -> np.ndarray:
    """bool [N, L-1]: the step from state t to t+1 changes room (passes through the door)."""
    room = core.room_of(positions, np.asarray(wall_x)[:, None])
    return room[:, 1:] != room[:, :-1]


def wall_contact_steps(positions: np.ndarray, blocked: np.ndarray, wall_x, door_y) -> np.ndarray:
    """bool [N, L-1]: the step was blocked by the centre wall (not the border)."""
    wall_x, door_y = np.asarray(wall_x)[:, None], np.asarray(door_y)[:, None]
    at_wall = core.in_wall(positions[:, 1:], wall_x, door_y, core.CONTACT_MARGIN + 1e-3)
    return blocked & at_wall


def trajectory_stats(traj: Trajectories) -> dict[str, float]:
    """Shares of trajectories that cross the door / touch an obstacle, by kind and overall."""
    crosses = crossing_steps(traj.positions, traj.wall_x).any(axis=1)
    contacts = wall_contact_steps(traj.positions, traj.blocked, traj.wall_x, traj.door_y).any(axis=1)
    out = {
        "trajectories": len(traj),
        "share_crossing": float(crosses.mean()) if len(traj) else 0.0,
        "share_wall_contact": float(contacts.mean()) if len(traj) else 0.0,
        "share_blocked_steps": float(traj.blocked.mean()) if len(traj) else 0.0,
    }
    for code, name in ((KIND_WALK, "walk"), (KIND_CROSSING, "crossing"), (KIND_BUMP, "bump"), (3, "segment"),
                       (4, "detour")):  # 3, 4: tworooms_env.families
        if name in ("segment", "detour") and not (traj.kind == code).any():
            continue
        sel = traj.kind == code
        out[f"n_{name}"] = int(sel.sum())
        if sel.any():
            out[f"{name}_share_crossing"] = float(crosses[sel].mean())
            out[f"{name}_share_wall_contact"] = float(contacts[sel].mean())
    return out
