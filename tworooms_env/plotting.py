"""A grid picture of sample trajectories over their layouts (PNG, matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tworooms_env import core
from tworooms_env.random_walk import KIND_BUMP, KIND_CROSSING, Trajectories, crossing_steps

_KIND_NAMES = {0: "walk", KIND_CROSSING: "door crossing", KIND_BUMP: "wall bump"}


def plot_trajectories(
    traj: Trajectories, path: str | Path, rows: int = 3, cols: int = 4, seed: int = 0, dpi: int = 100
) -> Path:
    """Draw ``rows * cols`` trajectories (drawn at random, each kind shown if present) to a PNG.

    Each panel: the wall channel in grey, the path coloured by time (start dark, end bright),
    blocked steps as red crosses, the start as a white circle; the title says the kind and
    whether the path crosses the door.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(traj) == 0:
        raise ValueError("no trajectories to plot")
    rng = np.random.default_rng(seed)
    picks = _pick(traj, rows * cols, rng)
    crosses = crossing_steps(traj.positions[picks], traj.wall_x[picks]).any(axis=1)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
    for ax, i, crossed in zip(axes.ravel(), picks, crosses):
        ax.imshow(core.render_walls(traj.wall_x[i], traj.door_y[i]), cmap="gray", vmin=0, vmax=400)
        p = traj.positions[i]
        ax.scatter(p[:, 0], p[:, 1], c=np.arange(len(p)), cmap="viridis", s=4)
        ax.plot(p[:, 0], p[:, 1], lw=0.5, color="white", alpha=0.5)
        hit = np.flatnonzero(traj.blocked[i]) + 1
        ax.scatter(p[hit, 0], p[hit, 1], marker="x", color="red", s=10, lw=0.8)
        ax.scatter(p[0, 0], p[0, 1], facecolors="none", edgecolors="white", s=40)
        ax.set_title(f"{_KIND_NAMES.get(int(traj.kind[i]), '?')}{', crosses' if crossed else ''}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(picks):]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _pick(traj: Trajectories, k: int, rng: np.random.Generator) -> np.ndarray:
    """Up to k distinct trajectories, one of each present kind first."""
    first = [int(rng.choice(np.flatnonzero(traj.kind == kind))) for kind in np.unique(traj.kind)]
    rest = np.setdiff1d(np.arange(len(traj)), first)
    more = rng.choice(rest, size=min(k - len(first), rest.size), replace=False) if rest.size else []
    return np.array(sorted(first[:k]) + sorted(int(i) for i in more), dtype=np.int64)
