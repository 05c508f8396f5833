"""Videos of evaluation episodes with the agent's imagined plan drawn over them, and a grid picture.

The plan is what the agent imagines at its latest replan: its latents decoded by ``model.probe``
(for the analytic models, the positions themselves), drawn as a magenta line; the path travelled
so far is the environment renderer's trail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from eval.runner import EpisodeRecord
from tworooms_env.rendering import draw_path, render_rgb, write_video

PLAN_COLOUR = np.array([220, 40, 200], dtype=np.float64)


def episode_frames(record: EpisodeRecord, scale: int = 6, every: int = 1) -> np.ndarray:
    """RGB frames [T, H, W, 3] of a recorded episode (``run_episodes(..., record=True)``)."""
    if record.positions is None:
        raise ValueError("the episode was not recorded: run it with run_episodes(..., record=True)")
    goal = np.asarray(record.goal)
    plans = sorted(record.plans or [], key=lambda p: p["t"])
    frames = []
    for t in range(0, len(record.positions), every):
        img = render_rgb(record.positions[t], goal, record.wall_x, record.door_y, path=record.positions[: t + 1], scale=scale)
        current = [p for p in plans if p["t"] <= t]
        if current:  # the plan being executed, from where the agent is now
            plan = current[-1]
            rest = np.asarray(plan["positions"])[min(t - plan["t"], len(plan["positions"]) - 1):]
            img = draw_path(img.copy(), rest, scale, PLAN_COLOUR, 0.8)
        frames.append(img)
    return np.stack(frames)


def write_episode_video(record: EpisodeRecord, path: str | Path, scale: int = 6, fps: float = 20, every: int = 1) -> Path:
    """One episode as .gif or .mp4 (every ``every``-th step), plan overlay included when recorded."""
    return write_video(episode_frames(record, scale=scale, every=every), path, fps=fps)


def write_grid(records: Sequence[EpisodeRecord], path: str | Path, columns: int = 4, scale: int = 4) -> Path:
    """A PNG grid: each tile is one episode's final state with its whole path and first plan."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        raise ValueError("no episodes to draw")
    columns = min(columns, len(records))
    rows = int(np.ceil(len(records) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, rec in zip(axes.ravel(), records):
        if rec.positions is None:
            raise ValueError(f"episode {rec.index} was not recorded")
        img = render_rgb(rec.positions[-1], np.asarray(rec.goal), rec.wall_x, rec.door_y, path=rec.positions, scale=scale)
        if rec.plans:
            img = draw_path(img.copy(), rec.plans[0]["positions"], scale, PLAN_COLOUR, 0.8)
        ax.imshow(img)
        verdict = "success" if rec.success else "fail"
        ax.set_title(f"task {rec.index}: {verdict} ({rec.final_distance:.1f} px)", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
