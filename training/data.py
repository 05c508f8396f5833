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
    batch = WindowSource(cfg).batch(step)                 # the trainer's: file or fresh stream

``WindowSource`` is the world-model trainer's source: a batch is a pure function of (seed, rank,
step), from a dataset file or from freshly generated walks; for a profile encoder it streams the
row and column sums (``profiles_from_positions``) instead of frames.

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

import math
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tworooms_env import core
from tworooms_env.collect import write_dataset
from tworooms_env.dataset import WindowIndex, load_trajectories, read_metadata, sha256_file
from tworooms_env.families import segment_trajectories
from tworooms_env.random_walk import Trajectories, WalkConfig, generate_trajectories
from tworooms_env.splits import held_out_layouts, layout_codes  # the one held-out set (tworooms_env.splits)
from tworooms_env.tiers import TIERS

if TYPE_CHECKING:
    from training.wm_config import TrainConfig

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


def shift_windows(batch: dict[str, torch.Tensor], rng: np.random.Generator, shift_max: int) -> dict[str, torch.Tensor]:
    """Translate every window of ``batch`` by one integer offset (dx, dy) uniform in [-n, n]^2.

    All frames of a window move together (the whole picture: dot, centre wall, door and border), the
    uncovered pixels are 0, and ``positions``, ``wall_x`` and ``door_y`` move with them, so a window
    stays a true trajectory of a translated room and the actions are unchanged. The frames show
    centre walls and doors at places the dataset's layouts never put them (random shifts as in
    DrQ, Kostrikov et al. 2020), which is what a model trained on a few layouts lacks. A border
    may leave the frame; the rendering of a layout the env can draw is never changed at offset 0.
    """
    frames = batch["frames"]  # [B, T, C, H, W] uint8
    b, size = frames.shape[0], frames.shape[-1]
    d = rng.integers(-shift_max, shift_max + 1, size=(b, 2))  # (dx, dy) per window
    src, out = frames.numpy(), np.zeros_like(frames.numpy())
    for k, (dx, dy) in enumerate(d):
        ys, yd = slice(max(0, -dy), size - max(0, dy)), slice(max(0, dy), size - max(0, -dy))
        xs, xd = slice(max(0, -dx), size - max(0, dx)), slice(max(0, dx), size - max(0, -dx))
        out[k, ..., yd, xd] = src[k, ..., ys, xs]
    shifted = dict(batch)
    shifted["frames"] = torch.from_numpy(out)
    off = torch.from_numpy(d.astype(np.float32))
    shifted["positions"] = batch["positions"] + off[:, None, :]
    shifted["wall_x"] = batch["wall_x"] + torch.from_numpy(d[:, 0])
    shifted["door_y"] = batch["door_y"] + torch.from_numpy(d[:, 1])
    return shifted


def _render_into(out: np.ndarray, positions: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray) -> None:
    try:
        core.render_frames(positions, wall_x, door_y, out=out)
    except TypeError:  # render_frames without an out= parameter
        out[...] = core.render_frames(positions, wall_x, door_y)


@lru_cache(maxsize=1)
def _wall_profile_table() -> tuple[np.ndarray, np.ndarray]:
    """Row and column sums of the wall channel of every layout: int32 [25, 45, 65] each."""
    wx = np.arange(core.WALL_X_MIN, core.WALL_X_MAX + 1)
    dy = np.arange(core.DOOR_Y_MIN, core.DOOR_Y_MAX + 1)
    walls = np.stack([np.stack([core.render_walls(w, d) for d in dy]) for w in wx])  # [25, 45, 65, 65]
    return walls.sum(axis=3, dtype=np.int32), walls.sum(axis=2, dtype=np.int32)


def profiles_from_positions(positions: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray):
    """The raw profiles of ``core.render_frames(positions, wall_x, door_y)`` without rendering.

    Returns (rows, cols) int32 [N, 2, 65] each, equal to the row and column sums of the rendered
    uint8 frames (``ProfileEncoder.raw_profiles``): the dot's 9 x 9 patch is summed where it
    lands and the walls' sums are read from a per-layout table. ~100x cheaper than rendering.
    """
    patch, row0, col0 = core.dot_patches(positions)
    n, k = patch.shape[0], patch.shape[1]
    rows = np.zeros((n, 2, core.IMG_SIZE), dtype=np.int32)
    cols = np.zeros((n, 2, core.IMG_SIZE), dtype=np.int32)
    idx = np.arange(n)[:, None]
    rows[idx, 0, row0[:, None] + np.arange(k)] = patch.sum(axis=2, dtype=np.int32)
    cols[idx, 0, col0[:, None] + np.arange(k)] = patch.sum(axis=1, dtype=np.int32)
    wall_rows, wall_cols = _wall_profile_table()
    wi, di = np.asarray(wall_x) - core.WALL_X_MIN, np.asarray(door_y) - core.DOOR_Y_MIN
    rows[:, 1], cols[:, 1] = wall_rows[wi, di], wall_cols[wi, di]
    return rows, cols



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


def subset(traj: Trajectories, rows: np.ndarray) -> Trajectories:
    """The trajectories ``rows`` of ``traj`` (copies)."""
    fields = ("positions", "actions", "blocked", "wall_x", "door_y", "kind")
    return Trajectories(**{f: getattr(traj, f)[rows] for f in fields})


