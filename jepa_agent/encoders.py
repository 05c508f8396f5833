"""Frame encoders f(x) -> z. Every frame of a batch is encoded in one call (no loop over time).

Input: observations float or uint8 ``[N, 2, 65, 65]`` (channel 0 the dot, channel 1 the walls);
uint8 is scaled to [0, 1] here so that the model owns its input normalisation.

- :class:`PixelEncoder`: a learned CNN over the whole 2-channel frame, sized for a CPU (a 2 x 2
  average pool, three small convolutions, two heads). The default of the pixel recipe.
- :class:`ImpalaEncoder`: the reference IMPALA CNN (docs/reference.md#encoder), 1.4M parameters, for GPU presets.
- :class:`ProfileEncoder`: hand-crafted position features (privileged), CPU-first and near free. The row and column sums of each channel
  (4 x 65 numbers) hold the dot's x and y and the wall's x and door's y almost linearly because the
  walls are axis-aligned; small MLPs map them to a factored latent ``[z_agent, z_layout]``.
- :class:`CoordConvEncoder`: a small strided CNN with x / y coordinate channels, for comparison.

Factored encoders expose ``agent_dim`` and ``layout_dim`` (z = [z_agent, z_layout]); the others
have ``layout_dim = 0``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from tworooms_env.core import DOT_STD, N_CHANNELS
from tworooms_env.core import IMG_SIZE as IMG

# Reference per-channel statistics of [0, 1] frames (docs/reference.md#normalisation), used to standardise CNN inputs.
_CHANNEL_MEAN = (0.0026, 0.0989)
_CHANNEL_STD = (0.0369, 0.2986)
# A dot's row (or column) sum is ~ 255 * sqrt(2 pi) * DOT_STD ~ 831 at its peak: scale profiles to ~1.
_DOT_PROFILE_SCALE = 255.0 * math.sqrt(2.0 * math.pi) * DOT_STD


def to_float_frames(obs: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 2, 65, 65] -> float in [0, 1]; float input is taken as already in [0, 1]."""
    if obs.dim() != 4 or obs.shape[1:] != (N_CHANNELS, IMG, IMG):
        raise ValueError(f"expected frames [N, 2, 65, 65], got {tuple(obs.shape)}")
    if obs.dtype == torch.uint8:
        return obs.float() / 255.0
    if not obs.is_floating_point():
        raise TypeError(f"frames must be uint8 or float, got {obs.dtype}")
    return obs.float()


