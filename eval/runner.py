"""Run any policy on docs/protocol.md tasks of TwoRooms-v0, many episodes in parallel batches.

The common policy interface (what ``--agent NAME`` factories return; JEPAAgent, the scripted,
GCBC and SB3 baselines all follow it)::

    policy.reset(n)                                   # n new episodes start (slot i = env i)
    actions = policy.act_batch(obs, goal_obs, infos)  # obs, goal_obs uint8 [E, 2, 65, 65],
                                                      # infos: list of E env info dicts;
                                                      # -> float32 [E, 2] in env units (px / 2.45)

Pixel agents must ignore ``infos`` (it carries the privileged positions the scripted baselines
use). Older objects with ``reset()`` and ``act_batch(obs, goal_obs)`` are adapted.

Efficiency: every record carries its steps to success (first step within 4.5 px of the goal), the
oracle's steps on the same task, and path lengths (see ``eval.metrics``). With
``terminate_on_success`` an episode stops at its first success: its env is no longer stepped and the
policy keeps seeing its last observation, so that the other episodes of the batch run exactly as
they would without it (same success@any).

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
from eval.baselines.scripted import oracle_steps
from tworooms_env import core
from tworooms_env.env import MAX_EPISODE_STEPS


def check_counts(cfg: Any, at_least_one: Sequence[str] = ("episodes", "batch_size"),
                 non_negative: Sequence[str] = ("threads",)) -> None:
    """Raise ValueError naming the flag when an evaluation config's count is out of range."""
    for names, low in ((at_least_one, 1), (non_negative, 0)):
        for name in names:
            value = getattr(cfg, name)
            if value < low:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


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
    steps_to_success: int | None = None  # first step within SUCCESS_RADIUS of the goal (None: never)
    oracle_steps: int | None = None  # the oracle's steps to success on the same task
    path_length: float | None = None  # px travelled in the episode
    path_length_to_success: float | None = None  # px travelled up to the first success
    steps: int | None = None  # steps taken (< max_steps only with terminate_on_success)
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
    terminate_on_success: bool = False,
    layouts: str | np.ndarray | None = None,
) -> list[EpisodeRecord]:
    """Run PROTOCOL tasks ``indices`` (or ``range(indices)``) of evaluation ``seed`` with ``policy``.

    Each task is ``env.reset(options={"task_seed": seed, "task_index": i})``; episodes always run
    the full ``max_steps`` (success is scored after the last step) unless ``terminate_on_success``
    (then an episode ends at its first success, scored there). ``layouts`` (``"heldout:SPLIT"``,
    ``"train:SPLIT"`` or [K, 2]) restricts the tasks' layouts (``TwoRoomsEnv(layouts=...)``, same
    task seeds). ``record`` keeps positions and,
    for agents with ``record_plans``, the imagined plans (for videos).
    """
    indices = list(range(indices)) if isinstance(indices, int) else [int(i) for i in indices]
    if not indices:
        raise ValueError("no episodes to run")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    adapter = PolicyAdapter(policy)
    n_envs = min(batch_size, len(indices))
    env_kwargs = {"terminate_on_success": True} if terminate_on_success else {}
    if layouts is not None:
        from tworooms_env.splits import resolve_layouts

        env_kwargs["layouts"] = resolve_layouts(layouts)  # resolved once, shared by the batch's envs
    envs = [gym.make(env_id, disable_env_checker=True, **env_kwargs) for _ in range(n_envs)]
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
    pos = np.array([info["position"] for info in infos], dtype=np.float64)
    first_hit = np.zeros(n, dtype=np.int64)  # 0: not yet within SUCCESS_RADIUS
    travelled, travelled_to_hit = np.zeros(n), np.zeros(n)
    done = np.zeros(n, dtype=bool)  # terminated (terminate_on_success)
    steps = np.full(n, max_steps)
    t0 = time.perf_counter()
    adapter.reset(n)
    for t in range(max_steps):
        actions = adapter.act_batch(obs, goal_obs, infos)
        for j, env in enumerate(envs):
            if done[j]:  # the policy sees the last observation again; the env is not stepped
                continue
            o, _, terminated, _, info = env.step(actions[j])
            obs[j] = o
            infos[j] = info
            if terminated:
                done[j], steps[j] = True, t + 1
        dist = np.array([info["distance"] for info in infos])
        min_dist = np.minimum(min_dist, dist)
        new_pos = np.array([info["position"] for info in infos], dtype=np.float64)
        travelled += np.linalg.norm(new_pos - pos, axis=1)
        pos = new_pos
        hit_now = (first_hit == 0) & (dist < core.SUCCESS_RADIUS)
        first_hit[hit_now] = t + 1
        travelled_to_hit[hit_now] = travelled[hit_now]
        if record:
            positions[:, t + 1] = pos
        if done.all():
            if record:
                positions[:, t + 2 :] = pos[:, None]
            break
    seconds = (time.perf_counter() - t0) / n
    oracle = oracle_steps(np.array([f["position"] for f in first]), np.array([f["goal"] for f in first]),
                          np.array([f["wall_x"] for f in first]), np.array([f["door_y"] for f in first]), max_steps)
    plans = _collect_plans(adapter.policy, n) if record else None
    out = []
    for j, i in enumerate(batch):
        d = float(infos[j]["distance"])
        out.append(EpisodeRecord(
            index=i, seed=seed, wall_x=int(first[j]["wall_x"]), door_y=int(first[j]["door_y"]),
            start=[float(v) for v in first[j]["position"]], goal=[float(v) for v in first[j]["goal"]],
            final_distance=d, min_distance=float(min_dist[j]), success=d < core.SUCCESS_RADIUS,
            success_any=bool(min_dist[j] < core.SUCCESS_RADIUS), strict_success=d < core.STRICT_SUCCESS_RADIUS,
            seconds=seconds, steps_to_success=int(first_hit[j]) or None, oracle_steps=int(oracle[j]) or None,
            path_length=float(travelled[j]), path_length_to_success=float(travelled_to_hit[j]) if first_hit[j] else None,
            steps=int(steps[j]),
            positions=positions[j] if record else None, plans=plans[j] if plans else None,
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
