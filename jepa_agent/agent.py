"""``JEPAAgent``: goal-conditioned control from pixels by planning in a world model's latent space.

Five lines::

    env = gymnasium.make("TwoRooms-v0")
    agent = JEPAAgent.from_pretrained()
    obs, info = env.reset(seed=0)
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info["goal_obs"]))

The agent encodes the observation, plans with MPPI or CEM (``jepa_agent.planners``), executes
``replan_every`` actions of the plan, then replans warm-started from the rest of it. It works on E
episodes at once (``act_batch``) and speaks stable-baselines3's ``predict`` so that
``evaluate_policy`` runs it on ``tworooms_env.wrappers.GoalImageObservation(env)``, whose dict
observations carry the goal frame (``observation`` and ``desired_goal``); a new goal frame starts a
new plan. (A goal given once with ``set_goal`` serves every episode: for a single fixed goal only.)

Actions are returned in the env's normalised units: pixels / 2.45, float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from jepa_agent.planner_config import PlannerConfig
from jepa_agent.planners import MAX_STEP_NORM, Plan, check_world_model, make_planner
from jepa_agent.validation import OBS_SHAPE, check_frames
from tworooms_env.env import MAX_EPISODE_STEPS

STUCK_PUSH = 0.5  # px: an executed action at least this large that left the frame unchanged was blocked
STUCK_STEPS = 3  # consecutive blocked steps before the next replan that make an episode "stuck"


def _as_frames(x: Any, name: str) -> np.ndarray | torch.Tensor:
    """Check an observation batch [E, 2, 65, 65] (uint8, or float in [0, 1], finite) and return it."""
    return check_frames(x, name)


class JEPAAgent:
    """Plan with a latent world model; act in the env's normalised action units.

    Args:
        model: any object with ``encode`` and ``unroll`` (see interfaces; e.g. a ``WorldModel`` or
            ``jepa_agent.analytic.TruePositionModel``).
        planner: a planner (``MPPIPlanner``/``CEMPlanner``) or a name ("mppi", "cem", "grad", "mppi-sum");
            None: the model's ``default_planner``, else "mppi". A name starts from the model's
            ``planner_defaults``; both are the options calibrated for a checkpoint, read from its
            ``.planner.json`` by ``load_world_model``; ``planner_overrides`` win.
        replan_every: actions executed from a plan before replanning (default: the planner's
            segment length, so that warm starts stay aligned with the segments).
        max_episode_steps: episode length, used for the horizon min(H, steps left).
        device: where the model runs; observations are moved there.
        record_plans: keep every plan with its imagined latents in ``self.plans`` (for videos).
        restart_when_stuck: replan from a cold start (no warm start, ``iterations_first``) in an
            episode whose last ``STUCK_STEPS`` actions (each >= ``STUCK_PUSH`` px) left the frame
            unchanged: the world showed that the plan is blocked where the model imagined it moving,
            so the warm start that contains it is dropped and the search begins afresh. Off by
            default: on the dev seeds it lowered success (README, "The world model").
    """

    def __init__(
        self,
        model: Any,
        planner: Any = None,
        replan_every: int | None = None,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        device: str | torch.device = "cpu",
        record_plans: bool = False,
        restart_when_stuck: bool = False,
        **planner_overrides: Any,
    ) -> None:
        check_world_model(model)
        self.device = torch.device(device)
        self.model = model.to(self.device) if hasattr(model, "to") else model
        if hasattr(self.model, "eval"):
            self.model.eval()
        if planner is None:  # the planner calibrated for the checkpoint (its .planner.json), else MPPI
            planner = getattr(self.model, "default_planner", None) or "mppi"
        if isinstance(planner, str):
            base = PlannerConfig.from_dict(dict(getattr(self.model, "planner_defaults", None) or {}))  # calibrated for the model
            planner = make_planner(planner, base, device=str(self.device), **planner_overrides)
        elif planner_overrides:
            raise ValueError("planner options can only be given with a planner name, not with a planner object")
        if not callable(getattr(planner, "plan", None)):
            raise TypeError(f"planner must offer plan(model, z0, z_goal, steps_left, warm_start), got {type(planner).__name__}")
        self.planner = planner
        segment = getattr(getattr(planner, "config", None), "segment_length", 1)
        self.replan_every = int(replan_every or segment)
        if self.replan_every < 1:
            raise ValueError(f"replan_every must be >= 1, got {replan_every}")
        self.max_episode_steps = int(max_episode_steps)
        self.record_plans = bool(record_plans)
        self.restart_when_stuck = bool(restart_when_stuck)
        self.data_tier = getattr(model, "data_tier", None)  # the training data's tier, when the checkpoint records it
        self._goal_set: np.ndarray | None = None  # goal given with set_goal (for predict)
        self.reset()

    # -------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | None = None, planner: Any = None, device: str = "cpu", **kwargs: Any) -> "JEPAAgent":
        """The agent with a saved world model (None: the checkpoint shipped in the package)."""
        from jepa_agent.world_model import load_world_model  # imported late: the agent works with any model

        model = load_world_model(path, map_location=device)
        return cls(model, planner=planner, device=device, **kwargs)

    # ----------------------------------------------------------------------------- state
    def reset(self, n: int | None = None) -> None:
        """Forget every episode (and the cached goals) and restart the planner's noise from its seed
        (the same tasks after a reset give the same actions); ``n`` pre-sizes the batch of episodes."""
        reseed = getattr(self.planner, "reseed", None)
        if callable(reseed) and hasattr(getattr(self.planner, "config", None), "seed"):
            reseed(self.planner.config.seed)
        self._n = 0
        self._goal_obs: np.ndarray | None = None
        self._z_goal: torch.Tensor | None = None
        self._plan: torch.Tensor | None = None  # [E, h, 2] pixels
        self._executed = np.zeros(0, dtype=np.int64)  # actions taken from the current plan
        self._t = np.zeros(0, dtype=np.int64)  # steps taken in each episode
        self._last_obs: np.ndarray | None = None  # the observation the last action was taken in
        self._last_push = np.zeros(0)  # norm (px) of each episode's last action
        self._blocked = np.zeros(0, dtype=np.int64)  # consecutive actions that left the frame unchanged
        self.restarts = 0  # cold restarts of stuck episodes since reset()
        self.plans: list[dict[str, Any]] = []
        if n is not None:
            self._resize(int(n))

    def _resize(self, n: int) -> None:
        self._n = n
        self._goal_obs = None
        self._z_goal = None
        self._plan = None
        self._executed = np.zeros(n, dtype=np.int64)
        self._t = np.zeros(n, dtype=np.int64)
        self._last_obs = None
        self._last_push = np.zeros(n)
        self._blocked = np.zeros(n, dtype=np.int64)

    def _restart(self, episodes: np.ndarray) -> None:
        """New episodes in the given slots: no step taken, no plan to warm-start from."""
        self._t[episodes] = 0
        self._executed[episodes] = np.iinfo(np.int64).max // 2  # forces a replan without warm start

    def set_goal(self, goal: np.ndarray) -> None:
        """Give the goal observation once, for ``predict`` on observations that do not carry it."""
        goal = np.asarray(goal)
        _as_frames(goal[None] if goal.ndim == 3 else goal, "goal")
        self._goal_set = goal

    # ---------------------------------------------------------------------------- acting
    def act(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """One env's action (2,) float32 in [-1, 1]-units, from uint8 obs and goal [2, 65, 65]."""
        for name, x in (("obs", obs), ("goal", goal)):
            if not isinstance(x, (np.ndarray, torch.Tensor)) or tuple(x.shape) != OBS_SHAPE:
                shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
                raise ValueError(f"{name} must be one observation of shape (2, 65, 65) uint8, got {shape}")
        return self.act_batch(obs[None], goal[None])[0]

    def act_batch(self, obs, goal_obs, infos: Any = None) -> np.ndarray:
        """Actions [E, 2] float32 in env units for E episodes: obs and goal_obs [E, 2, 65, 65].

        A goal that differs from the one cached for a slot starts a new episode there; call
        ``reset()`` between episodes that share a goal. ``infos`` is ignored (the agent sees only
        pixels); it is accepted for the common policy interface of ``eval.runner``.
        """
        obs = _as_frames(obs, "obs")
        goal_obs = _as_frames(goal_obs, "goal")
        if goal_obs.shape[0] != obs.shape[0]:
            raise ValueError(f"obs and goal_obs must hold the same number of episodes, got {obs.shape[0]} and {goal_obs.shape[0]}")
        n = obs.shape[0]
        if n != self._n:
            self._resize(n)
        self._update_goals(goal_obs)
        if self.restart_when_stuck:
            self._track_blocked(obs)
        if self._needs_replan():
            self._replan(obs)
        idx = torch.as_tensor(self._executed, device=self._plan.device)
        a = self._plan[torch.arange(n, device=self._plan.device), idx]  # [E, 2] pixels
        self._executed += 1
        self._t += 1
        act = np.clip((a.float().cpu().numpy() / MAX_STEP_NORM).astype(np.float32), -1.0, 1.0)
        if not np.isfinite(act).all():
            raise FloatingPointError(f"the planner returned non-finite actions for episodes "
                                     f"{np.flatnonzero(~np.isfinite(act).all(axis=1)).tolist()}: the world model "
                                     f"gives NaN or infinite latents for these observations and goals")
        self._last_push = np.minimum(np.linalg.norm(act, axis=1), 1.0) * MAX_STEP_NORM  # what the env executes
        return act

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """stable-baselines3 style: ``(actions, state)``; planning is deterministic given the seed.

        ``observation`` is a dict with "observation" and "desired_goal" (or "goal_obs"; a goal of
        one channel [1, 65, 65] is the goal's dot, completed with the observation's walls), single
        [2, 65, 65] or batched [E, 2, 65, 65], or a plain observation after ``set_goal``.
        """
        if isinstance(observation, dict):
            key = "desired_goal" if "desired_goal" in observation else "goal_obs"
            if "observation" not in observation or key not in observation:
                raise ValueError(f"dict observations need keys 'observation' and 'desired_goal', got {sorted(observation)}")
            obs, goal = np.asarray(observation["observation"]), np.asarray(observation[key])
        else:
            obs = np.asarray(observation)
            if self._goal_set is None:
                raise ValueError("predict() needs the goal: pass dict observations with 'desired_goal' or call set_goal(goal_obs) first")
            goal = self._goal_set
        single = obs.ndim == 3
        obs = obs[None] if single else obs
        goal = goal[None] if goal.ndim == 3 else goal
        if goal.shape[-3] == 1:  # a goal dot channel only (HER-style wrappers): the layout is the obs's
            goal = np.concatenate([np.broadcast_to(goal, (obs.shape[0],) + goal.shape[1:]), obs[:, 1:2]], axis=1)
        if goal.shape[0] == 1 and obs.shape[0] > 1:
            goal = np.repeat(goal, obs.shape[0], axis=0)
        if episode_start is not None and obs.shape[0] == self._n:
            starts = np.flatnonzero(np.asarray(episode_start, dtype=bool).reshape(-1))
            self._restart(starts)
        actions = self.act_batch(obs, goal)
        return (actions[0] if single else actions), state

    # ------------------------------------------------------------------------ internals
    def _encode(self, frames) -> torch.Tensor:
        x = torch.as_tensor(frames, device=self.device) if isinstance(frames, np.ndarray) else frames.to(self.device)
        with torch.no_grad():  # not inference_mode: cached goals are updated in place later
            return self.model.encode(x).float().clone()

    def _update_goals(self, goal_obs) -> None:
        """Cache goal embeddings; a new goal in a slot restarts that slot's episode."""
        goal_np = goal_obs.cpu().numpy() if isinstance(goal_obs, torch.Tensor) else goal_obs
        if self._goal_obs is None:
            changed = np.arange(goal_np.shape[0])
        else:
            same = (goal_np.reshape(goal_np.shape[0], -1) == self._goal_obs.reshape(goal_np.shape[0], -1)).all(axis=1)
            changed = np.flatnonzero(~same)
        if changed.size == 0:
            return
        z_new = self._encode(goal_np[changed])
        if self._z_goal is None:
            self._z_goal = z_new
        else:  # a fresh tensor: inference tensors cannot be updated in place
            z_goal = self._z_goal.clone()
            z_goal[torch.as_tensor(changed, device=z_goal.device)] = z_new
            self._z_goal = z_goal
        self._goal_obs = np.array(goal_np, copy=True)
        self._restart(changed)

    def _track_blocked(self, obs) -> None:
        """Count, per episode, the consecutive pushing actions after which the frame did not change."""
        frames = (obs.cpu().numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs)).reshape(self._n, -1)
        if self._last_obs is not None:
            same = (frames == self._last_obs).all(axis=1)
            blocked = same & (self._last_push >= STUCK_PUSH) & (self._t > 0)
            self._blocked = np.where(blocked, self._blocked + 1, 0)
        self._last_obs = frames.copy()

    def _needs_replan(self) -> bool:
        if self._plan is None:
            return True
        return bool(np.any(self._executed >= np.minimum(self.replan_every, self._plan.shape[1])))

    def _replan(self, obs) -> None:
        """Plan for every slot at once (episodes run in lockstep); warm start where a plan exists."""
        z0 = self._encode(obs)
        steps_left = torch.as_tensor(np.maximum(self.max_episode_steps - self._t, 1))
        warm, mask = None, None
        if self._plan is not None:
            h = self._plan.shape[1]
            valid = self._executed < h
            if self.restart_when_stuck:
                stuck = self._blocked >= STUCK_STEPS
                self.restarts += int((valid & stuck).sum())
                valid &= ~stuck
                self._blocked[stuck] = 0
            idx = torch.as_tensor(np.minimum(self._executed, h)[:, None] + np.arange(h)[None], device=self._plan.device)
            padded = torch.cat([self._plan, self._plan.new_zeros(self._n, 1, 2)], dim=1)
            warm = padded.gather(1, idx.clamp(max=h)[:, :, None].expand(-1, -1, 2))
            warm = warm[:, : h - int(self._executed[valid].min()) if valid.any() else 0]
            mask = torch.as_tensor(valid)
        if hasattr(self.planner, "plan_with_info"):
            plan: Plan = self.planner.plan_with_info(
                self.model, z0, self._z_goal, steps_left, warm_start=warm, warm_mask=mask, return_latents=self.record_plans
            )
        else:  # a user's planner with only plan(): no imagined latents to record
            actions = self.planner.plan(self.model, z0, self._z_goal, steps_left, warm_start=warm)
            plan = Plan(actions=actions, cost=torch.zeros(self._n))
        self._plan = plan.actions
        self._executed[:] = 0
        if self.record_plans:
            latents = plan.latents
            probe = getattr(self.model, "probe", None)
            positions = None
            if probe is not None and latents is not None:
                with torch.inference_mode():
                    positions = probe(latents).float().cpu().numpy()
            self.plans.append({"t": self._t.copy(), "actions": plan.actions.cpu().numpy(), "positions": positions})