def mlp(d_in: int, hidden: int, d_out: int, depth: int = 2, act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` then a linear output."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), act()]
        d = hidden
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class ProfileEncoder(nn.Module):
    """Axis-projection ("profile") encoder with a factored latent z = [z_agent, z_layout].

    z_agent = MLP(row and column profiles of the dot channel): where the dot is.
    z_layout = MLP(row and column profiles of the wall channel): where the wall and door are. It is
    static within an episode, so a predictor can copy it unchanged ("walls do not move").
    Cost: two reductions over the image and two small MLPs per frame.
    """

    def __init__(self, agent_dim: int = 16, layout_dim: int = 16, hidden: int = 256, depth: int = 2,
                 layout_encoder: str = "mlp"):
        super().__init__()
        if agent_dim < 1 or layout_dim < 0:
            raise ValueError(f"need agent_dim >= 1 and layout_dim >= 0, got {agent_dim}, {layout_dim}")
        if layout_encoder not in ("mlp", "raw"):
            raise ValueError(f"layout_encoder must be 'mlp' or 'raw', got {layout_encoder!r}")
        if layout_encoder == "raw" and layout_dim != 2 * IMG:
            raise ValueError(f"layout_encoder='raw' passes the wall profiles through: layout_dim must be "
                             f"{2 * IMG}, got {layout_dim}")
        self.agent_dim, self.layout_dim = agent_dim, layout_dim
        self.latent_dim = agent_dim + layout_dim
        self.agent_net = mlp(2 * IMG, hidden, agent_dim, depth)
        # "raw": z_layout is the wall profiles themselves (wall x and door y linearly readable to the
        # pixel); the predictor's first layer is then the learned layout encoder.
        self.layout_learned = layout_encoder == "mlp" and layout_dim > 0
        self.layout_net = mlp(2 * IMG, hidden, layout_dim, depth) if self.layout_learned else (
            nn.Identity() if layout_dim else None)

    @staticmethod
    def raw_profiles(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row sums, column sums) of each channel in pixel-value units (0..255 per pixel):
        float [N, 2, 65] each; rows are a function of y, columns of x.

        uint8 frames are summed exactly in integers without a float copy of the images (that copy
        and the reduction are this encoder's whole cost); float frames are taken in [0, 1].
        """
        if obs.dim() != 4 or obs.shape[1:] != (N_CHANNELS, IMG, IMG):
            raise ValueError(f"expected frames [N, 2, 65, 65], got {tuple(obs.shape)}")
        if obs.dtype == torch.uint8 and obs.device.type == "cpu":
            x = obs.numpy()  # numpy's integer reductions over uint8 are ~5x faster than torch's on CPU
            rows = torch.from_numpy(x.sum(axis=3, dtype=np.int32))
            cols = torch.from_numpy(x.sum(axis=2, dtype=np.int32))
        elif obs.dtype == torch.uint8:
            rows, cols = obs.sum(dim=3, dtype=torch.int32), obs.sum(dim=2, dtype=torch.int32)
        else:
            x = to_float_frames(obs) * 255.0
            rows, cols = x.sum(dim=3), x.sum(dim=2)
        return rows.float(), cols.float()

    @staticmethod
    def features(rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(dot [..., 130], wall [..., 130]) MLP inputs of order 1 from raw profiles [..., 2, 65]."""
        dot = torch.cat([rows[..., 0, :], cols[..., 0, :]], dim=-1) / _DOT_PROFILE_SCALE
        # Wall rows hold 2 (border) or 5 (wall too) lit pixels; columns hold ~0, ~56 or 65.
        wall = torch.cat([rows[..., 1, :] / (255.0 * 5), cols[..., 1, :] / (255.0 * IMG)], dim=-1)
        return dot, wall

    def encode_profiles(self, rows: torch.Tensor, cols: torch.Tensor, static_layout: bool = False) -> torch.Tensor:
        """Latents [..., D] from raw profiles (``raw_profiles``) [..., 2, 65] each.

        ``static_layout``: rows/cols are windows [B, T, 2, 65] of one layout each; z_layout is
        computed from frame 0 and repeated over T (the walls do not move: 1/T of the cost).
        """
        dot, wall = self.features(rows, cols)
        z_agent = self.agent_net(dot)
        if self.layout_net is None:
            return z_agent
        if static_layout:
            z_layout = self.layout_net(wall[:, :1]).expand(-1, wall.shape[1], -1)
        else:
            z_layout = self.layout_net(wall)
        return torch.cat([z_agent, z_layout], dim=-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encode_profiles(*self.raw_profiles(obs))


class PixelEncoder(nn.Module):
    """A learned convolutional encoder over the whole frame, with a learned static/moving split.

    Both channels enter the same network: nothing in it knows which channel holds the walls, that
    walls are axis-aligned or what the dot looks like. Layers (65 x 65 input, ``width`` = c)::

        Conv 4x4 stride 4 ("patchify" stem), 2 -> c, ReLU   16 x 16  (pixels 0..63; row/column 64
                                                                     lie outside the border)
        Conv 3x3 stride 2, c -> c, ReLU                      8 x 8
        Conv 3x3, c -> c, ReLU                               8 x 8   -> flatten (64 c)
        agent head  MLP(64 c, hidden, agent_dim)
        layout head MLP(64 c, hidden, layout_dim)            (only if layout_dim > 0)

    The two heads read the same features. z = [z_agent, z_layout]; what makes z_layout the static
    part is learned, not wired: the world model copies it through its predictor and asks it to stay
    constant within a window and to vary across windows (``WorldModel.energy``).

    CPU cost decides the stem: the size of the first feature map dominates the step (element-wise
    activations and the convolution's backward pass over it). ``benchmarks/bench_pixel_encoder.py``
    times this patch stem against a 2 x 2 pool + stride-1 conv (GELU or ReLU); the figures are in
    ``docs/experiments/world-model-pixel.md``.
    """

    def __init__(self, agent_dim: int = 16, layout_dim: int = 16, width: int = 32, hidden: int = 256):
        super().__init__()
        if agent_dim < 1 or layout_dim < 0 or width < 1:
            raise ValueError(f"need agent_dim >= 1, layout_dim >= 0 and width >= 1, got {agent_dim}, {layout_dim}, {width}")
        self.agent_dim, self.layout_dim = agent_dim, layout_dim
        self.latent_dim = agent_dim + layout_dim
        self.layout_learned = layout_dim > 0
        c = width
        self.trunk = nn.Sequential(
            nn.Conv2d(N_CHANNELS, c, 4, stride=4), nn.ReLU(inplace=True),  # 65 -> 16
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU(inplace=True),  # 8
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),  # 8
            nn.Flatten(),
        )
        feat = c * 8 * 8
        self.agent_head = mlp(feat, hidden, agent_dim, depth=1)
        self.layout_head = mlp(feat, hidden, layout_dim, depth=1) if layout_dim else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.trunk(_pixels(obs).contiguous(memory_format=torch.channels_last))
        z_agent = self.agent_head(h)
        if self.layout_head is None:
            return z_agent
        return torch.cat([z_agent, self.layout_head(h)], dim=-1)


def _pixels(obs: torch.Tensor) -> torch.Tensor:
    """Frames in [0, 1], converted straight to bf16 under CPU/CUDA bf16 autocast (half the copy)."""
    if obs.dtype == torch.uint8 and torch.is_autocast_enabled(obs.device.type) and \
            torch.get_autocast_dtype(obs.device.type) == torch.bfloat16:
        to_float_frames(obs[:0])  # shape checks
        return obs.to(torch.bfloat16).mul_(1.0 / 255.0)
    return to_float_frames(obs)


class CoordConvEncoder(nn.Module):
    """Small strided CNN with two coordinate channels (CoordConv); not factored.

    4 conv layers (stride 2 except the first), GELU, then a linear head to ``latent_dim``.
    """

    def __init__(self, latent_dim: int = 32, width: int = 32):
        super().__init__()
        self.agent_dim, self.layout_dim, self.latent_dim = latent_dim, 0, latent_dim
        c = width
        self.net = nn.Sequential(
            nn.Conv2d(N_CHANNELS + 2, c, 3, stride=1, padding=1), nn.GELU(),  # 65
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU(),  # 33
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU(),  # 17
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU(),  # 9
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * 9 * 9, 256), nn.GELU(), nn.Linear(256, latent_dim))
        ramp = torch.linspace(-1.0, 1.0, IMG)
        coords = torch.stack([ramp[None, :].expand(IMG, IMG), ramp[:, None].expand(IMG, IMG)])
        self.register_buffer("coords", coords, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = _standardise(to_float_frames(obs))
        x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1)
        return self.head(self.net(x))


def _standardise(x: torch.Tensor) -> torch.Tensor:
    mean = x.new_tensor(_CHANNEL_MEAN)[None, :, None, None]
    std = x.new_tensor(_CHANNEL_STD)[None, :, None, None]
    return (x - mean) / std


class _ResidualBlock(nn.Module):
    """The residual block of docs/reference.md#encoder: y = ReLU(x + Conv(ReLU(Conv(x))))."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class ImpalaEncoder(nn.Module):
    """The reference IMPALA CNN (docs/reference.md#encoder): 3 stacks (conv, max-pool, 2 residual blocks), linear, LN.

    With the default sizes (16, 32, 32) and latent 512 it has 1,426,096 parameters.
    """

    def __init__(self, latent_dim: int = 512, stack_sizes: tuple[int, ...] = (16, 32, 32)):
        super().__init__()
        self.agent_dim, self.layout_dim, self.latent_dim = latent_dim, 0, latent_dim
        layers: list[nn.Module] = []
        c_in, size = N_CHANNELS, IMG
        for c in stack_sizes:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1),
                nn.MaxPool2d(3, stride=2, padding=1),
                _ResidualBlock(c),
                _ResidualBlock(c),
            ]
            c_in, size = c, (size + 1) // 2
        self.stacks = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * size * size, latent_dim)
        self.norm = nn.LayerNorm(latent_dim)  # the reference GRU shares this LayerNorm

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.stacks(_standardise(to_float_frames(obs)))
        return self.norm(self.head(torch.relu(x).flatten(1)))


ENCODERS = {"pixel": PixelEncoder, "profile": ProfileEncoder, "coordconv": CoordConvEncoder, "impala": ImpalaEncoder}


def build_encoder(name: str, latent_dim: int, layout_dim: int = 0, hidden: int = 256,
                  layout_encoder: str = "mlp", width: int = 32) -> nn.Module:
    """An encoder by name; ``latent_dim`` is the total size D (agent + layout for the factored ones)."""
    if name == "pixel":
        if not 0 <= layout_dim < latent_dim:
            raise ValueError(f"pixel encoder needs 0 <= layout_dim < latent_dim, got {layout_dim}, {latent_dim}")
        return PixelEncoder(latent_dim - layout_dim, layout_dim, width, hidden)
    if name == "profile":
        if not 0 <= layout_dim < latent_dim:
            raise ValueError(f"profile encoder needs 0 <= layout_dim < latent_dim, got {layout_dim}, {latent_dim}")
        return ProfileEncoder(latent_dim - layout_dim, layout_dim, hidden, layout_encoder=layout_encoder)
    if layout_dim:
        raise ValueError(f"encoder {name!r} is not factored: set layout_dim=0 (got {layout_dim})")
    if name == "coordconv":
        return CoordConvEncoder(latent_dim)
    if name == "impala":
        return ImpalaEncoder(latent_dim)
    raise ValueError(f"unknown encoder {name!r}; expected one of {sorted(ENCODERS)}")
