"""Analytic "world models" with the planner interface: perfect perception, known dynamics.

They stand in for a learned model in tests and give the planner's ceiling: with the true
dynamics (walls included), planning failures are the planner's alone.

- ``TruePositionModel(walls=True)``: ``encode`` reads the dot position and the layout off the
  pixels; ``unroll`` applies ``tworooms_env.core.step_positions`` (the env's own dynamics).
- ``TruePositionModel(walls=False)``: the same perception, an open-field integrator (no centre
  wall, borders kept): the "true dynamics without walls" of the tests.

Latent: z = (x, y, wall_x, door_y) in pixels; the planning distance uses (x, y) only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tworooms_env import core


class PositionProbe(nn.Module):
    """The probe of an analytic model: the first two latent coordinates are the position."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[..., :2]


def decode_positions(obs: np.ndarray) -> np.ndarray:
    """Dot positions [..., 2] (x, y) from observations [..., 2, 65, 65]: intensity centroid of channel 0."""
    dot = np.asarray(obs)[..., 0, :, :].astype(np.float64)
    mass = dot.sum(axis=(-1, -2))
    if np.any(mass <= 0):
        raise ValueError("an observation has an empty dot channel: cannot decode the position")
    grid = np.arange(core.IMG_SIZE, dtype=np.float64)
    x = (dot.sum(axis=-2) * grid).sum(axis=-1) / mass
    y = (dot.sum(axis=-1) * grid).sum(axis=-1) / mass
    return np.stack([x, y], axis=-1)


def decode_layouts(obs: np.ndarray) -> np.ndarray:
    """(wall_x, door_y) [..., 2] from the wall channel of observations [..., 2, 65, 65]."""
    walls = np.asarray(obs)[..., 1, :, :] > 127
    lo, hi = int(core.BORDER_LO) + 1, int(core.BORDER_HI)  # interior rows/columns
    interior = walls[..., lo:hi, :]
    column_hits = interior.sum(axis=-2).astype(np.float64)  # [..., 65]
    column_hits[..., : lo] = 0.0
    column_hits[..., hi:] = 0.0
    cols = np.arange(core.IMG_SIZE, dtype=np.float64)
    wall_x = (column_hits * cols).sum(-1) / np.maximum(column_hits.sum(-1), 1.0)
    wall_col = np.rint(wall_x).astype(np.int64)
    open_rows = ~np.take_along_axis(interior, wall_col[..., None, None], axis=-1)[..., 0]  # [..., rows]
    rows = np.arange(lo, hi, dtype=np.float64)
    door_y = (open_rows * rows).sum(-1) / np.maximum(open_rows.sum(-1), 1)
    return np.stack([np.rint(wall_x), np.rint(door_y)], axis=-1)


class TruePositionModel(nn.Module):
    """Perfect perception + exact dynamics, with the world-model interface of interfaces.md.

    Args:
        walls: True applies the env's dynamics (centre wall, door, borders); False an open-field
            integrator p' = p + clip(a), clamped inside the borders.
    """

    latent_dim = 4
    action_chunk = 1

    def __init__(self, walls: bool = True) -> None:
        super().__init__()
        self.walls = bool(walls)
        self.probe = PositionProbe()

    def encode(self, obs) -> torch.Tensor:
        arr = obs.detach().cpu().numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs)
        if arr.shape[-3:] != (core.N_CHANNELS, core.IMG_SIZE, core.IMG_SIZE):
            raise ValueError(f"observations must be [..., 2, 65, 65], got {arr.shape}")
        if arr.dtype != np.uint8:  # a float observation in [0, 1] or [0, 255]: bring to 0..255
            arr = arr * 255.0 if arr.max() <= 1.0 else arr
        z = np.concatenate([decode_positions(arr), decode_layouts(arr)], axis=-1)
        device = obs.device if isinstance(obs, torch.Tensor) else "cpu"
        return torch.as_tensor(z, dtype=torch.float32, device=device)

    def unroll(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if z0.ndim != 2 or actions.ndim != 3 or actions.shape[0] != z0.shape[0] or actions.shape[2] != 2:
            raise ValueError(f"unroll needs z0 [B, D] and actions [B, H, 2], got {tuple(z0.shape)} and {tuple(actions.shape)}")
        if not self.walls:
            return self._unroll_open(z0, actions)
        z = z0.detach().cpu().double().numpy()
        a = actions.detach().cpu().double().numpy()
        pos = core.project_free(z[:, :2], z[:, 2], z[:, 3])
        out = np.empty((z.shape[0], a.shape[1] + 1, 4))
        out[:, :, 2:] = z[:, None, 2:]
        out[:, 0, :2] = pos
        for t in range(a.shape[1]):  # sequential in time; vectorised over the batch
            pos, _ = core.step_positions(pos, a[:, t], z[:, 2], z[:, 3])
            out[:, t + 1, :2] = pos
        return torch.as_tensor(out, dtype=torch.float32, device=z0.device)

    def _unroll_open(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        norm = actions.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        a = actions * torch.clamp(core.MAX_STEP_NORM / norm, max=1.0)
        lo = core.BORDER_LO + core.CONTACT_MARGIN
        hi = core.BORDER_HI - core.CONTACT_MARGIN
        steps = [z0[:, :2]]
        for t in range(a.shape[1]):  # clamp step by step: pushing into a border does not bank moves
            steps.append((steps[-1] + a[:, t]).clamp(lo, hi))
        pos = torch.stack(steps, dim=1)
        rest = z0[:, None, 2:].expand(-1, pos.shape[1], -1)
        return torch.cat([pos, rest], dim=-1).float()

    def planning_distance(self, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        return (z[..., :2] - z_goal[..., :2]).norm(dim=-1)
