"""Image backbones and the view-invariant joint-embedding model (paper section 3 (i), docs/reference.md#image-jepa).

- ``ResNet18``: the CIFAR variant (3x3 stem, no max-pool) with a ``width`` option (64 is the
  reference; 16 fits a CPU) and a ``blocks`` option (2-2-2-2 is ResNet-18).
- ``ViT``: a small Vision Transformer (ViT-S: dim 384, 12 layers, 6 heads) whose output is the
  class token after the final LayerNorm.
- ``ImageJEPA``: encoder + projector (or none) and the energy of two views:
  invariance MSE(z1, z2) plus VICReg or SIGReg on each view (``JointEmbeddingLoss``).

Images are float ``[B, C, H, W]`` (already normalised); features are ``[B, feat_dim]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from jepa_agent.regularizers import SIGReg, CovarianceLoss, Projector, VarianceLoss


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 strided) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet for small images: 3x3 stride-1 stem, no max-pool, 4 stages, global average pool.

    ``width`` is the first stage's channel count (stages use width x 1, 2, 4, 8), so the feature
    dimension is ``8 * width``. ``stem_padding=2`` reproduces the reference's 34 x 34 first map
    (docs/reference.md#backbones-and-losses); 1 keeps the input size.
    """

    def __init__(
        self, in_channels: int = 3, width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2), stem_padding: int = 1
    ):
        super().__init__()
        if width < 1 or len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"need width >= 1 and 4 stages of >= 1 block, got width={width}, blocks={blocks}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, stem_padding, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            layers = [BasicBlock(c_in, c_out, 1 if i == 0 else 2)]
            layers += [BasicBlock(c_out, c_out, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.feat_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


class ViT(nn.Module):
    """Vision Transformer returning the class token after the final LayerNorm (pre-norm blocks)."""

    def __init__(
        self,
        image_size: int = 32,
        patch_size: int = 4,
        in_channels: int = 3,
        dim: int = 384,
        depth: int = 12,
        heads: int = 6,
        mlp_dim: int = 1536,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        n_patches = (image_size // patch_size) ** 2
        self.patchify = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.feat_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patchify(x).flatten(2).transpose(1, 2)  # [B, P, dim]
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.pos
        return self.norm(self.blocks(tokens))[:, 0]


def build_encoder(
    arch: str, in_channels: int, image_size: int, width: int = 64, blocks: str = "2-2-2-2", stem_padding: int = 1,
    patch_size: int = 4,
) -> nn.Module:
    """``arch`` is ``"resnet18"`` (any width/blocks) or ``"vit_s"`` (ViT-S/patch_size)."""
    if arch == "resnet18":
        return ResNet18(in_channels, width, tuple(int(b) for b in blocks.split("-")), stem_padding)
    if arch == "vit_s":
        return ViT(image_size, patch_size, in_channels)
    raise ValueError(f"arch must be 'resnet18' or 'vit_s', got {arch!r}")


class JointEmbeddingLoss(nn.Module):
    """Energy of two views (paper eq. 5 with eq. 6-7 or eq. 8), as in docs/reference.md#backbones-and-losses:

    VICReg: MSE(z1, z2) + std_coeff (L_std(z1) + L_std(z2)) + cov_coeff (L_cov(z1) + L_cov(z2))
    SIGReg: MSE(z1, z2) + lambda (EP(z1) + EP(z2)) / 2, both views on the same random slices.
    """

    def __init__(
        self,
        regulariser: str = "sigreg",
        std_coeff: float = 1.0,
        cov_coeff: float = 100.0,
        sigreg_lambda: float = 10.0,
        num_slices: int = 256,
        num_knots: int = 17,
        seed: int = 0,
    ):
        super().__init__()
        if regulariser not in ("vicreg", "sigreg"):
            raise ValueError(f"regulariser must be 'vicreg' or 'sigreg', got {regulariser!r}")
        self.regulariser = regulariser
        self.std_coeff, self.cov_coeff, self.sigreg_lambda = std_coeff, cov_coeff, sigreg_lambda
        self.variance, self.covariance = VarianceLoss(), CovarianceLoss()
        self.sigreg = SIGReg(num_slices=num_slices, num_knots=num_knots, seed=seed)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        z1, z2 = z1.float(), z2.float()
        terms = {"invariance": F.mse_loss(z1, z2)}
        if self.regulariser == "vicreg":
            terms["variance"] = self.variance(z1) + self.variance(z2)
            terms["covariance"] = self.covariance(z1) + self.covariance(z2)
            terms["loss"] = terms["invariance"] + self.std_coeff * terms["variance"] + self.cov_coeff * terms["covariance"]
        else:
            slices = self.sigreg.directions(z1.shape[-1], z1.device)
            terms["sigreg"] = (self.sigreg.statistic(z1 @ slices).mean() + self.sigreg.statistic(z2 @ slices).mean()) / 2
            if self.training:
                self.sigreg.calls += 1  # a fresh set of slices next step, reproducibly
            terms["loss"] = terms["invariance"] + self.sigreg_lambda * terms["sigreg"]
        return terms


class ImageJEPA(nn.Module):
    """Encoder + projector; ``projector=""`` applies the loss to the backbone features."""

    def __init__(self, encoder: nn.Module, projector: str = "2048-128"):
        super().__init__()
        self.encoder = encoder
        feat_dim = encoder.feat_dim
        self.projector = Projector(f"{feat_dim}-{projector}") if projector else nn.Identity()
        self.feat_dim = feat_dim
        self.embed_dim = self.projector.out_dim if projector else feat_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (backbone features [B, feat_dim], projected embeddings [B, embed_dim])."""
        h = self.encoder(x)
        return h, self.projector(h)
