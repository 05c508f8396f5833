"""Video JEPA for Moving MNIST: ResNet-5 encoder, ResUNet predictor, K-step rollout loss
(docs/reference.md#video-jepa-on-moving-mnist).

Tensors are time-second: frames x [B, T, 1, H, W] float in [0, 1]; feature maps s [B, T, C, h, w].
The reference runs every layer at 64 x 64 (docs/reference.md#model); ``downsample`` 2 or 4 puts the
same layers at 32 x 32 or 16 x 16, which is what makes training fit a CPU (the detection grid is only 8 x 8).

    model = VideoJEPA(VideoModelConfig())
    losses = model.losses(x, det_target)     # dict: loss (to backpropagate), pred, std, cov, det, recon
    u = model.unroll(model.encode(x), steps)  # u[k-1] holds k-step rollouts (eq. 9-11)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from jepa_agent.regularizers import CovarianceLoss, Projector, VarianceLoss


@dataclass
class VideoModelConfig:
    """Sizes and coefficients of the video JEPA (defaults: the reference's default.yaml)."""

    in_channels: int = 1
    enc_hidden: int = 32  # henc
    dim: int = 16  # dstc: channels of the representation
    downsample: int = 1  # 1 = the reference (64 x 64 maps); 2, 4 or 8 = CPU-efficient equivalents
    pred_hidden: int = 32  # hpre
    pred_levels: int = 3  # ResUNet resolutions below the stem (3 at 64 x 64 as in the reference)
    context: int = 2  # v: frames the predictor sees
    steps: int = 4  # K: autoregressive rollout steps in the loss
    projector: str = "16-64-64"
    std_coeff: float = 10.0
    cov_coeff: float = 100.0
    pred_space: str = "projection"  # where eq. 11 compares rollouts and targets: "projection" (the
    # reference) or "representation" (the encoder's output, which the detection head reads)
    pred_residual: bool = False  # predict the change from the last context frame (u_j+v = u_j+v-1 + Pred)
    # instead of the frame itself (the reference); at 8 x 8 a digit moves under a cell per frame
    target_grad: bool = True  # eq. 11's targets pass gradients to the encoder (the reference); False
    # detaches them, so the encoder learns from the rollouts' inputs and the regulariser only
    grid: int = 8  # detection map size


class ResBlock(nn.Module):
    """Conv3x3-BN-ReLU-Conv3x3-BN plus a (1x1 conv + BN when the shape changes) shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )  # fmt: skip
        self.shortcut = (
            nn.Identity()
            if c_in == c_out and stride == 1
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet5(nn.Module):
    """Per-frame encoder: stem conv + 3 residual blocks (docs/reference.md#model); ``downsample`` in (1, 2, 4, 8)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, downsample: int = 1):
        super().__init__()
        strides = {1: (1, 1, 1), 2: (2, 1, 1), 4: (2, 1, 2), 8: (2, 2, 2)}  # stem, block 1, block 2
        if downsample not in strides:
            raise ValueError(f"downsample must be 1, 2, 4 or 8, got {downsample}")
        s0, s1, s2 = strides[downsample]
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, s0, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            ResBlock(hidden, hidden, s1), ResBlock(hidden, 2 * hidden, s2), ResBlock(2 * hidden, out_channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResUNet(nn.Module):
    """U-Net of residual blocks: ``levels`` stride-2 encoder stages + bottleneck, transposed-conv decoder
    with skip connections, 1x1 head (docs/reference.md#model with levels = 3: 32-64-128 | 256)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, levels: int = 3):
        super().__init__()
        widths = [hidden * 2**i for i in range(levels + 1)]  # the last one is the bottleneck
        self.stem = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, 1, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(True))
        self.down = nn.ModuleList([ResBlock(hidden, hidden)])
        self.down.extend(ResBlock(widths[i - 1], widths[i], 2) for i in range(1, levels + 1))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i], widths[i - 1], 2, 2) for i in range(levels, 0, -1))
        self.merge = nn.ModuleList(ResBlock(2 * widths[i - 1], widths[i - 1]) for i in range(levels, 0, -1))
        self.head = nn.Conv2d(hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = self.stem(x)
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = skips.pop()  # bottleneck
        for up, merge in zip(self.up, self.merge):
            skip = skips.pop()
            h = up(h)
            if h.shape[-2:] != skip.shape[-2:]:  # odd sizes: resize as the reference does
                h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = merge(torch.cat([h, skip], dim=1))
        return self.head(h)


class VideoJEPA(nn.Module):
    """Encoder, context-v predictor, projector, and two probes trained on detached features."""

    def __init__(self, cfg: VideoModelConfig):
        super().__init__()
        if cfg.context < 1 or cfg.steps < 1:
            raise ValueError(f"context and steps must be >= 1, got {cfg.context=}, {cfg.steps=}")
        if cfg.pred_space not in ("projection", "representation"):
            raise ValueError(f"pred_space must be 'projection' or 'representation', got {cfg.pred_space!r}")
        if int(cfg.projector.split("-")[0]) != cfg.dim:
            raise ValueError(f"projector {cfg.projector!r} must start with dim={cfg.dim}")
        self.cfg = cfg
        self.encoder = ResNet5(cfg.in_channels, cfg.enc_hidden, cfg.dim, cfg.downsample)
        self.predictor = ResUNet(cfg.context * cfg.dim, cfg.pred_hidden, cfg.dim, cfg.pred_levels)
        self.projector = Projector(cfg.projector, last_bias=False)
        self.variance, self.covariance = VarianceLoss(), CovarianceLoss()
        # probes: pixel decoder (sub-pixel upsampling back to the frame) and detection head on a grid
        d = cfg.downsample
        self.decoder = nn.Sequential(
            nn.Conv2d(cfg.dim, 32, 3, 1, 1), nn.ReLU(True), nn.Conv2d(32, cfg.in_channels * d * d, 3, 1, 1), nn.PixelShuffle(d)
        )
        self.detector = nn.Sequential(
            nn.AdaptiveAvgPool2d(cfg.grid), nn.Conv2d(cfg.dim, 32, 3, 1, 1), nn.ReLU(True), nn.Conv2d(32, 1, 3, 1, 1)
        )
        for probe in (self.decoder, self.detector):
            for m in probe.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)

    def _frames(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Apply a per-frame network to [B, T, C, H, W] with time folded into the batch."""
        y = net(x.flatten(0, 1))
        return y.unflatten(0, x.shape[:2])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Frames [B, T, C, H, W] -> representations s [B, T, dim, h, w]."""
        if x.dim() != 5 or x.shape[2] != self.cfg.in_channels:
            raise ValueError(f"x must be [B, T, {self.cfg.in_channels}, H, W], got {tuple(x.shape)}")
        return self._frames(self.encoder, x)

    def predict(self, u: torch.Tensor) -> torch.Tensor:
        """One predictor pass: frames j..j+v-1 of u [B, T, C, h, w] -> frame j+v, for all j: [B, T-v, C, h, w]."""
        v, (b, t) = self.cfg.context, u.shape[:2]
        windows = torch.cat([u[:, i : t - v + i] for i in range(v)], dim=2)  # [B, T-v, v*C, h, w]
        out = self._frames(self.predictor, windows)
        return out + u[:, v - 1 : t - 1] if self.cfg.pred_residual else out

    def unroll(self, s: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """Eq. 9-11, all frames in parallel: u^(0) = s, u^(k) = [s_<v, Pred(u^(k-1))].

        In u^(k), frame j (j >= v) is a min(k, j-v+1)-step autoregressive rollout from real frames."""
        v, u, out = self.cfg.context, s, []
        for k in range(steps):
            # frames v .. v+k-1 of u^(k) already hold their deepest rollouts (the same function of the
            # same inputs as in u^(k+1)): keep them and predict only the frames that change
            keep = min(k, u.shape[1] - v)
            u = torch.cat([u[:, : v + keep], self.predict(u[:, keep:])], dim=1)
            out.append(u)
        return out

    def project(self, s: torch.Tensor) -> torch.Tensor:
        """Projector on every spatial feature vector: [B, T, C, h, w] -> [B, T, h, w, P]."""
        return self.projector(s.movedim(2, -1))

    def detect(self, s: torch.Tensor) -> torch.Tensor:
        """Detection logits [B, T, grid, grid] from representations [B, T, C, h, w]."""
        return self._frames(self.detector, s).squeeze(2)

    def decode(self, s: torch.Tensor) -> torch.Tensor:
        return self._frames(self.decoder, s)

    def forward(self, x: torch.Tensor, det_target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training losses (``losses``): the call DistributedDataParallel wraps."""
        return self.losses(x, det_target)

    def losses(self, x: torch.Tensor, det_target: torch.Tensor) -> dict[str, torch.Tensor]:
        """All training losses for frames x [B, T, C, H, W] and detection maps [B, T, grid, grid]."""
        cfg, v = self.cfg, self.cfg.context
        if x.shape[1] <= v:
            raise ValueError(f"need more than context={v} frames, got {x.shape[1]}")
        s = self.encode(x)
        rollouts = self.unroll(s, cfg.steps)
        t, predicted = s.shape[1], torch.stack([u[:, v:] for u in rollouts], 1)  # [B, K, T-v, C, h, w]
        # eq. 11: (1/K) sum_k mean over predicted frames only (the reference also averages in the
        # v context frames, which contribute 0, docs/reference.md#model); no stop-gradient, as the reference
        if cfg.pred_space == "projection":
            # one projector call for targets and every rollout (shared BatchNorm statistics)
            z = self.project(torch.cat([s, predicted.flatten(1, 2)], dim=1))
            z_s, z_u = z[:, :t], z[:, t:].unflatten(1, (cfg.steps, t - v))
            z_t = z_s if cfg.target_grad else z_s.detach()
            pred = (z_u - z_t[:, None, v:]).float().pow(2).mean()
        else:
            z_s = self.project(s)
            target = s if cfg.target_grad else s.detach()
            pred = (predicted - target[:, None, v:]).float().pow(2).mean()
        std, cov = self.variance(z_s), self.covariance(z_s)
        feats = s.detach()
        det = F.binary_cross_entropy_with_logits(self.detect(feats).float(), det_target.float())
        recon = F.mse_loss(self.decode(feats).float(), x.float())
        loss = pred + cfg.std_coeff * std + cfg.cov_coeff * cov + det + recon
        return {"loss": loss, "pred": pred, "std": std, "cov": cov, "det": det, "recon": recon}


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Binary average precision, sum_n (R_n - R_{n-1}) P_n over distinct score thresholds
    (the definition of scikit-learn's ``average_precision_score``). NaN when there is no positive."""
    scores, labels = scores.flatten().double(), labels.flatten().bool()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have as many elements, got {scores.numel()} and {labels.numel()}")
    order = torch.argsort(scores, descending=True, stable=True)
    scores, labels = scores[order], labels[order].double()
    tps, fps = torch.cumsum(labels, 0), torch.cumsum(1 - labels, 0)
    # keep the last index of each group of tied scores: ties count as one threshold
    last = torch.ones_like(scores, dtype=torch.bool)
    last[:-1] = scores[1:] != scores[:-1]
    tps, fps = tps[last], fps[last]
    if tps.numel() == 0 or tps[-1] == 0:
        return float("nan")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    recall_prev = torch.cat([recall.new_zeros(1), recall[:-1]])
    return float(((recall - recall_prev) * precision).sum())
