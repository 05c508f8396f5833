"""Training windows from offline TwoRooms trajectories, rendered one batch at a time.

A *window* is T consecutive states of one stored trajectory (T = 17 by default). Batches are
dicts of torch tensors (B windows):

==========  =====================  =================================================================
key         dtype / shape          meaning
==========  =====================  =================================================================
frames      uint8 [B, T, 2, 65, 65] channel 0 the dot, 1 the walls (``core.render_frames``); the
                                   model converts to float (e.g. ``/ 255``)
actions     float32 [B, T-1, 2]    pixels; ``actions[:, t]`` leads from frame t to frame t + 1
positions   float32 [B, T, 2]      dot centre (x, y) in pixels
blocked     bool [B, T-1]          the move t -> t + 1 was stopped at a contact point
wall_x      int64 [B]              centre wall column
door_y      int64 [B]              door centre row
==========  =====================  =================================================================

Frames are rendered per batch with one ``core.render_frames`` call for B * T frames (never per
item). Three ways to get batches::

    windows = TrajectoryWindows.from_file("data/tworooms.npz", window=17, split="train")
    batch = windows.sample_batch(64, rng)                 # one batch, numpy Generator
    loader = windows.loader(batch_size=64, num_batches=1000, seed=0)   # torch DataLoader
    stream = StreamingWindows(batch_size=64, window=17, seed=0)        # infinite fresh data
    for batch in stream: ...

Window composition: ``crossing_window_share`` (and ``contact_window_share``) ask that this
fraction of windows is drawn among those containing a door crossing (a centre-wall contact); the
rest is drawn uniformly over all windows, so the measured share is at least the requested one.
``None`` (default) draws every window uniformly, like the reference. ``window_stats`` measures it.

Split by layout: ``split="train"`` keeps trajectories whose (wall_x, door_y) is not held out,
``"val"`` only held-out ones (``held_out_layouts``: a fixed, seeded 10 % of the 1,125 layouts, the
held-out set of every named layout split of :mod:`tworooms_env.splits`). With a single layout in the
data (fixed wall) the split falls back to the last 10 % of trajectories. A file written for a named
split (``tworooms-collect --split``) holds train layouts only: :func:`split_rows` uses it whole.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from tworooms_env import core
from tworooms_env.dataset import WindowIndex, load_trajectories
from tworooms_env.random_walk import Trajectories, WalkConfig, generate_trajectories
from tworooms_env.splits import held_out_layouts, layout_codes  # the one held-out set (tworooms_env.splits)

SPLITS = ("all", "train", "val")


# ------------------------------------------------------------------------------ layout split
def split_indices(
    wall_x: np.ndarray, door_y: np.ndarray, split: str, val_fraction: float = 0.1, seed: int = 0
) -> np.ndarray:
    """Indices of the trajectories in ``split`` ("all", "train" or "val"), split by layout."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n = len(wall_x)
    if split == "all":
        return np.arange(n)
    codes = layout_codes(wall_x, door_y)
    if np.unique(codes).size <= 1:  # fixed wall: no layout to hold out, split trajectories
        is_val = np.arange(n) >= n - int(round(val_fraction * n))
    else:
        held = held_out_layouts(val_fraction, seed)
        is_val = np.isin(codes, layout_codes(held[:, 0], held[:, 1]))
    return np.flatnonzero(is_val if split == "val" else ~is_val)


