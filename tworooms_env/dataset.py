"""On-disk format of offline trajectories: one uncompressed ``.npz`` file, versioned.

Format ``tworooms-trajectories`` version 1. Arrays (N trajectories of L states):

=============  ===========  ==================================================================
key            dtype/shape  meaning
=============  ===========  ==================================================================
positions      f32 [N,L,2]  dot centre (x, y) in pixels, output of ``core.step_positions``
actions        f32 [N,L-1,2] displacement commanded at state t (pixels, leads to state t+1)
blocked        bool [N,L-1] the move was stopped at a contact point
wall_x         i16 [N]      centre wall column
door_y         i16 [N]      door centre row
kind           i8 [N]       0 random walk, 1 door crossing, 2 wall bump, 3 segments, 4 detour
metadata       u8 [bytes]   UTF-8 JSON: format, format_version, counts, seed, generator params
=============  ===========  ==================================================================

Frames are not stored: ``core.render_frames`` draws them on load, in batches. Files are written
to a temporary name in the same folder, then renamed, so a file with the final name is always
complete. Loading checks the format name and version, every key, dtype and shape, and the counts
in the metadata, and raises :class:`DatasetFormatError` (a ``ValueError``) naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from tworooms_env import core
from tworooms_env.random_walk import Trajectories, crossing_steps, wall_contact_steps

FORMAT_NAME = "tworooms-trajectories"
FORMAT_VERSION = 1
_ARRAYS = {  # key: (dtype, number of dimensions)
    "positions": (np.float32, 3),
    "actions": (np.float32, 3),
    "blocked": (np.bool_, 2),
    "wall_x": (np.int16, 1),
    "door_y": (np.int16, 1),
    "kind": (np.int8, 1),
}


class DatasetFormatError(ValueError):
    """A trajectory file is truncated, corrupt, of another format/version, or inconsistent."""


def save_trajectories(path: str | os.PathLike, traj: Trajectories, metadata: dict | None = None) -> Path:
    """Write ``traj`` and ``metadata`` (JSON-serialisable) atomically to ``path`` (.npz)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"trajectory files end in .npz, got {path}")
    validate_arrays({k: getattr(traj, k) for k in _ARRAYS})
    meta = dict(metadata or {})
    meta.update(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        num_trajectories=int(traj.positions.shape[0]),
        length=int(traj.positions.shape[1]),
    )
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            _write_npz(f, {"metadata": meta_bytes, **{k: getattr(traj, k) for k in _ARRAYS}})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz readable by ``np.load``, with fixed timestamps: same data, same bytes."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def validate_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Raise DatasetFormatError unless the arrays have the dtypes and matching shapes of format 1."""
    for key, (dtype, ndim) in _ARRAYS.items():
        if key not in arrays:
            raise DatasetFormatError(f"missing array {key!r}")
        a = arrays[key]
        if a.dtype != dtype or a.ndim != ndim:
            raise DatasetFormatError(
                f"array {key!r} must be {np.dtype(dtype).name} with {ndim} dims, got {a.dtype} {a.shape}"
            )
    n, length = arrays["positions"].shape[:2]
    expected = {
        "positions": (n, length, 2),
        "actions": (n, length - 1, 2),
        "blocked": (n, length - 1),
        "wall_x": (n,),
        "door_y": (n,),
        "kind": (n,),
    }
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise DatasetFormatError(f"array {key!r} has shape {arrays[key].shape}, expected {shape}")
    if length < 2:
        raise DatasetFormatError(f"trajectories need at least 2 states, got {length}")
    if not (np.isfinite(arrays["positions"]).all() and np.isfinite(arrays["actions"]).all()):
        raise DatasetFormatError("positions/actions contain NaN or infinity")
    _check_bounds(arrays["positions"], arrays["actions"])
    try:
        core.validate_layout(arrays["wall_x"], arrays["door_y"])
    except ValueError as e:
        raise DatasetFormatError(f"bad layout: {e}") from None


def _check_bounds(positions: np.ndarray, actions: np.ndarray) -> None:
    """Positions inside the arena [BORDER_LO, BORDER_HI] px; actions of norm <= MAX_STEP_NORM px."""
    outside = (positions < core.BORDER_LO) | (positions > core.BORDER_HI)
    if outside.any():
        t = int(np.flatnonzero(outside.any(axis=(1, 2)))[0])
        raise DatasetFormatError(
            f"positions outside the arena: trajectory {t} reaches {positions[t][outside[t].any(-1)][0].tolist()} px; "
            f"every coordinate must be in [{core.BORDER_LO}, {core.BORDER_HI}] px ({outside.any(axis=(1, 2)).sum()} "
            f"trajectories affected)")
    norm = np.linalg.norm(actions, axis=-1)
    too_long = norm > core.MAX_STEP_NORM * (1 + 1e-4)
    if too_long.any():
        t = int(np.flatnonzero(too_long.any(axis=1))[0])
        raise DatasetFormatError(
            f"actions beyond the bound: trajectory {t} has a step of {norm[t].max():.3f} px; actions are pixel "
            f"displacements of norm <= {core.MAX_STEP_NORM} ({too_long.any(axis=1).sum()} trajectories affected)")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """sha256 (hex) of a file's bytes: the checksum learners record of the dataset they trained on."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata JSON of a trajectory file (cheap: reads one small member)."""
    with _open(path) as z:
        return _metadata(z, path)


