"""Run any policy on PROTOCOL.md tasks of TwoRooms-v0, many episodes in parallel batches.

The common policy interface (what ``--agent NAME`` factories return; JEPAAgent, the scripted,
GCBC and SB3 baselines all follow it)::

    policy.reset(n)                                   # n new episodes start (slot i = env i)
    actions = policy.act_batch(obs, goal_obs, infos)  # obs, goal_obs uint8 [E, 2, 65, 65],
                                                      # infos: list of E env info dicts;
                                                      # -> float32 [E, 2] in env units (px / 2.45)

Pixel agents must ignore ``infos`` (it carries the privileged positions the scripted baselines
use). Older objects with ``reset()`` and ``act_batch(obs, goal_obs)`` are adapted.

Timing: an episode's seconds are its batch's wall time (policy + env) divided by the batch size:
amortised. With ``batch_size=1`` they are the true wall time of one episode.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import tworooms_env  # noqa: F401  (registers TwoRooms-v0)
from tworooms_env import core
from tworooms_env.env import MAX_EPISODE_STEPS


@dataclass
class EpisodeRecord:
    """Outcome of one episode; ``positions`` / ``plans`` only when recorded (videos)."""

    index: int
    seed: int
    wall_x: int
    door_y: int
    start: list[float]
    goal: list[float]
    final_distance: float
    min_distance: float
    success: bool
    success_any: bool
    strict_success: bool
    seconds: float
    positions: np.ndarray | None = field(default=None, repr=False)  # [T + 1, 2]
    plans: list[dict[str, Any]] | None = field(default=None, repr=False)  # [{"t", "positions" [L, 2]}]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("positions")
        d.pop("plans")
        return d


class PolicyAdapter:
    """Wraps objects with ``reset()`` / ``act_batch(obs, goal)`` into the common interface."""

    def __init__(self, policy: Any) -> None:
        if not callable(getattr(policy, "act_batch", None)):
            raise TypeError(f"a policy needs act_batch(obs, goal_obs, infos), {type(policy).__name__} has none")
        self.policy = policy
        self.name = getattr(policy, "name", type(policy).__name__)
        params = inspect.signature(policy.act_batch).parameters
        self._pass_infos = len(params) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in params.values())
        reset = getattr(policy, "reset", None)
        self._reset_takes_n = reset is not None and len(inspect.signature(reset).parameters) >= 1

    def reset(self, n: int) -> None:
        reset = getattr(self.policy, "reset", None)
        if reset is not None:
            reset(n) if self._reset_takes_n else reset()

    def act_batch(self, obs: np.ndarray, goal_obs: np.ndarray, infos: Sequence[dict]) -> np.ndarray:
        out = self.policy.act_batch(obs, goal_obs, infos) if self._pass_infos else self.policy.act_batch(obs, goal_obs)
        actions = np.asarray(out, dtype=np.float32)
        if actions.shape != (len(obs), 2):
            raise ValueError(f"{self.name}.act_batch must return [E={len(obs)}, 2] actions, got {actions.shape}")
        return actions


def run_episodes(
    policy: Any,
    seed: int,
    indices: Sequence[int] | int,
    batch_size: int = 50,
    max_steps: int = MAX_EPISODE_STEPS,
    env_id: str = "TwoRooms-v0",
    record: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> list[EpisodeRecord]:
    """Run PROTOCOL tasks ``indices`` (or ``range(indices)``) of evaluation ``seed`` with ``policy``.

    Each task is ``env.reset(options={"task_seed": seed, "task_index": i})``; episodes always run
    the full ``max_steps`` (success is scored after the last step). ``record`` keeps positions and,
    for agents with ``record_plans``, the imagined plans (for videos).
    """
    indices = list(range(indices)) if isinstance(indices, int) else [int(i) for i in indices]
    if not indices:
        raise ValueError("no episodes to run")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    adapter = PolicyAdapter(policy)
    n_envs = min(batch_size, len(indices))
    envs = [gym.make(env_id, disable_env_checker=True) for _ in range(n_envs)]
    if record and hasattr(policy, "record_plans"):
        policy.record_plans = True
    records: list[EpisodeRecord] = []
    bar = tqdm(total=len(indices), desc=desc or f"{adapter.name} seed {seed}", disable=not progress, unit="ep")
    for start in range(0, len(indices), n_envs):
        batch = indices[start : start + n_envs]
        records.extend(_run_batch(adapter, envs[: len(batch)], seed, batch, max_steps, record))
        bar.update(len(batch))
        done = records
        bar.set_postfix(success=f"{np.mean([r.success for r in done]):.2f}")
    bar.close()
    for env in envs:
        env.close()
    return records


def _run_batch(adapter: PolicyAdapter, envs: list, seed: int, batch: list[int], max_steps: int, record: bool) -> list[EpisodeRecord]:
    n = len(batch)
    resets = [env.reset(options={"task_seed": seed, "task_index": i}) for env, i in zip(envs, batch)]
    obs = np.stack([o for o, _ in resets])
    infos = [info for _, info in resets]
    goal_obs = np.stack([info["goal_obs"] for info in infos])
    first = [dict(info) for info in infos]
    min_dist = np.array([info["distance"] for info in infos])
    positions = np.empty((n, max_steps + 1, 2)) if record else None
    if record:
        positions[:, 0] = [info["position"] for info in infos]
    t0 = time.perf_counter()
    adapter.reset(n)
    for t in range(max_steps):
        actions = adapter.act_batch(obs, goal_obs, infos)
        for j, env in enumerate(envs):
            o, _, _, _, info = env.step(actions[j])
            obs[j] = o
            infos[j] = info
        dist = np.array([info["distance"] for info in infos])
        min_dist = np.minimum(min_dist, dist)
        if record:
            positions[:, t + 1] = [info["position"] for info in infos]
    seconds = (time.perf_counter() - t0) / n
    plans = _collect_plans(adapter.policy, n) if record else None
    out = []
    for j, i in enumerate(batch):
        d = float(infos[j]["distance"])
        out.append(EpisodeRecord(
            index=i, seed=seed, wall_x=int(first[j]["wall_x"]), door_y=int(first[j]["door_y"]),
            start=[float(v) for v in first[j]["position"]], goal=[float(v) for v in first[j]["goal"]],
            final_distance=d, min_distance=float(min_dist[j]), success=d < core.SUCCESS_RADIUS,
            success_any=bool(min_dist[j] < core.SUCCESS_RADIUS), strict_success=d < core.STRICT_SUCCESS_RADIUS,
            seconds=seconds, positions=positions[j] if record else None, plans=plans[j] if plans else None,
        ))
    return out


def _collect_plans(policy: Any, n: int) -> list[list[dict[str, Any]]] | None:
    """Per-episode imagined plans from an agent that recorded them (JEPAAgent.plans)."""
    recorded = getattr(policy, "plans", None)
    if not recorded:
        return None
    per_episode: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for plan in recorded:
        if plan.get("positions") is None:
            continue
        for j in range(min(n, len(plan["positions"]))):
            per_episode[j].append({"t": int(plan["t"][j]), "positions": plan["positions"][j]})
    return per_episode
