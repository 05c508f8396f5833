"""Validation at the boundary: observation / goal frames, checkpoint files and command lines.

- ``check_frames``: frames [..., 2, 65, 65] as uint8 pixels or floats in [0, 1], finite; a float
  frame with values above 1 (0-255 pixels cast to float) is an error, not a silent rescale.
- ``load_checkpoint_file``: ``torch.load(weights_only=True)`` with one clear ``ValueError`` naming
  the file and the problem (empty, text, truncated, corrupt) instead of torch's own errors.
- ``state_checksum`` / ``verify_state``: a sha256 over a state_dict's tensors (names, dtypes,
  shapes and bytes, in sorted key order), stored at save time and checked at load, and a check
  that every floating-point weight is finite.
- ``run_cli``: a command line's user mistakes as one ``error: ...`` line and a non-zero exit code.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from tworooms_env.cli import USER_ERRORS, run_cli  # the one definition (re-exported here)
from tworooms_env.core import IMG_SIZE, N_CHANNELS

OBS_SHAPE = (N_CHANNELS, IMG_SIZE, IMG_SIZE)  # uint8 frames of the env


# ------------------------------------------------------------------------------------ frames
def check_frames(x: Any, name: str, batched: bool = True) -> np.ndarray | torch.Tensor:
    """Return ``x`` if it is a batch [E, 2, 65, 65] (or one frame [2, 65, 65] with ``batched=False``)
    of uint8 pixels or finite floats in [0, 1]; raise TypeError / ValueError naming ``name`` otherwise."""
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or torch tensor [2, 65, 65] (uint8), got {type(x).__name__}")
    want = 4 if batched else 3
    if tuple(x.shape[-3:]) != OBS_SHAPE or x.ndim != want:
        expected = "[E, 2, 65, 65] (or [2, 65, 65] for one env)" if batched else "(2, 65, 65)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    if isinstance(x, np.ndarray):
        is_u8, is_float = x.dtype == np.uint8, x.dtype.kind == "f"
    else:
        is_u8, is_float = x.dtype == torch.uint8, x.is_floating_point()
    if not (is_u8 or is_float):
        raise TypeError(f"{name} must be uint8 pixels (0-255) or float in [0, 1], got dtype {x.dtype}")
    t = torch.as_tensor(x) if isinstance(x, np.ndarray) else x.detach()
    if is_float and t.numel():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or infinite values; expected uint8 pixels or floats in [0, 1]")
        lo, hi = float(t.min()), float(t.max())
        if hi > 1.0:
            raise ValueError(f"{name} is float with values up to {hi:g}: float frames must be in [0, 1]; "
                             f"pass 0-255 pixels as uint8 (e.g. frame.astype(np.uint8)) or divide by 255")
        if lo < 0.0:
            raise ValueError(f"{name} is float with values down to {lo:g}: float frames must be in [0, 1]")
    return x


# ------------------------------------------------------------------------------- checkpoints
def state_checksum(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 (hex) of a state_dict: each tensor's name, dtype, shape and bytes, in sorted key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def verify_state(state: Mapping[str, Any], path: str | Path, checksum: str | None = None) -> None:
    """Raise ValueError if ``state`` does not match ``checksum`` (None: no check; older files have
    none) or if any floating-point weight is NaN or infinite."""
    if checksum is not None and state_checksum(state) != checksum:
        raise ValueError(f"{path} is corrupt: its weights do not match the checksum stored at save time "
                         f"(the file was modified or damaged after it was written)")
    bad = [k for k, t in state.items() if isinstance(t, torch.Tensor) and t.is_floating_point()
           and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ValueError(f"{path} holds NaN or infinite weights in {', '.join(bad[:3])}{more}; "
                         f"the run that wrote it diverged: use an earlier checkpoint")


def load_checkpoint_file(path: str | Path, what: str = "checkpoint", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; every failure is one ValueError (FileNotFoundError if
    there is no file) naming the file and what is wrong with it, never an unsafe-load suggestion."""
    path = Path(path)
    if isinstance(map_location, (str, torch.device)):
        check_device(map_location)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not a {what}")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] != b"PK\x03\x04":
        kind = "a text file" if _looks_like_text(path) else "binary data without a zip header"
        raise ValueError(f"{path} is {kind}, not a {what} (expected a file written by torch.save)")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is truncated or corrupt ({size} bytes; its zip directory is missing): "
                         f"not a readable {what}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types here; its messages may advise unsafe loading
        reason = type(e).__name__
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            reason = "it holds objects other than tensors and plain containers, which are never unpickled here"
        raise ValueError(f"{path} is corrupt or not a {what} ({reason})") from None


def check_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)`` for a device this machine has; ValueError naming it otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    return dev


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as f:
        chunk = f.read(4096)
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


__all__ = ["check_frames", "check_device", "state_checksum", "verify_state", "load_checkpoint_file", "run_cli",
           "OBS_SHAPE"]