def split_rows(traj: Trajectories, meta: dict, split: str, val_fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """Rows of a loaded file in ``split``. A file written for a named layout split (metadata
    ``layout_split``) holds that split's train layouts only: "train" and "all" are every row (after
    checking that no held-out layout is in it), "val" is an error (the file has none)."""
    recorded = meta.get("layout_split")
    if not recorded:
        return split_indices(traj.wall_x, traj.door_y, split, val_fraction, seed)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    held = np.isin(layout_codes(traj.wall_x, traj.door_y), layout_codes(*held_out_layouts().T))
    if held.any():
        raise ValueError(f"the file claims layout split {recorded.get('name')!r} but holds {int(held.sum())} "
                         "trajectories on held-out layouts")
    if split == "val":
        raise ValueError(f"the file holds the train layouts of split {recorded.get('name')!r} only: it has no "
                         "validation (held-out) layouts")
    return np.arange(len(traj))


def allowed_layouts(split: str, val_fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """The random-wall layouts a split may use: [K, 2] (for the streaming mode)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    layouts = core.all_layouts()
    if split == "all":
        return layouts
    held = np.isin(layout_codes(layouts[:, 0], layouts[:, 1]), layout_codes(*held_out_layouts(val_fraction, seed).T))
    return layouts[held if split == "val" else ~held]


# ------------------------------------------------------------------------------- rendering
def render_windows(traj: Trajectories, t_idx: np.ndarray, start: np.ndarray, window: int,
                   frame_stride: int = 1) -> dict[str, torch.Tensor]:
    """Gather B windows by vectorised indexing and render their frames in one call.

    ``frame_stride`` s > 1 renders only every s-th frame of each window (frames 0, s, 2s, ...;
    ``window - 1`` must be a multiple of s): frames and positions are then [B, (T-1)/s + 1, ...]
    while actions and blocked keep every step [B, T-1, ...].
    """
    if frame_stride < 1 or (window - 1) % frame_stride:
        raise ValueError(f"frame_stride must be >= 1 and divide window - 1 = {window - 1}, got {frame_stride}")
    steps = start[:, None] + np.arange(window)[None, :]  # [B, T]
    rows = t_idx[:, None]
    shown = steps[:, ::frame_stride]
    positions = traj.positions[rows, shown]  # [B, T', 2]
    actions = traj.actions[rows, steps[:, :-1]]
    blocked = traj.blocked[rows, steps[:, :-1]]
    wall_x, door_y = traj.wall_x[t_idx].astype(np.int64), traj.door_y[t_idx].astype(np.int64)
    b, n_frames = t_idx.shape[0], shown.shape[1]
    frames = np.empty((b, n_frames, core.N_CHANNELS, core.IMG_SIZE, core.IMG_SIZE), dtype=np.uint8)
    _render_into(frames.reshape(b * n_frames, core.N_CHANNELS, core.IMG_SIZE, core.IMG_SIZE),
                 positions.reshape(-1, 2), np.repeat(wall_x, n_frames), np.repeat(door_y, n_frames))
    return {
        "frames": torch.from_numpy(frames),
        "actions": torch.from_numpy(np.ascontiguousarray(actions, dtype=np.float32)),
        "positions": torch.from_numpy(np.ascontiguousarray(positions, dtype=np.float32)),
        "blocked": torch.from_numpy(blocked),
        "wall_x": torch.from_numpy(wall_x),
        "door_y": torch.from_numpy(door_y),
    }


def _render_into(out: np.ndarray, positions: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray) -> None:
    try:
        core.render_frames(positions, wall_x, door_y, out=out)
    except TypeError:  # render_frames without an out= parameter
        out[...] = core.render_frames(positions, wall_x, door_y)


def _identity(batch):
    return batch


# --------------------------------------------------------------------------------- datasets
class TrajectoryWindows(Dataset):
    """Map-style dataset of windows over stored trajectories; batches rendered in one call.

    ``len(ds)`` is the number of windows; ``ds[i]`` one window (dict without the batch axis);
    ``ds.__getitems__(ids)`` (used by ``DataLoader`` automatically) a whole batch.
    """

    def __init__(
        self,
        traj: Trajectories,
        window: int = 17,
        crossing_window_share: float | None = None,
        contact_window_share: float | None = None,
    ):
        self.traj = traj
        self.window = window
        self.index = WindowIndex(traj, window)
        self.crossing_window_share = crossing_window_share
        self.contact_window_share = contact_window_share
        self.index.sample(np.random.default_rng(0), 0, crossing_window_share, contact_window_share)  # validates

    @classmethod
    def from_file(
        cls,
        path,
        window: int = 17,
        split: str = "all",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        **kwargs,
    ) -> "TrajectoryWindows":
        traj, meta = load_trajectories(path)
        return cls(subset(traj, split_rows(traj, meta, split, val_fraction, split_seed)), window, **kwargs)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([int(i)])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, ids) -> dict[str, torch.Tensor]:
        t_idx, start = self.index.split_ids(np.asarray(ids))
        return render_windows(self.traj, t_idx, start, self.window)

    def sample_ids(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return self.index.sample(rng, batch_size, self.crossing_window_share, self.contact_window_share)

    def sample_batch(self, batch_size: int, rng: np.random.Generator, frame_stride: int = 1) -> dict[str, torch.Tensor]:
        """B windows drawn with the configured shares, rendered in one call (every ``frame_stride``-th frame)."""
        t_idx, start = self.index.split_ids(self.sample_ids(batch_size, rng))
        return render_windows(self.traj, t_idx, start, self.window, frame_stride)

    def window_stats(self, num_windows: int = 100_000, seed: int = 0) -> dict[str, float]:
        """Measured shares of sampled windows with a door crossing / centre-wall contact."""
        return self.index.stats(self.sample_ids(num_windows, np.random.default_rng(seed)))

    def loader(self, batch_size: int = 64, num_batches: int = 1000, seed: int = 0, num_workers: int = 0) -> DataLoader:
        """A DataLoader yielding ``num_batches`` batch dicts per epoch (fresh draws each epoch)."""
        sampler = WindowBatchSampler(self, batch_size, num_batches, seed)
        return DataLoader(self, batch_sampler=sampler, collate_fn=_identity, num_workers=num_workers)


class WindowBatchSampler:
    """Batch sampler drawing window ids with the dataset's shares; epoch e uses seed (seed, e)."""

    def __init__(self, ds: TrajectoryWindows, batch_size: int, num_batches: int, seed: int = 0):
        if batch_size < 1 or num_batches < 1:
            raise ValueError(f"batch_size and num_batches must be >= 1, got {batch_size}, {num_batches}")
        self.ds, self.batch_size, self.num_batches, self.seed = ds, batch_size, num_batches, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        for _ in range(self.num_batches):
            yield self.ds.sample_ids(self.batch_size, rng).tolist()


class StreamingWindows(IterableDataset):
    """Infinite batches from freshly generated trajectories (same generator as the collector).

    Trajectories are generated ``pool_size`` at a time; each pool serves
    ``pool_size * windows_per_trajectory / batch_size`` batches before a new one is drawn.
    Each DataLoader worker draws from its own generator seeded (seed, worker id). Use with
    ``DataLoader(stream, batch_size=None)`` or iterate directly.
    """

    def __init__(
        self,
        batch_size: int = 64,
        window: int = 17,
        seed: int = 0,
        config: WalkConfig | None = None,
        split: str = "all",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        pool_size: int = 4096,
        windows_per_trajectory: float = 1.0,
        crossing_window_share: float | None = None,
        contact_window_share: float | None = None,
    ):
        self.config = config or WalkConfig()
        if not 2 <= window <= self.config.length:
            raise ValueError(f"window must be in [2, {self.config.length}], got {window}")
        self.batch_size, self.window, self.seed = batch_size, window, seed
        self.layouts = None if self.config.fixed_wall else allowed_layouts(split, val_fraction, split_seed)
        self.pool_size = pool_size
        self.batches_per_pool = max(1, int(round(pool_size * windows_per_trajectory / batch_size)))
        self.shares = (crossing_window_share, contact_window_share)

    def __iter__(self):
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id])
        while True:
            traj = generate_trajectories(rng, self.pool_size, self.config, self.layouts)
            ds = TrajectoryWindows(traj, self.window, *self.shares)
            for _ in range(self.batches_per_pool):
                yield ds.sample_batch(self.batch_size, rng)


def subset(traj: Trajectories, rows: np.ndarray) -> Trajectories:
    """The trajectories ``rows`` of ``traj`` (copies)."""
    fields = ("positions", "actions", "blocked", "wall_x", "door_y", "kind")
    return Trajectories(**{f: getattr(traj, f)[rows] for f in fields})