# ---------------------------------------------------------------------- the trainer's source
def prepare_dataset(cfg: TrainConfig, rank: int = 0) -> dict:
    """The dataset ``cfg.dataset`` names, collected on first use; checked against the config.

    Returns what a checkpoint records of it: path, name, tier, trajectories, length, sha256.
    Raises ValueError when the file's tier or generator parameters differ from the config's
    (a dataset cannot honour rates it was not written with). A file of a named layout split
    (``tworooms-collect --split``) or of the no-door-crossing variant is accepted under its tier:
    the former holds train layouts only, the latter has no crossings whatever ``cross_wall_rate``
    says; both are recorded (``layout_split``, ``door_crossings``).
    """
    path = Path(cfg.dataset)
    if not path.is_file():
        if rank != 0 or os.environ.get("WORLD_SIZE", "1") != "1":
            raise FileNotFoundError(f"dataset file {path} not found; write it first with `tworooms-collect --tier "
                                    f"{cfg.data_tier} --dataset {path}` (DDP runs do not collect)")
        tier = cfg.tier_config()
        print(f"dataset {path} not found: collecting {cfg.dataset_size:,} trajectories of tier {tier.tier!r} "
              f"(tworooms-collect --tier {tier.tier} --num-trajectories {cfg.dataset_size} --dataset {path}) ...",
              file=sys.stderr)
        write_dataset(path, tier, cfg.dataset_size, seed=0, window=cfg.window)
    meta = read_metadata(path)
    tier = meta.get("tier", "random" if meta.get("generator", "").startswith("tworooms_env.random_walk") else None)
    from training.wm_config import STREAM_KEYS, tier_overrides

    if tier != cfg.data_tier:
        hint = f" (its default rates: {' '.join(tier_overrides(tier))})" if tier in TIERS else ""
        raise ValueError(f"dataset {path} holds tier {tier!r} but data_tier={cfg.data_tier!r}; set data_tier and the "
                         f"rates to the file's{hint}, or point dataset= at a file of tier {cfg.data_tier!r}")
    params = meta.get("generator_params", {})

    # The no-door-crossing variant of a tier drops its crossings whatever rate the config asks for.
    exempt = {"cross_wall_rate"} if params.get("door_crossings") is False else set()
    wrong = {k: (getattr(cfg, k), params[k]) for k in STREAM_KEYS
             if k in params and k not in exempt and not math.isclose(float(getattr(cfg, k)), float(params[k]), abs_tol=1e-9)}
    if wrong:
        text = ", ".join(f"{k}={mine!r} (file: {theirs!r})" for k, (mine, theirs) in wrong.items())
        raise ValueError(f"dataset {path} cannot honour {text}: collect a dataset with these rates, set them to "
                         "the file's values, or stream fresh windows with dataset=''")
    if meta.get("length", 0) < cfg.window:
        raise ValueError(f"dataset {path} holds trajectories of {meta.get('length')} states, shorter than "
                         f"window={cfg.window}")
    return {"path": str(path), "name": path.name, "tier": tier, "trajectories": int(meta["num_trajectories"]),
            "length": int(meta["length"]), "sha256": sha256_file(path),
            "layout_split": (meta.get("layout_split") or {}).get("name"), "door_crossings": params.get("door_crossings", True)}


class WindowSource:
    """Batches of windows as a pure function of (seed, rank, step): exact resume for free.

    From the dataset file ``cfg.dataset`` (windows drawn uniformly over every stored trajectory and
    start), or streamed fresh from the generator when ``cfg.dataset`` is empty.
    """

    def __init__(self, cfg: TrainConfig, rank: int = 0, dataset_info: dict | None = None):
        self.cfg, self.rank = cfg, rank
        # A profile encoder only reads row / column sums: stream those instead of frames.
        self.profiles = cfg.encoder == "profile" and cfg.fast_profiles and not cfg.dataset
        self.dataset = None
        self.info = {"tier": cfg.data_tier, "stream": True}
        if cfg.dataset:
            self.info = dataset_info or prepare_dataset(cfg, rank)
            self.dataset = TrajectoryWindows.from_file(cfg.dataset, window=cfg.window, split="train")
        else:
            self.walk = WalkConfig(length=cfg.window, cross_wall_rate=cfg.cross_wall_rate,
                                   wall_bump_rate=cfg.wall_bump_rate, fixed_wall=cfg.fixed_wall,
                                   step_mean=cfg.step_mean, step_std=cfg.step_std, step_max=cfg.step_max)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        batch = self._batch(step)
        if self.cfg.shift_max:  # its own generator: shift_max = 0 leaves every other draw as it was
            batch = shift_windows(batch, np.random.default_rng([self.cfg.seed, self.rank, step, 1]), self.cfg.shift_max)
        return batch

    def _batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, self.rank, step])
        if self.dataset is not None:
            return self.dataset.sample_batch(self.cfg.batch_size, rng, self.cfg.frame_stride)
        n, t_len = self.cfg.batch_size, self.cfg.window
        n_seg = int(round(self.cfg.segment_rate * n))
        traj = generate_trajectories(rng, n - n_seg, self.walk)  # one window per trajectory
        if n_seg:
            traj = Trajectories.concatenate([traj, segment_trajectories(rng, n_seg, t_len, self.walk, self.cfg.parallel_rate,
                                                                           self.cfg.door_aim_rate, self.cfg.push_rate,
                                                                           self.cfg.detour_rate)])
        if not self.profiles:
            return render_windows(traj, np.arange(n), np.zeros(n, dtype=np.int64), t_len, self.cfg.frame_stride)
        rows, cols = profiles_from_positions(traj.positions.reshape(-1, 2), np.repeat(traj.wall_x, t_len),
                                             np.repeat(traj.door_y, t_len))
        return {
            "profiles": (torch.from_numpy(rows.reshape(n, t_len, 2, -1)), torch.from_numpy(cols.reshape(n, t_len, 2, -1))),
            "actions": torch.from_numpy(traj.actions),
            "positions": torch.from_numpy(traj.positions),
            "wall_x": torch.from_numpy(traj.wall_x.astype(np.int64)),
            "door_y": torch.from_numpy(traj.door_y.astype(np.int64)),
        }
