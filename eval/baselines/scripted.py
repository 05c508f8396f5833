"""Scripted baselines of docs/protocol.md: random, greedy (privileged), oracle (privileged).

They follow the common policy interface of ``eval.runner`` (``reset(n)``, ``act_batch(obs,
goal_obs, infos) -> [E, 2]`` in env units, pixels / 2.45). Greedy and oracle read the true
positions and layout from ``infos``; they never look at the pixels.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tworooms_env import core

_DOOR_ALIGN = 2.0  # |y - door_y| below which the oracle heads straight through the door (px)
_DOOR_STANDOFF = 3.0  # waypoints this far from the wall's centre line, in front of / behind the door
_PAST_WALL = 1.5  # signed distance past the wall's centre line from which the goal room is free


def _field(infos: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    try:
        return np.array([info[key] for info in infos], dtype=np.float64)
    except KeyError as err:
        raise ValueError(f"privileged baselines need info[{key!r}] from TwoRooms-v0, missing in {sorted(infos[0])}") from err


def _towards(target: np.ndarray, pos: np.ndarray, step: float = core.MAX_STEP_NORM) -> np.ndarray:
    """Actions moving straight at ``target``, in units of ``step`` px (default the env's 2.45 px: env
    units) and of norm <= 1: a move of min(distance, step) px once multiplied by ``step``."""
    a = (target - pos) / step
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    return (a / np.maximum(norm, 1.0)).astype(np.float32)


class RandomPolicy:
    """Actions uniform in the disk of radius 2.45 px (unit disk in env units)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, n: int | None = None) -> None:
        pass

    def act_batch(self, obs: np.ndarray, goal_obs: np.ndarray, infos: Sequence[dict] | None = None) -> np.ndarray:
        n = len(obs)
        radius = np.sqrt(self.rng.random(n))  # sqrt: uniform over the disk's area
        angle = self.rng.uniform(0.0, 2.0 * np.pi, n)
        return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)


class GreedyPolicy:
    """Straight toward the goal using the true positions (privileged). Blocked by the wall unless
    the door happens to lie on the straight line."""

    name = "greedy"

    def reset(self, n: int | None = None) -> None:
        pass

    def act_batch(self, obs: np.ndarray, goal_obs: np.ndarray, infos: Sequence[dict]) -> np.ndarray:
        return _towards(_field(infos, "goal"), _field(infos, "position"))


class OraclePolicy:
    """Through the door, then to the goal, using the true positions and layout (privileged).

    In the start room: go to a waypoint in front of the door (on the door's centre line), then
    straight through to a waypoint behind it; once past the wall, straight to the goal. Near-
    shortest and never blocked: it certifies the tasks and the evaluation (expected 100 %).
    """

    name = "oracle"

    def reset(self, n: int | None = None) -> None:
        pass

    def act_batch(self, obs: np.ndarray, goal_obs: np.ndarray, infos: Sequence[dict]) -> np.ndarray:
        pos = _field(infos, "position")
        return _towards(_oracle_target(pos, _field(infos, "goal"), _field(infos, "wall_x"), _field(infos, "door_y")), pos)


def _oracle_target(pos, goal, wall_x, door_y) -> np.ndarray:
    return core.door_route_waypoint(pos, goal, wall_x, door_y, standoff=_DOOR_STANDOFF, align=_DOOR_ALIGN,
                                    past_wall=_PAST_WALL)


def oracle_route(start: np.ndarray, goal: np.ndarray, wall_x, door_y, steps: int, speed: float | None = None) -> np.ndarray:
    """The oracle's per-step pixel actions [N, steps, 2] from starts [N, 2] to goals [N, 2], made with
    the true dynamics (privileged: for diagnosis and benchmarks): through the door, then to the goal.
    ``speed``: the largest step in px (None: the env's 2.45 px, the oracle policy's)."""
    pos = np.atleast_2d(start).astype(np.float64)
    goal = np.atleast_2d(goal).astype(np.float64)
    wall_x = np.broadcast_to(np.asarray(wall_x, np.float64), (len(pos),))
    door_y = np.broadcast_to(np.asarray(door_y, np.float64), (len(pos),))
    out = np.empty((len(pos), steps, 2))
    step = core.MAX_STEP_NORM if speed is None else float(speed)
    for t in range(steps):  # closed loop: sequential in time, vectorised over routes
        out[:, t] = _towards(_oracle_target(pos, goal, wall_x, door_y), pos, step) * step
        pos = core.step_positions(pos, out[:, t], wall_x, door_y)[0]
    return out


def oracle_steps(start: np.ndarray, goal: np.ndarray, wall_x, door_y, max_steps: int = 200) -> np.ndarray:
    """The oracle's steps to success on tasks [N]: first step within ``core.SUCCESS_RADIUS`` of the goal
    on its route (``oracle_route`` with the true dynamics); 0 where it does not arrive in ``max_steps``."""
    start, goal = np.atleast_2d(start).astype(np.float64), np.atleast_2d(goal).astype(np.float64)
    wall_x = np.broadcast_to(np.asarray(wall_x, np.float64), (len(start),))
    door_y = np.broadcast_to(np.asarray(door_y, np.float64), (len(start),))
    route = oracle_route(start, goal, wall_x, door_y, max_steps)
    positions = core.rollout_positions(start, route, wall_x, door_y)  # [N, T + 1, 2]
    hit = np.linalg.norm(positions[:, 1:] - goal[:, None], axis=-1) < core.SUCCESS_RADIUS
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
