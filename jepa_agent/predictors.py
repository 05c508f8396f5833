"""Predictors g(z, u) -> z_next and the action encoder q(a) -> u.

A predictor steps a batch of latents ``z [B, D]`` with encoded actions ``u [B, U]``. With
``action_chunk = k`` the action encoder consumes k consecutive actions ``[B, k, 2]`` at once and
the predictor jumps k environment steps per call (fewer calls when planning).

- :class:`GRUPredictor`: the reference single-layer GRU (docs/reference.md#predictor), hidden state = z, output
  LayerNorm.
- :class:`ResidualMLPPredictor`: z_next = z + h([z, u]) on the predicted part of z. With a factored
  latent the last ``static_dim`` coordinates (z_layout) are copied unchanged: walls do not move.
"""

from __future__ import annotations

import torch
from torch import nn

from jepa_agent.encoders import mlp

ACTION_DIM = 2
# Actions are pixel displacements with norm <= 2.45; dividing by this keeps the inputs ~ unit scale.
ACTION_SCALE = 2.45


class ActionEncoder(nn.Module):
    """q(a): k actions [B, k, 2] (pixels) -> u [B, out_dim]; identity (flatten + scale) or an MLP."""

    def __init__(self, chunk: int = 1, kind: str = "identity", out_dim: int = 32):
        super().__init__()
        if chunk < 1:
            raise ValueError(f"action chunk must be >= 1, got {chunk}")
        if kind not in ("identity", "mlp"):
            raise ValueError(f"action encoder must be 'identity' or 'mlp', got {kind!r}")
        self.chunk = chunk
        self.net = mlp(ACTION_DIM * chunk, out_dim, out_dim, depth=1) if kind == "mlp" else None
        self.out_dim = out_dim if self.net is not None else ACTION_DIM * chunk

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        u = a.reshape(*a.shape[:-2], -1) / ACTION_SCALE
        return u if self.net is None else self.net(u)


class ResidualMLPPredictor(nn.Module):
    """z_next = [z_dyn + h([z, u]), z_static]: residual MLP on the first D - static_dim dims."""

    def __init__(self, latent_dim: int, action_dim: int, hidden: int = 256, depth: int = 2, static_dim: int = 0):
        super().__init__()
        if not 0 <= static_dim < latent_dim:
            raise ValueError(f"need 0 <= static_dim < latent_dim, got {static_dim}, {latent_dim}")
        self.latent_dim, self.static_dim = latent_dim, static_dim
        self.dyn_dim = latent_dim - static_dim
        self.net = mlp(latent_dim + action_dim, hidden, self.dyn_dim, depth, act=nn.ReLU)
        # Start near the identity map: small last layer, so early rollouts do not explode.
        nn.init.zeros_(self.net[-1].bias)
        self.net[-1].weight.data.mul_(0.1)

    def forward(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        delta = self.net(torch.cat([z, u], dim=-1))
        if self.static_dim == 0:
            return z + delta
        return torch.cat([z[..., : self.dyn_dim] + delta, z[..., self.dyn_dim :]], dim=-1)


class GRUPredictor(nn.Module):
    """docs/reference.md#predictor: h' = GRUCell(u, h = z); z_next = LayerNorm(h'). Single layer, no extra residual."""

    def __init__(self, latent_dim: int, action_dim: int, norm: nn.Module | None = None):
        super().__init__()
        self.latent_dim, self.static_dim, self.dyn_dim = latent_dim, 0, latent_dim
        self.cell = nn.GRUCell(action_dim, latent_dim)
        self.norm = norm if norm is not None else nn.LayerNorm(latent_dim)

    def forward(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.norm(self.cell(u, z))


def build_predictor(
    name: str, latent_dim: int, action_dim: int, hidden: int = 256, depth: int = 2, static_dim: int = 0,
    norm: nn.Module | None = None,
) -> nn.Module:
    """A predictor by name ('mlp' or 'gru')."""
    if name == "mlp":
        return ResidualMLPPredictor(latent_dim, action_dim, hidden, depth, static_dim)
    if name == "gru":
        if static_dim:
            raise ValueError("the GRU predictor does not support a static (layout) part: use predictor='mlp'")
        return GRUPredictor(latent_dim, action_dim, norm)
    raise ValueError(f"unknown predictor {name!r}; expected 'mlp' or 'gru'")
