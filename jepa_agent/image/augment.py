"""Two-view augmentation with torch ops on whole batches (no torchvision; docs/reference.md#data-and-augmentations).

Every transform draws its random parameters per image but runs as one batched op:
random resized crop + horizontal flip are a per-image affine grid (``F.affine_grid`` +
``F.grid_sample``, bilinear), colour jitter, grayscale and solarize are per-image factors
broadcast over the batch. Input: uint8 or float images ``[B, C, H, W]`` (C = 1 or 3);
values are scaled to [0, 1], augmented, then normalised with the dataset's mean / std.

Differences from torchvision, on purpose or for speed: jitter is applied in a fixed order
(brightness, contrast, saturation, hue) rather than a random one; hue is a rotation of the
chroma plane in YIQ space (an approximation of HSV hue shift); crops sample scale and log-ratio
uniformly and clamp the box to the image instead of retrying. Saturation, hue and grayscale do
nothing to 1-channel images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

_LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass
class AugmentConfig:
    """Probabilities and strengths (defaults are the reference's CIFAR-10 pipeline)."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2
    solarize_p: float = 0.1
    solarize_threshold: float = 0.5  # PIL's 128 / 255


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> float32 in [0, 1]."""
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x - mean) / std per channel; x in [0, 1], [B, C, H, W]."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def _coin(n: int, p: float, gen: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def random_resized_crop_flip(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """Crop a box of area scale*H*W and aspect ratio r, resize it to H x W, flip with flip_p."""
    b, dev = x.shape[0], x.device
    scale = _uniform(b, *cfg.crop_scale, gen, dev)
    log_ratio = _uniform(b, math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]), gen, dev)
    ratio = torch.exp(log_ratio)
    # box size as a fraction of the image side (affine_grid works in [-1, 1] coordinates)
    w = torch.sqrt(scale * ratio).clamp(max=1.0)
    h = torch.sqrt(scale / ratio).clamp(max=1.0)
    cx = (torch.rand(b, generator=gen, device=dev) * 2 - 1) * (1 - w)
    cy = (torch.rand(b, generator=gen, device=dev) * 2 - 1) * (1 - h)
    flip = torch.where(_coin(b, cfg.flip_p, gen, dev), -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * _LUMA.to(x.device).view(1, 3, 1, 1)).sum(1, keepdim=True) if x.shape[1] == 3 else x


def colour_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """Brightness, contrast, saturation, hue with per-image factors, applied to a jitter_p share."""
    b, dev = x.shape[0], x.device
    apply = _coin(b, cfg.jitter_p, gen, dev).view(b, 1, 1, 1)
    view = (b, 1, 1, 1)
    y = x * _uniform(b, 1 - cfg.brightness, 1 + cfg.brightness, gen, dev).view(view)
    y = y.clamp(0, 1)
    mean = _gray(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * _uniform(b, 1 - cfg.contrast, 1 + cfg.contrast, gen, dev).view(view) + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = _gray(y)
        y = ((y - gray) * _uniform(b, 1 - cfg.saturation, 1 + cfg.saturation, gen, dev).view(view) + gray).clamp(0, 1)
        y = _hue_rotate(y, _uniform(b, -cfg.hue, cfg.hue, gen, dev) * 2 * math.pi).clamp(0, 1)
    return torch.where(apply, y, x)


def _hue_rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the (I, Q) chroma plane by ``angle`` radians per image."""
    rgb2yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device)
    yiq2rgb = torch.linalg.inv(rgb2yiq)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(len(x), 3, 3, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = yiq2rgb @ rot @ rgb2yiq  # [B, 3, 3]
    return torch.einsum("bij,bjhw->bihw", m, x)


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """One random view of each image; x float in [0, 1], returns float in [0, 1], same shape."""
    b, dev = x.shape[0], x.device
    x = random_resized_crop_flip(x, cfg, gen)
    x = colour_jitter(x, cfg, gen)
    if x.shape[1] == 3:
        x = torch.where(_coin(b, cfg.grayscale_p, gen, dev).view(b, 1, 1, 1), _gray(x).expand_as(x), x)
    solarize = _coin(b, cfg.solarize_p, gen, dev).view(b, 1, 1, 1) & (x >= cfg.solarize_threshold)
    return torch.where(solarize, 1 - x, x)


class TwoViews:
    """Callable: uint8/float batch -> (view1, view2), each augmented and normalised."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], cfg: AugmentConfig | None = None):
        if len(mean) != len(std):
            raise ValueError(f"mean and std need one value per channel, got {mean} and {std}")
        self.mean, self.std, self.cfg = mean, std, cfg or AugmentConfig()

    def __call__(self, images: torch.Tensor, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_unit(images)
        if x.shape[1] != len(self.mean):
            raise ValueError(f"images have {x.shape[1]} channels, the normalisation expects {len(self.mean)}")
        return tuple(normalise(augment(x, self.cfg, gen), self.mean, self.std) for _ in range(2))  # type: ignore[return-value]

    def test(self, images: torch.Tensor) -> torch.Tensor:
        """The evaluation transform: scale and normalise only."""
        return normalise(to_unit(images), self.mean, self.std)
