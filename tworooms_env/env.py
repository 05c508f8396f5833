"""``TwoRoomsEnv``: the Gymnasium environment of the Two Rooms task.

A dot moves in a 65 x 65 arena split by a vertical wall with a door; the agent must reach a goal
in the other room. Mechanics (geometry, dynamics, sampling, pixels) come from ``core``; this file
only adds the Gymnasium contract: spaces, seeding, options, reward, info, rendering hooks.

Spaces:
- observation: ``Box(0, 255, (2, 65, 65), uint8)``, CHANNEL-FIRST (like the reference): channel 0 is
  the dot (Gaussian, std 1.3 px), channel 1 the walls (border lines and the centre wall, 0/255).
- action: ``Box(-1, 1, (2,), float32)``, a normalised displacement. The dot moves by
  ``MAX_STEP_NORM * action`` = 2.45 px per unit, and the norm of that displacement is clipped to
  2.45 px (so the reachable set per step is a disk, not the box's corners). Finite actions outside
  the box are clipped, never rejected; NaN/inf or a wrong shape raise ``ValueError``.

Reward: ``0.0`` when the dot ends the step within 4.5 px of the goal (``info["is_success"]``),
``-1.0`` otherwise (sparse, SB3/HER convention). Episodes are truncated after 200 steps by the
registered ``TimeLimit``; with ``terminate_on_success=True`` they also terminate on success.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from tworooms_env import core
from tworooms_env.splits import resolve_layouts

MAX_EPISODE_STEPS = 200
_OPTION_KEYS = frozenset({"wall_x", "door_y", "start", "goal", "task_seed", "task_index"})
_PATCH = 9  # side of core.dot_patches' patch


class TwoRoomsEnv(gym.Env):
    """Goal-conditioned navigation between two rooms, from pixels.

    Args:
        render_mode: None, ``"rgb_array"`` (upscaled RGB picture) or ``"human"`` (pygame window).
        fixed_wall: always use the fixed layout (wall 32, door 18) instead of a random one.
        terminate_on_success: end the episode when the goal is reached (off: docs/protocol.md scores
            the position after the last of the 200 steps).
        render_scale: upscaling factor of the RGB picture (65 px -> 65 * render_scale).
        render_trail: draw the path of the episode so far in the RGB picture.
        layouts: draw every episode's layout from this set only: ``"heldout:SPLIT"``,
            ``"train:SPLIT"`` (named splits of ``tworooms_env.splits``) or an array [K, 2] of
            (wall_x, door_y). A task's own generator picks the layout from the sorted list, so
            ``task_seed`` / ``task_index`` still define the task (PROTOCOL's seeds, another layout set).

    ``reset(options=...)`` accepts ``wall_x``, ``door_y`` (integers of the layout set), ``start``,
    ``goal`` (free positions in opposite rooms), or ``task_seed`` with ``task_index`` (exactly
    task ``task_index`` of evaluation seed ``task_seed``, docs/protocol.md); explicit keys override the
    corresponding parts of the sampled task.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}

    def __init__(
        self,
        render_mode: str | None = None,
        fixed_wall: bool = False,
        terminate_on_success: bool = False,
        render_scale: int = 8,
        render_trail: bool = True,
        layouts: str | np.ndarray | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if int(render_scale) < 1:
            raise ValueError(f"render_scale must be a positive integer, got {render_scale}")
        self.render_mode = render_mode
        self.fixed_wall = bool(fixed_wall)
        self.terminate_on_success = bool(terminate_on_success)
        self.render_scale = int(render_scale)
        self.render_trail = bool(render_trail)
        self.layouts = resolve_layouts(layouts)  # None: every layout
        if self.layouts is not None and self.fixed_wall:
            raise ValueError("fixed_wall=True and layouts exclude each other")
        size = core.IMG_SIZE
        self.observation_space = spaces.Box(0, 255, (core.N_CHANNELS, size, size), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._x = self._y = 0.0
        self._goal = np.zeros(2)
        self._wall_x = self._door_y = 0
        self._walls: np.ndarray | None = None  # [2, 65, 65] frame with an empty dot channel
        self._goal_obs: np.ndarray | None = None
        self._path: list[tuple[float, float]] = []
        self._window = None  # rendering.HumanWindow, created on first human render

    # ------------------------------------------------------------------------------- reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task = self._task_from_options(options or {})
        self._wall_x, self._door_y = task["wall_x"], task["door_y"]
        self._x, self._y = float(task["start"][0]), float(task["start"][1])
        self._goal = np.array(task["goal"], dtype=np.float64)
        self._goal.setflags(write=False)
        walls = np.zeros((core.N_CHANNELS, core.IMG_SIZE, core.IMG_SIZE), dtype=np.uint8)
        walls[1] = core.render_walls(self._wall_x, self._door_y)
        self._walls = walls
        self._goal_obs = core.render_frames(self._goal[None], self._wall_x, self._door_y)[0]
        self._goal_obs.setflags(write=False)
        self._path = [(self._x, self._y)]
        obs = self._observation()
        info = self._info(blocked=False)
        if self.render_mode == "human":
            self.render()
        return obs, info

    def _task_from_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The episode's task: sampled (or PROTOCOL task), then overridden by explicit options."""
        if not isinstance(options, dict):
            raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected any of {sorted(_OPTION_KEYS)}")
        if ("task_seed" in options) != ("task_index" in options):
            raise ValueError("options 'task_seed' and 'task_index' must be given together")
        rng = self.np_random
        if "task_seed" in options:
            seed, index = options["task_seed"], options["task_index"]
            for name, value in (("task_seed", seed), ("task_index", index)):
                if not isinstance(value, (int, np.integer)) or value < 0:
                    raise ValueError(f"option {name!r} must be a non-negative integer, got {value!r}")
            rng = core.task_rng(int(seed), int(index))
        task = core.sample_tasks(rng, 1, self.fixed_wall, self.layouts)
        for name in ("wall_x", "door_y"):
            if name in options and not _is_integer(options[name]):
                raise ValueError(f"option {name!r} must be an integer, got {options[name]!r}")
        wall_x = int(options.get("wall_x", task["wall_x"][0]))
        door_y = int(options.get("door_y", task["door_y"][0]))
        core.validate_layout(wall_x, door_y)
        start, goal = task["start"][0], task["goal"][0]
        if "wall_x" in options or "door_y" in options:  # the sampled points belong to another layout
            start, goal = core.sample_start_goal(rng, [wall_x], [door_y])
            start, goal = start[0], goal[0]
        start = _checked_point(options["start"], "start", wall_x, door_y) if "start" in options else start
        goal = _checked_point(options["goal"], "goal", wall_x, door_y) if "goal" in options else goal
        if ("start" in options) != ("goal" in options):
            # Only one point was given: draw the other one in the opposite room.
            a, b = core.sample_start_goal(rng, [wall_x], [door_y])
            by_room = {int(core.room_of(a[0], wall_x)): a[0], int(core.room_of(b[0], wall_x)): b[0]}
            if "start" in options:
                goal = by_room[1 - int(core.room_of(start, wall_x))]
            else:
                start = by_room[1 - int(core.room_of(goal, wall_x))]
        if core.room_of(start, wall_x) == core.room_of(goal, wall_x):
            raise ValueError(f"start {start.tolist()} and goal {goal.tolist()} must be in opposite rooms (wall at x={wall_x})")
        return {"wall_x": wall_x, "door_y": door_y, "start": start, "goal": goal}

    # -------------------------------------------------------------------------------- step
    def step(self, action):
        if self._walls is None:
            raise ResetNeeded("call reset() before step()")
        ax, ay = _checked_action(action)
        self._x, self._y, blocked = core.step_one(
            self._x, self._y, ax * core.MAX_STEP_NORM, ay * core.MAX_STEP_NORM, self._wall_x, self._door_y
        )
        if self.render_mode is not None and self.render_trail:  # the trail only serves rendering
            self._path.append((self._x, self._y))
        obs = self._observation()
        info = self._info(blocked)
        reward = 0.0 if info["is_success"] else -1.0
        terminated = self.terminate_on_success and info["is_success"]
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, False, info

    def _observation(self) -> np.ndarray:
        obs = self._walls.copy()
        patch, row0, col0 = core.dot_patches(np.array([[self._x, self._y]]))
        r, c = int(row0[0]), int(col0[0])
        obs[0, r : r + _PATCH, c : c + _PATCH] = patch[0]
        return obs

    def _info(self, blocked: bool) -> dict[str, Any]:
        distance = math.hypot(self._x - self._goal[0], self._y - self._goal[1])
        return {
            "is_success": distance < core.SUCCESS_RADIUS,
            "distance": distance,
            "position": np.array([self._x, self._y]),
            "goal": self._goal.copy(),  # fresh arrays: callers keep infos (Gymnasium's rule)
            "wall_x": self._wall_x,
            "door_y": self._door_y,
            "blocked": bool(blocked),
            "goal_obs": self._goal_obs.copy(),
        }

    # ----------------------------------------------------------------------- accessors
    @property
    def position(self) -> np.ndarray:
        """The dot's true position (x, y) in pixels, float64."""
        return np.array([self._x, self._y])

    @property
    def goal(self) -> np.ndarray:
        """The goal position (x, y) in pixels, float64 (read-only)."""
        return self._goal

    @property
    def layout(self) -> tuple[int, int]:
        """The episode's layout ``(wall_x, door_y)``."""
        return self._wall_x, self._door_y

    # ---------------------------------------------------------------------------- render
    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._walls is None:
            raise ResetNeeded("call reset() before render()")
        from tworooms_env import rendering  # keeps pygame out of the import path of training code

        frame = rendering.render_rgb(
            self.position, self._goal, self._wall_x, self._door_y,
            path=np.asarray(self._path) if self.render_trail else None, scale=self.render_scale,
        )
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = rendering.HumanWindow("TwoRooms", frame.shape[1], frame.shape[0])
        self._window.show(frame, self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_window"] = None  # a pygame window does not pickle; it reopens on the next render
        return state


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())


def _checked_action(action) -> tuple[float, float]:
    """The action as two finite floats; clear errors for anything else."""
    if isinstance(action, np.ndarray):
        if action.shape != (2,) or action.dtype.kind not in "fiu":
            raise ValueError(f"action must be a numeric array of shape (2,) (float32 in [-1, 1]), got shape {action.shape} dtype {action.dtype}")
        ax, ay = float(action[0]), float(action[1])
    else:
        try:
            arr = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"action must be a numeric array of shape (2,) (float32 in [-1, 1]), got {action!r}") from err
        if arr.shape != (2,):
            raise ValueError(f"action must have shape (2,) (float32 in [-1, 1]), got shape {arr.shape}")
        ax, ay = float(arr[0]), float(arr[1])
    if not (math.isfinite(ax) and math.isfinite(ay)):
        raise ValueError(f"action must be finite (float32 in [-1, 1]), got [{ax}, {ay}]")
    return ax, ay


def _checked_point(value, name: str, wall_x: int, door_y: int) -> np.ndarray:
    """A start/goal option as float64 [2]; it must be free (inside the arena, not in the wall)."""
    try:
        p = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"option {name!r} must be an (x, y) pair of numbers, got {value!r}") from err
    if p.shape != (2,) or not np.all(np.isfinite(p)):
        raise ValueError(f"option {name!r} must be a finite (x, y) pair, got {value!r}")
    if not core.in_arena(p):
        raise ValueError(f"option {name!r} = {p.tolist()} is outside the arena: x and y must be in ({core.BORDER_LO}, {core.BORDER_HI})")
    if core.in_wall(p, wall_x, door_y):
        raise ValueError(f"option {name!r} = {p.tolist()} is inside the wall (wall_x={wall_x}, door_y={door_y})")
    return p
