"""Export trajectories as a Minari dataset (optional: ``pip install "minari[hdf5]>=0.5"``).

One Minari episode per trajectory. Choices (pixels would be ~8 kB a frame, 77 GB for 100k
trajectories, so the export stores what the frames are drawn from):

- observations: ``Dict(position=Box(0, 65, (2,), float32), layout=Box((20, 10), (44, 54), int64))``,
  ``position`` = dot centre (x, y) in pixels, ``layout`` = (wall_x, door_y); render a frame with
  ``core.render_frames(position, *layout)``;
- actions: the env's normalised convention, ``Box(-1, 1, (2,))`` = pixel displacement / 2.45
  (``TwoRooms-v0`` multiplies by 2.45), so an exported episode replays in the env;
- rewards 0, terminations False, the last step truncated (reward-free, goal-free data);
- infos: ``blocked`` (bool per observation; False for the first);
- env spec: ``TwoRooms-v0`` (so ``dataset.recover_environment()`` makes the env), with the
  observation space above (positions and layouts, not the env's pixels).

Size: Minari's HDF5 file adds ~25 kB per episode, so an export takes ~17x the space of the
``.npz`` (53.4 MB against 3.1 MB for 2,000 trajectories of 91 states, ``python -m
benchmarks.bench_minari_size --trajectories 2000``); the ``.npz`` stays the training format. Minari is imported only when exporting; its datasets live under ``MINARI_DATASETS_PATH``
(default ``~/.minari/datasets``).
"""

from __future__ import annotations

import warnings

import numpy as np

from tworooms_env import core
from tworooms_env.random_walk import Trajectories

DEFAULT_DATASET_ID = "tworooms/random-walk-v0"
ENV_ID = "TwoRooms-v0"


def check_minari_id(dataset_id: str) -> None:
    """Raise before any work if Minari is missing, ``dataset_id`` is malformed or already exists."""
    try:
        import minari
        from minari.dataset.minari_dataset import parse_dataset_id
    except ImportError as e:  # optional dependency
        raise ImportError('Minari export needs `pip install "minari[hdf5]>=0.5"`') from e
    try:
        parse_dataset_id(dataset_id)
    except (TypeError, ValueError):  # minari raises TypeError for an id without a version
        raise ValueError(f"malformed Minari dataset id {dataset_id!r}: expected (namespace/)name-vN, "
                         f"e.g. {DEFAULT_DATASET_ID!r}") from None
    if dataset_id in minari.list_local_datasets():
        raise ValueError(f"Minari dataset {dataset_id!r} already exists; delete it (minari.delete_dataset) "
                         f"or choose another id")


def export_minari(
    traj: Trajectories,
    dataset_id: str = DEFAULT_DATASET_ID,
    description: str | None = None,
    author: str | None = None,
):
    """Write ``traj`` as the local Minari dataset ``dataset_id``; returns the MinariDataset."""
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError as e:  # optional dependency
        raise ImportError('Minari export needs `pip install "minari[hdf5]>=0.5"`') from e
    import gymnasium as gym
    from gymnasium import spaces

    import tworooms_env  # noqa: F401 - registers TwoRooms-v0

    observation_space = spaces.Dict(
        {
            "position": spaces.Box(0.0, float(core.IMG_SIZE), (2,), np.float32),
            "layout": spaces.Box(
                np.array([core.WALL_X_MIN, core.DOOR_Y_MIN]), np.array([core.WALL_X_MAX, core.DOOR_Y_MAX]), (2,), np.int64
            ),
        }
    )
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    n, length = traj.positions.shape[:2]
    steps = length - 1
    actions = (traj.actions / np.float32(core.MAX_STEP_NORM)).astype(np.float32)
    layouts = np.stack([traj.wall_x, traj.door_y], axis=1).astype(np.int64)
    zeros, false = np.zeros(steps, np.float64), np.zeros(steps, bool)
    truncated = false.copy()
    truncated[-1] = True
    buffers = [
        EpisodeBuffer(
            id=i,
            observations={"position": traj.positions[i], "layout": np.repeat(layouts[i : i + 1], length, axis=0)},
            actions=actions[i],
            rewards=zeros,
            terminations=false,
            truncations=truncated,
            infos={"blocked": np.concatenate([[False], traj.blocked[i]])},
        )
        for i in range(n)
    ]
    with warnings.catch_warnings():  # minari nags about unset author e-mail / env spec
        warnings.filterwarnings("ignore", category=UserWarning, module="minari")
        return minari.create_dataset_from_buffers(
            dataset_id=dataset_id,
            buffer=buffers,
            env=gym.spec(ENV_ID),
            observation_space=observation_space,
            action_space=action_space,
            algorithm_name="random walk with door crossings and wall bumps (tworooms_env.random_walk)",
            author=author or "tworooms-jepa",
            code_permalink="tworooms_env/random_walk.py (tworooms-jepa)",
            description=description or __doc__.split("\n\n")[1],
            data_format="hdf5",
            jpeg_encoding=False,
        )
