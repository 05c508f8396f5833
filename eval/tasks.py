"""docs/protocol.md tasks: episode i of an evaluation with seed s is task i of ``core.task_rng(s, i)``."""

from __future__ import annotations

import numpy as np

from tworooms_env import core


def protocol_tasks(seed: int, episodes: int, first: int = 0, fixed_wall: bool = False,
                   layouts: str | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Tasks ``first .. first + episodes - 1`` of evaluation ``seed``, stacked:
    {"index" [n], "wall_x" [n], "door_y" [n], "start" [n, 2], "goal" [n, 2]}.

    Each one is drawn exactly as ``TwoRoomsEnv.reset(options={"task_seed": seed, "task_index": i})``
    draws it, so any subset can be re-run alone. ``layouts`` (``"heldout:SPLIT"``, ``"train:SPLIT"``
    or [K, 2]): the env's ``layouts``, i.e. task i's generator picks its layout from that set.
    """
    from tworooms_env.splits import resolve_layouts

    layouts = resolve_layouts(layouts)
    if episodes < 1 or seed < 0 or first < 0:
        raise ValueError(f"need episodes >= 1, seed >= 0, first >= 0; got {episodes}, {seed}, {first}")
    parts = [core.sample_tasks(core.task_rng(seed, i), 1, fixed_wall, layouts) for i in range(first, first + episodes)]
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    out["index"] = np.arange(first, first + episodes)
    return out
