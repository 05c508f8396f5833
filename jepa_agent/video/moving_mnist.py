"""Moving MNIST: a seeded, vectorised generator of bouncing-digit videos from real MNIST digits.

The recipe is the standard one (Srivastava et al. 2015, docs/reference.md#clips): 28 x 28 digits on a 64 x 64 black
canvas, uniform start (top-left corner in the 36 x 36 admissible square), uniform direction, constant
speed of 3.6 px per frame, bouncing off the edges, pixel-wise max compositing, 20 frames.
Unlike the Toronto file, every sequence also records where each digit is, so the detection targets
(the cell of an 8 x 8 map holding the centre of each digit's bounding box) are exact.

Usage::

    digits = load_mnist_images()                                  # uint8 [10000, 28, 28], shipped
    clips = generate_moving_mnist(digits, 64, np.random.default_rng(0))
    clips.frames  # uint8 [64, 20, 64, 64];   detection_maps(clips.boxes) -> bool [64, 20, 8, 8]
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CANVAS = 64
DIGIT = 28
NUM_FRAMES = 20
NUM_DIGITS = 2
SPEED = 3.6  # px per frame: 0.1 of the 36 px admissible range, as in the standard recipe
INK_THRESHOLD = 128  # a digit's bounding box covers its pixels >= this value (the reference's (min+max)/2)
GRID = 8  # detection map is GRID x GRID cells

# Where real digits are found: the env var MOVING_MNIST_DIGITS if set, else the 10k test images shipped
# inside the package (jepa_agent/video/assets/mnist, with their attribution and checksum).
PACKAGED_MNIST_DIR = Path(__file__).resolve().parent / "assets" / "mnist"
DEFAULT_MNIST_DIR = Path(os.environ.get("MOVING_MNIST_DIGITS", PACKAGED_MNIST_DIR))

MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {  # the official checksums
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
}


@dataclass(frozen=True)
class MovingMNIST:
    """A batch of sequences: frames uint8 [N, T, 64, 64]; boxes int [N, T, D, 4] = (x0, y0, x1, y1)
    inclusive pixel bounding box of each digit's ink; corners int [N, T, D, 2] = (x, y) of each 28 x 28
    digit patch; digit_ids int [N, D] = index of each digit in the source array."""

    frames: np.ndarray
    boxes: np.ndarray
    corners: np.ndarray
    digit_ids: np.ndarray


def load_mnist_images(root: str | os.PathLike = DEFAULT_MNIST_DIR, split: str = "t10k") -> np.ndarray:
    """Read MNIST images from an idx file (``{split}-images-idx3-ubyte`` or ``.gz``) -> uint8 [M, 28, 28]."""
    if split not in ("train", "t10k"):
        raise ValueError(f"split must be 'train' or 't10k', got {split!r}")
    root = Path(root)
    for name in (f"{split}-images-idx3-ubyte.gz", f"{split}-images-idx3-ubyte"):
        path = root / name
        if path.exists():
            break
    else:
        raise FileNotFoundError(
            f"no {split}-images-idx3-ubyte[.gz] in {root}; pass the folder holding MNIST idx files "
            "or call download_mnist(root, split) once"
        )
    if path.parent.resolve() == PACKAGED_MNIST_DIR.resolve() and path.name in MNIST_MD5:
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest != MNIST_MD5[path.name]:
            raise ValueError(f"{path}: MD5 {digest} differs from the official {MNIST_MD5[path.name]}; reinstall the package")
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    magic, count, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051 or (rows, cols) != (DIGIT, DIGIT):
        raise ValueError(f"{path} is not an MNIST idx3 image file (magic {magic}, size {rows}x{cols})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(count), DIGIT, DIGIT)


def download_mnist(root: str | os.PathLike, split: str = "t10k") -> Path:
    """Download one MNIST image file into ``root`` and verify its MD5 (for users with internet only)."""
    name = f"{split}-images-idx3-ubyte.gz"
    if name not in MNIST_MD5:
        raise ValueError(f"split must be 'train' or 't10k', got {split!r}")
    path = Path(root) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(MNIST_MIRROR + name, path)
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    if digest != MNIST_MD5[name]:
        path.unlink()
        raise ValueError(f"{name}: MD5 {digest} does not match the official {MNIST_MD5[name]}; file removed")
    return path


def ink_boxes(digits: np.ndarray) -> np.ndarray:
    """Inclusive bounding box (x0, y0, x1, y1) of the pixels >= INK_THRESHOLD of each digit [M, 28, 28]."""
    ink = digits >= INK_THRESHOLD
    cols, rows = ink.any(axis=1), ink.any(axis=2)  # [M, 28] each
    first = lambda m: np.where(m.any(1), np.argmax(m, axis=1), 0)  # noqa: E731
    last = lambda m: np.where(m.any(1), DIGIT - 1 - np.argmax(m[:, ::-1], axis=1), DIGIT - 1)  # noqa: E731
    return np.stack([first(cols), first(rows), last(cols), last(rows)], axis=1)


def bounce(start: np.ndarray, velocity: np.ndarray, num_frames: int, limit: float) -> np.ndarray:
    """Positions start + v t mirrored into [0, limit] (elastic bounce), for t = 0..num_frames-1.

    A closed form (triangle wave) instead of a loop over frames: [..., T] from start/velocity [...]."""
    p = start[..., None] + velocity[..., None] * np.arange(num_frames)
    q = np.mod(p, 2 * limit)
    return limit - np.abs(limit - q)


def generate_moving_mnist(
    digits: np.ndarray,
    num_sequences: int,
    rng: np.random.Generator,
    num_frames: int = NUM_FRAMES,
    num_digits: int = NUM_DIGITS,
    speed: float = SPEED,
) -> MovingMNIST:
    """Render ``num_sequences`` videos of ``num_digits`` digits drawn from ``digits`` [M, 28, 28] uint8."""
    if digits.ndim != 3 or digits.shape[1:] != (DIGIT, DIGIT) or digits.dtype != np.uint8:
        raise ValueError(f"digits must be uint8 [M, 28, 28], got {digits.dtype} {digits.shape}")
    if num_sequences < 1 or num_frames < 1 or num_digits < 1:
        raise ValueError(f"counts must be >= 1, got {num_sequences=}, {num_frames=}, {num_digits=}")
    n, t, d, limit = num_sequences, num_frames, num_digits, CANVAS - DIGIT
    ids = rng.integers(0, len(digits), size=(n, d))
    start = rng.uniform(0, limit, size=(n, d, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(n, d))
    velocity = speed * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    corners = np.rint(bounce(start, velocity, t, limit)).astype(np.int64)  # [N, D, 2, T]
    corners = corners.transpose(0, 3, 1, 2)  # [N, T, D, 2] = (x, y)

    frames = np.zeros((n, t, CANVAS, CANVAS), dtype=np.uint8)
    offs = np.arange(DIGIT)
    n_idx = np.arange(n)[:, None, None, None]
    t_idx = np.arange(t)[None, :, None, None]
    for k in range(d):  # max-compositing: one digit at a time, all sequences and frames at once
        rows = (corners[:, :, k, 1, None] + offs)[:, :, :, None]  # [N, T, 28, 1]
        cols = (corners[:, :, k, 0, None] + offs)[:, :, None, :]  # [N, T, 1, 28]
        patch = digits[ids[:, k]][:, None]  # [N, 1, 28, 28]
        frames[n_idx, t_idx, rows, cols] = np.maximum(frames[n_idx, t_idx, rows, cols], patch)

    local = ink_boxes(digits)[ids]  # [N, D, 4]
    boxes = local[:, None] + np.concatenate([corners, corners], axis=-1)  # [N, T, D, 4]
    return MovingMNIST(frames=frames, boxes=boxes, corners=corners, digit_ids=ids)


def detection_maps(boxes: np.ndarray, canvas: int = CANVAS, grid: int = GRID) -> np.ndarray:
    """Binary maps bool [..., grid, grid]: cell (row, col) of each box centre is 1 (boxes [..., D, 4])."""
    cx = (boxes[..., 0] + boxes[..., 2]) / 2
    cy = (boxes[..., 1] + boxes[..., 3]) / 2
    col = np.clip((cx * grid / canvas).astype(np.int64), 0, grid - 1)
    row = np.clip((cy * grid / canvas).astype(np.int64), 0, grid - 1)
    maps = np.zeros((*boxes.shape[:-2], grid * grid), dtype=bool)
    np.put_along_axis(maps, row * grid + col, True, axis=-1)
    return maps.reshape(*boxes.shape[:-2], grid, grid)


def load_standard_sequences(path: str | os.PathLike) -> np.ndarray:
    """Read the Toronto ``mnist_test_seq.npy`` (uint8 [20, N, 64, 64]) -> uint8 [N, 20, 64, 64] (memory-mapped)."""
    seq = np.load(path, mmap_mode="r")
    if seq.ndim != 4 or seq.shape[2:] != (CANVAS, CANVAS) or seq.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 [T, N, 64, 64], got {seq.dtype} {seq.shape}")
    return seq.transpose(1, 0, 2, 3)


def detection_maps_from_pixels(frames: np.ndarray, grid: int = GRID, max_iters: int = 200) -> np.ndarray:
    """Detection maps for frames without recorded positions (the Toronto file), as the reference does:
    threshold at (min + max) / 2, take each 8-connected blob's bounding-box centre -> bool [..., grid, grid].

    Blobs are found by propagating the largest pixel index over 3 x 3 neighbourhoods (vectorised over
    frames); merged or broken digits give != 2 positives, like the reference's blobs (docs/reference.md#clips)."""
    import torch
    from torch.nn import functional as F

    shape = frames.shape
    x = torch.as_tensor(np.ascontiguousarray(frames).reshape(-1, 1, *shape[-2:])).float()
    lo, hi = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
    fg = (x > (lo + hi) / 2) & (hi > lo)
    h, w = shape[-2:]
    ids = torch.arange(1, x.shape[0] * h * w + 1, dtype=torch.float64).reshape(x.shape)
    label = torch.where(fg, ids, torch.zeros_like(ids))
    for _ in range(max_iters):
        grown = torch.where(fg, F.max_pool2d(label, 3, 1, 1), label)
        if torch.equal(grown, label):
            break
        label = grown
    flat = label.flatten().long()
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    xs, ys = xs.flatten().repeat(x.shape[0]), ys.flatten().repeat(x.shape[0])
    size = flat.numel() + 1
    box = [torch.full((size,), fill, dtype=torch.long) for fill in (w, h, -1, -1)]
    for b, v, red in zip(box, (xs, ys, xs, ys), ("amin", "amin", "amax", "amax")):
        b.scatter_reduce_(0, flat, v, red)
    root = torch.nonzero(box[2][1:] >= 0).squeeze(1) + 1  # labels that own a blob
    frame = (root - 1) // (h * w)
    cx, cy = (box[0][root] + box[2][root]) / 2, (box[1][root] + box[3][root]) / 2
    cell = (cy * grid / h).long().clamp(0, grid - 1) * grid + (cx * grid / w).long().clamp(0, grid - 1)
    maps = torch.zeros(x.shape[0], grid * grid, dtype=torch.bool)
    maps[frame, cell] = True
    return maps.reshape(*shape[:-2], grid, grid).numpy()
