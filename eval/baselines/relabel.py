"""Hindsight goal relabelling for offline goal-conditioned RL, as OGBench does it.

The dataset is reward-free: N trajectories of L states. A training sample is a transition
(s_t, a_t, s_{t+1}) of trajectory i (t uniform in 0 .. L-2) and a goal g drawn from a *mixture*:

- with probability ``p_cur``  the current state, g = s_t;
- with probability ``p_traj`` a future state of the same trajectory, g = s_{t+k}:
  ``geometric=True``:  k ~ Geometric(1 - gamma) on {1, 2, ...}, clipped to the last state
  (P(k) = (1 - gamma) gamma^(k-1): the discounted state-occupancy of the data's own policy);
  ``geometric=False``: t+k uniform on {t+1, ..., L-1};
- with probability ``p_rand``  a random state of the dataset (any time of a random trajectory;
  with ``groups`` a trajectory of the same layout, because an evaluation goal image always shows
  the observation's own wall and door).

Reward and done mask of a relabelled transition (OGBench's ``gc_negative`` convention)::

    success = (g is s_t)            same (trajectory, time) index; or, with ``radius``: same
                                    layout and || pos(s_t) - pos(g) || < radius
    r       = success - 1           0 at the goal, -1 elsewhere
    mask    = 1 - success           no bootstrapping past the goal

so that V(s, g) ~ -(number of steps from s to g) for an optimal policy (discounted).

Mixtures used in this project (OGBench's defaults for GCIVL / GCIQL / HIQL):

- :data:`VALUE_MIXTURE`: 0.2 current / 0.5 future (geometric) / 0.3 random, for value functions;
- :data:`ACTOR_MIXTURE`: 0 / 1 / 0 future (uniform), for policies (GCBC's hindsight goals);
- :data:`CONTRASTIVE_MIXTURE`: 0 / 1 / 0 future (geometric), CRL's positives.

Everything is vectorised over the batch (numpy, no Python loop over samples).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Which part of the mixture a goal came from (returned by ``sample_goals``).
CURRENT, FUTURE, RANDOM = 0, 1, 2


@dataclass(frozen=True)
class GoalMixture:
    """Probabilities of the three goal sources (they must sum to 1) and the future-offset law."""

    p_cur: float
    p_traj: float
    p_rand: float
    geometric: bool = True  # future offset: Geometric(1 - gamma) (True) or uniform to the end (False)

    def __post_init__(self) -> None:
        ps = (self.p_cur, self.p_traj, self.p_rand)
        if min(ps) < 0 or abs(sum(ps) - 1.0) > 1e-6:
            raise ValueError(f"goal mixture probabilities must be >= 0 and sum to 1, got {ps}")

    def to_dict(self) -> dict:
        return asdict(self)


VALUE_MIXTURE = GoalMixture(0.2, 0.5, 0.3, geometric=True)
ACTOR_MIXTURE = GoalMixture(0.0, 1.0, 0.0, geometric=False)
CONTRASTIVE_MIXTURE = GoalMixture(0.0, 1.0, 0.0, geometric=True)


class LayoutGroups:
    """Trajectories grouped by layout, to draw a random trajectory of the same layout as i."""

    def __init__(self, wall_x: np.ndarray, door_y: np.ndarray) -> None:
        codes = np.asarray(wall_x, dtype=np.int64) * 1024 + np.asarray(door_y, dtype=np.int64)
        self.order = np.argsort(codes, kind="stable")  # trajectories sorted by layout
        _, first, inverse, counts = np.unique(codes[self.order], return_index=True, return_inverse=True, return_counts=True)
        group = np.empty_like(inverse)
        group[self.order] = inverse  # group id of each trajectory
        self.start, self.count = first[group], counts[group]  # [N]: where i's group begins, its size

    def draw(self, rng: np.random.Generator, i: np.ndarray) -> np.ndarray:
        """A uniformly drawn trajectory of the same layout as each i (i itself included)."""
        offset = np.floor(rng.random(i.shape) * self.count[i]).astype(np.int64)
        return self.order[self.start[i] + offset]


def sample_transitions(rng: np.random.Generator, n_trajectories: int, length: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, t) int64 [B]: trajectory i uniform, time t uniform over the L - 1 states with an action."""
    if n_trajectories < 1 or length < 2:
        raise ValueError(f"need >= 1 trajectory of >= 2 states, got {n_trajectories} of {length}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return rng.integers(0, n_trajectories, batch_size), rng.integers(0, length - 1, batch_size)


def future_times(rng: np.random.Generator, t: np.ndarray, length: int, geometric: bool, gamma: float) -> np.ndarray:
    """Times t + k of future states, k >= 1, never past the last state L - 1 (see module doc)."""
    last = length - 1
    if geometric:
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {gamma}")
        k = rng.geometric(1.0 - gamma, size=t.shape)  # support {1, 2, ...}
        return np.minimum(t + k, last)
    lo = np.minimum(t + 1, last)
    return lo + np.floor(rng.random(t.shape) * (last - lo + 1)).astype(np.int64)  # uniform on {lo..last}


def sample_goals(
    rng: np.random.Generator, i: np.ndarray, t: np.ndarray, n_trajectories: int, length: int,
    mixture: GoalMixture, gamma: float = 0.99, groups: LayoutGroups | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Goal indices (goal trajectory, goal time, source in {CURRENT, FUTURE, RANDOM}), each [B].

    Random goals come from any trajectory, or from one of the same layout when ``groups`` is given.
    """
    i, t = np.asarray(i, dtype=np.int64), np.asarray(t, dtype=np.int64)
    u = rng.random(t.shape)
    source = np.where(u < mixture.p_cur, CURRENT, np.where(u < mixture.p_cur + mixture.p_traj, FUTURE, RANDOM))
    goal_i, goal_t = i.copy(), t.copy()  # CURRENT: the state itself
    future = future_times(rng, t, length, mixture.geometric, gamma)
    goal_t = np.where(source == FUTURE, future, goal_t)
    rand = source == RANDOM
    goal_i[rand] = groups.draw(rng, i[rand]) if groups is not None else rng.integers(0, n_trajectories, int(rand.sum()))
    goal_t[rand] = rng.integers(0, length, int(rand.sum()))
    return goal_i, goal_t, source


def goal_rewards(
    i: np.ndarray, t: np.ndarray, goal_i: np.ndarray, goal_t: np.ndarray,
    positions: np.ndarray | None = None, layout: np.ndarray | None = None, radius: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(reward, mask) float32 [B] of transitions from s_t toward goals g (module doc).

    Default: success when g is the very state s_t. With ``radius`` (and ``positions`` [N, L, 2],
    ``layout`` [N, 2] of (wall_x, door_y)): also when g lies in the same layout within ``radius`` px.
    """
    success = (goal_i == i) & (goal_t == t)
    if radius is not None:
        if positions is None or layout is None:
            raise ValueError("a success radius needs positions [N, L, 2] and layout [N, 2]")
        near = np.linalg.norm(positions[i, t] - positions[goal_i, goal_t], axis=-1) < radius
        success |= near & np.all(layout[i] == layout[goal_i], axis=-1)
    reward = success.astype(np.float32) - 1.0
    return reward, 1.0 - success.astype(np.float32)
