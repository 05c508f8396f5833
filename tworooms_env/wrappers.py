"""Observation variants of ``TwoRoomsEnv`` for standard RL libraries.

- ``GoalDictObservation``: the goal-conditioned dict form (``observation``, ``achieved_goal``,
  ``desired_goal``) with a vectorised ``compute_reward``, so that stable-baselines3's
  ``HerReplayBuffer`` works unchanged. Goals are 2-D positions (float32).
- ``GoalImageObservation``: pixels only, the goal as an image: ``observation`` and
  ``desired_goal`` frames (uint8 [2, 65, 65]), so that a goal-conditioned pixel policy such as
  ``jepa_agent.JEPAAgent`` runs under ``stable_baselines3.common.evaluation.evaluate_policy``.
- ``StateObservation``: privileged low-dimensional observation (dot, goal, layout) for the
  "state-based" upper reference of the baselines; never what the pixel agent sees.

Both use "unit" coordinates by default: ``u = (v - 32) / 28`` maps the arena's pixel range
(4, 60) onto (-1, 1), for positions, wall_x and door_y alike (``to_unit`` / ``from_unit``).
Pass ``normalize=False`` for raw pixels.

Usage::

    env = GoalDictObservation(gym.make("TwoRooms-v0"), observation="state")
    model = SAC("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tworooms_env import core

UNIT_CENTRE = 0.5 * (core.BORDER_LO + core.BORDER_HI)  # 32 px
UNIT_HALF_RANGE = 0.5 * (core.BORDER_HI - core.BORDER_LO)  # 28 px


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> unit coordinates (the arena interior is (-1, 1))."""
    return (np.asarray(pixels, dtype=np.float64) - UNIT_CENTRE) / UNIT_HALF_RANGE


def from_unit(unit: np.ndarray) -> np.ndarray:
    """Unit coordinates -> pixel coordinates."""
    return np.asarray(unit, dtype=np.float64) * UNIT_HALF_RANGE + UNIT_CENTRE


def _state_vector(info: dict[str, Any], with_goal: bool, normalize: bool) -> np.ndarray:
    """[x, y, (goal_x, goal_y,) wall_x, door_y] as float32, unit or pixel coordinates."""
    parts = [info["position"], info["goal"]] if with_goal else [info["position"]]
    vec = np.concatenate([*parts, [info["wall_x"], info["door_y"]]])
    return (to_unit(vec) if normalize else vec).astype(np.float32)


def _coordinate_box(n: int, normalize: bool) -> spaces.Box:
    lo, hi = (-1.0, 1.0) if normalize else (core.BORDER_LO, core.BORDER_HI)
    return spaces.Box(lo, hi, (n,), np.float32)


class _InfoObservationWrapper(gym.ObservationWrapper):
    """An observation wrapper whose ``observation()`` reads the latest info (true positions)."""

    _last_info: dict[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_info = info
        return self.observation(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last_info = info
        return self.observation(obs), reward, terminated, truncated, info


class GoalDictObservation(_InfoObservationWrapper, gym.utils.RecordConstructorArgs):
    """Goal-conditioned dict observations for HER.

    Args:
        env: a TwoRooms env (possibly already wrapped, e.g. by ``gym.make``).
        observation: ``"pixels"`` (the uint8 [2, 65, 65] frame) or ``"state"`` (float32
            [x, y, wall_x, door_y]; the goal is not in it, it is ``desired_goal``).
        normalize: goals (and the state) in unit coordinates (default) or in pixels.

    ``achieved_goal`` is the dot's position, ``desired_goal`` the goal's, both float32 [2].
    ``compute_reward`` gives 0.0 within 4.5 px of the goal and -1.0 otherwise, like the env.
    """

    def __init__(self, env: gym.Env, observation: str = "pixels", normalize: bool = True) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, observation=observation, normalize=normalize)
        gym.ObservationWrapper.__init__(self, env)
        if observation not in ("pixels", "state"):
            raise ValueError(f"observation must be 'pixels' or 'state', got {observation!r}")
        self.observation_kind = observation
        self.normalize = bool(normalize)
        obs_space = env.observation_space if observation == "pixels" else _coordinate_box(4, self.normalize)
        goal_space = _coordinate_box(2, self.normalize)
        self.observation_space = spaces.Dict(
            {"observation": obs_space, "achieved_goal": goal_space, "desired_goal": goal_space}
        )
        self._last_info: dict[str, Any] | None = None
        # Success radius in the goal's coordinates.
        self.success_radius = core.SUCCESS_RADIUS / (UNIT_HALF_RANGE if self.normalize else 1.0)

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        info = self._last_info
        goals = np.stack([info["position"], info["goal"]])
        goals = (to_unit(goals) if self.normalize else goals).astype(np.float32)
        if self.observation_kind == "state":
            observation = _state_vector(info, with_goal=False, normalize=self.normalize)
        return {"observation": observation, "achieved_goal": goals[0], "desired_goal": goals[1]}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None) -> np.ndarray:
        """Vectorised sparse reward: arrays [..., 2] -> float32 [...] (0 on success, -1 otherwise)."""
        achieved, desired = np.asarray(achieved_goal), np.asarray(desired_goal)
        if achieved.shape[-1:] != (2,) or desired.shape[-1:] != (2,):
            raise ValueError(f"goals must have a last axis of size 2, got {achieved.shape} and {desired.shape}")
        distance = np.linalg.norm(achieved.astype(np.float64) - desired, axis=-1)
        return -(distance >= self.success_radius).astype(np.float32)


class GoalImageObservation(_InfoObservationWrapper, gym.utils.RecordConstructorArgs):
    """Dict observation of two frames: ``observation`` (the current frame) and ``desired_goal`` (the
    goal frame: the same layout with the dot drawn at the goal, ``info["goal_obs"]``).

    Nothing privileged: both are uint8 [2, 65, 65] images. Usage::

        env = GoalImageObservation(gym.make("TwoRooms-v0"))
        mean, std = evaluate_policy(JEPAAgent.from_pretrained(), env, n_eval_episodes=10)
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        frame = env.observation_space
        self.observation_space = spaces.Dict({"observation": frame, "desired_goal": frame})

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"observation": observation, "desired_goal": np.asarray(self._last_info["goal_obs"])}


class StateObservation(_InfoObservationWrapper, gym.utils.RecordConstructorArgs):
    """Privileged state observation: float32 [x, y, goal_x, goal_y, wall_x, door_y].

    For state-based reference learners only (the true positions and layout). Unit coordinates by
    default (``normalize=True``), pixels otherwise. The info dict is unchanged.
    """

    def __init__(self, env: gym.Env, normalize: bool = True) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, normalize=normalize)
        gym.ObservationWrapper.__init__(self, env)
        self.normalize = bool(normalize)
        self.observation_space = _coordinate_box(6, self.normalize)
        self._last_info: dict[str, Any] | None = None

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return _state_vector(self._last_info, with_goal=True, normalize=self.normalize)