def load_trajectories(path: str | os.PathLike) -> tuple[Trajectories, dict]:
    """Read and validate a trajectory file: (Trajectories, metadata)."""
    with _open(path) as z:
        meta = _metadata(z, path)
        arrays = {}
        for key in _ARRAYS:
            if key not in z.files:
                raise DatasetFormatError(f"{path}: missing array {key!r}")
            try:
                arrays[key] = z[key]
            except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
                raise DatasetFormatError(f"{path}: array {key!r} is corrupt or truncated ({e})") from None
    try:
        validate_arrays(arrays)
    except DatasetFormatError as e:
        raise DatasetFormatError(f"{path}: {e}") from None
    n, length = arrays["positions"].shape[:2]
    if meta.get("num_trajectories") != n or meta.get("length") != length:
        raise DatasetFormatError(
            f"{path}: metadata says {meta.get('num_trajectories')} x {meta.get('length')} states, "
            f"arrays hold {n} x {length}"
        )
    return Trajectories(**arrays), meta


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no trajectory file at {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        raise DatasetFormatError(f"{path}: not a readable .npz trajectory file ({e})") from None


def _metadata(z, path) -> dict:
    if "metadata" not in z.files:
        raise DatasetFormatError(f"{path}: no metadata member; not a {FORMAT_NAME} file")
    try:
        meta = json.loads(z["metadata"].tobytes().decode("utf-8"))
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        raise DatasetFormatError(f"{path}: metadata is corrupt ({e})") from None
    if meta.get("format") != FORMAT_NAME:
        raise DatasetFormatError(f"{path}: format {meta.get('format')!r}, expected {FORMAT_NAME!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetFormatError(
            f"{path}: format version {meta.get('format_version')!r}, this code reads version {FORMAT_VERSION}"
        )
    return meta


# ------------------------------------------------------------------------------ window index
class WindowIndex:
    """Which windows (trajectory, start) exist and which contain a crossing / wall contact."""

    def __init__(self, traj: Trajectories, window: int):
        n, length = traj.positions.shape[:2]
        if not 2 <= window <= length:
            raise ValueError(f"window must be in [2, {length}] (trajectory length), got {window}")
        self.n, self.window = n, window
        self.starts_per_traj = length - window + 1
        self.crossing = self._windows_with(crossing_steps(traj.positions, traj.wall_x))
        contact = wall_contact_steps(traj.positions, traj.blocked, traj.wall_x, traj.door_y)
        self.contact = self._windows_with(contact)
        # Flat window ids are t * starts_per_traj + s.
        self.crossing_ids = np.flatnonzero(self.crossing).astype(np.int64)
        self.contact_ids = np.flatnonzero(self.contact).astype(np.int64)

    def _windows_with(self, events: np.ndarray) -> np.ndarray:
        """bool [N, S]: window starting at s holds an event among its T - 1 steps."""
        counts = np.concatenate([np.zeros((events.shape[0], 1), np.int32), events.cumsum(axis=1, dtype=np.int32)], axis=1)
        span = self.window - 1
        return (counts[:, span:] - counts[:, :-span]) > 0

    def __len__(self) -> int:
        return self.n * self.starts_per_traj

    def sample(
        self,
        rng: np.random.Generator,
        size: int,
        crossing_share: float | None = None,
        contact_share: float | None = None,
    ) -> np.ndarray:
        """Flat window ids [size]: a share from crossing windows, a share from contact ones, rest uniform."""
        c_share, w_share = crossing_share or 0.0, contact_share or 0.0
        if min(c_share, w_share) < 0 or c_share + w_share > 1:
            raise ValueError(f"window shares must be >= 0 and sum to <= 1, got {c_share}, {w_share}")
        ids = rng.integers(0, len(self), size=size)
        u = rng.random(size)
        for pool, lo, hi in ((self.crossing_ids, 0.0, c_share), (self.contact_ids, c_share, c_share + w_share)):
            rows = np.flatnonzero((u >= lo) & (u < hi))
            if rows.size and pool.size == 0:
                raise ValueError("a window share was requested but the data holds no such window")
            if rows.size:
                ids[rows] = pool[rng.integers(0, pool.size, size=rows.size)]
        return ids

    def split_ids(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.divmod(np.asarray(ids, dtype=np.int64), self.starts_per_traj)

    def stats(self, ids: np.ndarray) -> dict[str, float]:
        t, s = self.split_ids(ids)
        return {
            "windows": int(len(ids)),
            "share_crossing": float(self.crossing[t, s].mean()),
            "share_wall_contact": float(self.contact[t, s].mean()),
            "share_crossing_or_contact": float((self.crossing[t, s] | self.contact[t, s]).mean()),
        }
