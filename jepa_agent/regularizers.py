"""Anti-collapse and dynamics regularisers, one module per term of the paper's energy.

Conventions: embeddings are ``z [N, D]`` (samples, features) for the distribution terms and
``z [B, T, D]`` (batch, time, features) for the temporal terms; actions are ``a [B, T - 1, A]``
with ``a[:, t]`` leading from frame t to frame t + 1.
Every term returns a scalar tensor; coefficients live in the model that sums them.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class VarianceLoss(nn.Module):
    """Hinge on the per-dimension standard deviation (paper eq. 6, VICReg):

    L_std = (1/D) sum_j ReLU(gamma - sqrt(Var(z_j) + eps)), unbiased variance over the samples.
    """

    def __init__(self, gamma: float = 1.0, eps: float = 1e-4):
        super().__init__()
        self.gamma, self.eps = gamma, eps

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(-1, z.shape[-1]).float()
        std = torch.sqrt(z.var(dim=0, unbiased=True) + self.eps)
        return F.relu(self.gamma - std).mean()


class CovarianceLoss(nn.Module):
    """Mean squared off-diagonal covariance (paper eq. 7):

    C = Zc^T Zc / (N - 1) with Zc the column-centred samples;
    L_cov = (1 / (D (D - 1))) sum_{i != j} C_ij^2      (normalisation="offdiag_mean", the reference)
    L_cov = (1 / D) sum_{i != j} C_ij^2                 (normalisation="vicreg", the VICReg paper).
    """

    def __init__(self, normalisation: str = "offdiag_mean"):
        super().__init__()
        if normalisation not in ("offdiag_mean", "vicreg"):
            raise ValueError(f"normalisation must be 'offdiag_mean' or 'vicreg', got {normalisation!r}")
        self.normalisation = normalisation

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(-1, z.shape[-1]).float()
        n, d = z.shape
        zc = z - z.mean(dim=0)
        cov = zc.T @ zc / (n - 1)
        off_diag = cov.pow(2).sum() - cov.diagonal().pow(2).sum()
        return off_diag / (d * (d - 1) if self.normalisation == "offdiag_mean" else d)


class SIGReg(nn.Module):
    """Sketched isotropic Gaussian regulariser with the Epps-Pulley statistic (paper eq. 8).

    The embeddings are projected on ``num_slices`` random unit directions (a fresh matrix each call,
    drawn from a generator seeded with ``seed + call count`` so runs are reproducible); for each
    1-D projection y the statistic is

        EP = integral over t of  w(t) |psi_hat(t) - phi(t)|^2 dt,   phi(t) = exp(-t^2 / 2),

    with psi_hat the empirical characteristic function (1/N) sum_b exp(i t y_b), weight
    w(t) = phi(t), and the integral taken by the trapezoidal rule on ``num_knots`` points in
    [-t_max, t_max]. ``scale_by_n`` multiplies by N as in LeJEPA (the reference omits it,
    docs/reference.md#backbones-and-losses). The loss is the mean over slices.
    """

    def __init__(
        self,
        num_slices: int = 256,
        num_knots: int = 17,
        t_max: float = 3.0,
        scale_by_n: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.num_slices, self.scale_by_n, self.seed = num_slices, scale_by_n, seed
        t = torch.linspace(-t_max, t_max, num_knots)
        weights = torch.full((num_knots,), (2 * t_max) / (num_knots - 1))
        weights[0] = weights[-1] = weights[0] / 2  # trapezoidal rule
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("trapezoid", weights, persistent=False)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def directions(self, dim: int, device: torch.device) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed + int(self.calls))
        a = torch.randn(dim, self.num_slices, generator=gen)
        return (a / a.norm(dim=0, keepdim=True)).to(device)

    def statistic(self, y: torch.Tensor) -> torch.Tensor:
        """Epps-Pulley statistic of each column of y [N, S]: returns [S]."""
        n = y.shape[0]
        ty = y.unsqueeze(-1) * self.t  # [N, S, K]
        real = torch.cos(ty).mean(dim=0)
        imag = torch.sin(ty).mean(dim=0)
        phi = torch.exp(-0.5 * self.t**2)
        integrand = phi * ((real - phi) ** 2 + imag**2)  # [S, K]
        ep = integrand @ self.trapezoid
        return ep * n if self.scale_by_n else ep

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(-1, z.shape[-1]).float()
        a = self.directions(z.shape[-1], z.device)
        if self.training:
            self.calls += 1
        return self.statistic(z @ a).mean()


class TemporalSimilarityLoss(nn.Module):
    """Consecutive embeddings stay close (paper eq. 12): mean over b, t, d of (z_{t+1} - z_t)^2."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 3 or z.shape[1] < 2:
            raise ValueError(f"z must be [B, T, D] with T >= 2, got {tuple(z.shape)}")
        return (z[:, 1:] - z[:, :-1]).float().pow(2).mean()


class InverseDynamicsLoss(nn.Module):
    """Predict the action from consecutive embeddings (paper eq. 12): MLP([z_t, z_{t+1}]) ~ a_t.

    L_idm = mean over b, t, action coordinates of (IDM(z_t, z_{t+1}) - a_t)^2.
    """

    def __init__(self, dim: int, action_dim: int = 2, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, action_dim)
        )

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        if z.dim() != 3 or a.dim() != 3 or a.shape[:2] != (z.shape[0], z.shape[1] - 1):
            raise ValueError(f"expected z [B, T, D] and a [B, T-1, A], got {tuple(z.shape)} and {tuple(a.shape)}")
        pred = self.mlp(torch.cat([z[:, :-1], z[:, 1:]], dim=-1))
        return (pred.float() - a.float()).pow(2).mean()


class Projector(nn.Module):
    """MLP projector: Linear-BN-ReLU blocks then a final Linear, e.g. ``"512-2048-2048-128"``."""

    def __init__(self, dims: str | list[int], last_bias: bool = True):
        super().__init__()
        sizes = [int(s) for s in dims.split("-")] if isinstance(dims, str) else list(dims)
        if len(sizes) < 2:
            raise ValueError(f"projector needs at least an input and an output size, got {dims!r}")
        layers: list[nn.Module] = []
        for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=last_bias))
        self.net = nn.Sequential(*layers)
        self.out_dim = sizes[-1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        shape = z.shape
        return self.net(z.reshape(-1, shape[-1])).reshape(*shape[:-1], self.out_dim)


def effective_rank(z: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of the centred embeddings [N, D]."""
    z = z.reshape(-1, z.shape[-1]).float()
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    p = s / s.sum().clamp_min(1e-12)
    return float(math.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))
