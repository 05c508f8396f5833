"""Image classification data for the image JEPA: CIFAR-10, MNIST, Fashion-MNIST, a synthetic set.

Every loader returns an ``ImageData``: uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``,
held in memory (all these sets fit: CIFAR-10 is 180 MB, Fashion-MNIST 55 MB), with the per-channel
mean / std used to normalise them. Nothing here downloads anything, except the explicit
``download_cifar10`` (checksum-verified; tests and CI never call it).

Fashion-MNIST / MNIST are 28 x 28 grayscale and stay that way: 1 input channel, native size
(the ResNet's global pooling accepts any size; 28 x 28 costs 23 % less than padding to 32).
``pad_to`` zero-pads (the background is black) for a model that needs a fixed 32 x 32 input.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
# docs/reference.md#data-and-augmentations
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
STATS = {  # per-channel mean / std of the training images in [0, 1]
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
}


@dataclass
class ImageData:
    """A labelled image set in memory: uint8 images [N, C, H, W], int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must be [N={len(self.images)}], got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, n: int) -> "ImageData":
        """The first n images (all when n <= 0 or n >= N)."""
        if n <= 0 or n >= len(self):
            return self
        return ImageData(self.images[:n], self.labels[:n], self.mean, self.std, self.num_classes)


def _read_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {path} not found (expected the python-pickle batches)")
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def load_cifar10(root: str | Path, split: str = "train") -> ImageData:
    """CIFAR-10 from ``root`` (or ``root/cifar-10-batches-py``): data_batch_1..5 / test_batch.

    Each batch is a pickled dict with b"data" uint8 [N, 3072] (channel-major 32 x 32) and
    b"labels" a list of ints.
    """
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    if split not in names:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    batches = [_read_pickle(root / name) for name in names[split]]
    data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"CIFAR-10 b'data' must be [N, 3072], got {data.shape}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return ImageData(images, torch.from_numpy(labels), CIFAR10_MEAN, CIFAR10_STD, 10)


def download_cifar10(root: str | Path) -> Path:
    """Download and extract CIFAR-10 into ``root`` after checking its MD5; returns the batch folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    if not archive.is_file():
        urllib.request.urlretrieve(CIFAR10_URL, archive)
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    if digest != CIFAR10_MD5:
        raise ValueError(f"{archive} has MD5 {digest}, expected {CIFAR10_MD5}: delete it and retry")
    with tarfile.open(archive) as tar:
        # the "data" filter refuses absolute paths and links out of root (Python >= 3.10.12)
        tar.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return root / "cifar-10-batches-py"


def load_idx(path: str | Path) -> np.ndarray:
    """An idx file (optionally gzipped): magic 0x0000 | dtype 0x08 (uint8) | ndim, then big-endian sizes."""
    path = Path(path)
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not a uint8 idx file (header {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({np.prod(shape)} values), file has {data.size}")
    return data.reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{stem}(.gz) not found in {root}")


def load_mnist_like(root: str | Path, split: str = "train", name: str = "fashion_mnist") -> ImageData:
    """MNIST or Fashion-MNIST from the four idx(.gz) files in ``root``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    root = Path(root)
    images = load_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = load_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    mean, std = STATS[name]
    return ImageData(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)), mean, std, 10)


def synthetic_images(n: int, size: int = 16, channels: int = 1, num_classes: int = 4, seed: int = 0) -> ImageData:
    """Textures whose class survives crops and jitter: stripes of class-dependent orientation
    (0, 45, 90, 135 degrees, ...) with random frequency, phase and contrast, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    angle = labels * np.pi / num_classes
    freq = rng.uniform(0.5, 0.9, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    u = np.cos(angle)[:, None, None] * xs + np.sin(angle)[:, None, None] * ys
    wave = np.sin(freq[:, None, None] * u + phase[:, None, None])
    img = 0.5 + 0.4 * rng.uniform(0.5, 1.0, (n, 1, 1)) * wave + 0.05 * rng.standard_normal((n, size, size))
    img = np.repeat(img[:, None], channels, axis=1)
    images = torch.from_numpy((np.clip(img, 0, 1) * 255).astype(np.uint8))
    return ImageData(images, torch.from_numpy(labels.astype(np.int64)), (0.5,) * channels, (0.25,) * channels, num_classes)


def pad_to(data: ImageData, size: int) -> ImageData:
    """Zero-pad the images (centred) to size x size."""
    h, w = data.images.shape[-2:]
    if size < max(h, w):
        raise ValueError(f"pad_to size {size} is smaller than the images ({h} x {w})")
    top, left = (size - h) // 2, (size - w) // 2
    images = torch.nn.functional.pad(data.images, (left, size - w - left, top, size - h - top))
    return ImageData(images, data.labels, data.mean, data.std, data.num_classes)


def load_dataset(name: str, root: str = "", split: str = "train", synthetic_size: int = 512) -> ImageData:
    """By name: "cifar10" (root required), "fashion_mnist" (root defaults to the Debian path),
    "mnist" (root required) or "synthetic" (no files; ``synthetic_size`` images, test uses another seed)."""
    if name == "cifar10":
        if not root:
            raise ValueError("cifar10 needs data_root: the folder with the python-pickle batches")
        return load_cifar10(root, split)
    if name in ("fashion_mnist", "mnist"):
        if not root and name == "mnist":
            raise ValueError("mnist needs data_root: the folder with the idx files")
        return load_mnist_like(root or FASHION_MNIST_ROOT, split, name)
    if name == "synthetic":
        return synthetic_images(synthetic_size if split == "train" else synthetic_size // 2, seed=0 if split == "train" else 1)
    raise ValueError(f"dataset must be 'cifar10', 'fashion_mnist', 'mnist' or 'synthetic', got {name!r}")
