"""The action-conditioned JEPA world model: encoder f, action encoder q, predictor g, energy.

Usage::

    model = load_world_model()                         # the shipped CPU checkpoint
    z = model.encode(obs)                              # uint8 [..., 2, 65, 65] -> [..., D]
    z_seq = model.unroll(z[:, 0], actions)             # [B, H, 2] px -> [B, H // k + 1, D]
    xy = model.probe(z_seq)                            # decoded positions, px

The energy (paper eq. 9-13, docs/reference.md#energy) of a window of frames x_0..x_{T-1} with actions a_0..a_{T-2}:
    z_t = f(x_t);  z^_0 = z_0,  z^_{k+1} = g(z^_k, q(a_k))                      (eq. 9-10)
    L_pred = (1/K) sum_k mean_{b,d} (z^_k - z_k)^2                               (eq. 11)
    L = pred * L_pred + onestep * L_1step + std * L_std + cov * L_cov + sim * L_sim + idm * L_idm
With a factored latent z = [z_agent, z_layout] the predictor copies z_layout, the prediction
losses, time similarity and inverse dynamics act on z_agent, and z_layout gets its own variance /
covariance terms. Probes (position, layout) learn on detached features and never shape z.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from jepa_agent.encoders import build_encoder, mlp
from jepa_agent.predictors import ActionEncoder, build_predictor
from jepa_agent.regularizers import (
    CovarianceLoss,
    InverseDynamicsLoss,
    TemporalSimilarityLoss,
    VarianceLoss,
)
from jepa_agent.validation import load_checkpoint_file, state_checksum, verify_state

FORMAT = "tworooms-jepa/world-model"
FORMAT_VERSION = 1
# The shipped checkpoints: the pixel model of the cpu preset (learned encoder, random tier: the default)
# and the profile model (hand-crafted position features, privileged; the default of version 0.1).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "world_model_cpu.pt"
PROFILE_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "world_model_profile.pt"
# The pixel recipe trained on the 10 layouts of split k10 only, with random shifts (shift_max=8, 30 epochs):
# for trying `--layouts heldout:k10` in seconds (docs/experiments/generalization.md).
K10_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "world_model_k10_shift.pt"
_POS_CENTER, _POS_SCALE = 32.0, 16.0  # probe targets are standardised inside the probe


@dataclass
class ModelConfig:
    """Architecture and energy coefficients (defaults: the CPU recipe)."""

    encoder: Literal["pixel", "profile", "coordconv", "impala"] = "profile"  # pixel (learned CNN) | profile (hand-crafted position features) | coordconv | impala
    latent_dim: int = 32  # D = agent + layout dims
    layout_dim: int = 16  # static part copied by the predictor (pixel and profile encoders; 0 = none)
    layout_encoder: Literal["mlp", "raw"] = "mlp"  # profile encoder: mlp (learned) | raw (the 130 wall profiles: layout_dim = 130)
    encoder_hidden: int = 128  # hidden width of the encoder's MLP head
    encoder_width: int = 32  # pixel encoder: channels of its last convolutions
    predictor: Literal["mlp", "gru"] = "mlp"  # predictor g: residual MLP or GRU cell
    predictor_hidden: int = 256  # hidden width of the predictor
    predictor_depth: int = 2  # hidden layers of the MLP predictor
    action_encoder: Literal["identity", "mlp"] = "identity"  # action encoder q: the raw actions or an MLP
    action_chunk: int = 5  # actions consumed per predictor call (plans use 10-step segments: 2 calls each)
    rollout_steps: int = 40  # K of eq. 9-11 in environment steps (8 predictor calls); plans look 90 ahead
    tbptt: int = 0  # detach the rollout every n predictor calls (0: full backpropagation)
    detach_targets: bool = False  # the reference keeps gradients through the targets
    pred_coeff: float = 4.0  # weight of the multi-step prediction loss L_pred (eq. 11)
    onestep_coeff: float = 4.0  # one-step (one-call) prediction from every frame
    onestep_stride: int = 1  # one-step starts every n-th frame from a random offset (1: every frame)
    std_coeff: float = 16.0  # weight of the variance term on z_agent
    cov_coeff: float = 8.0  # weight of the covariance term on z_agent
    sim_coeff: float = 12.0  # weight of the time-similarity term on z_agent
    idm_coeff: float = 1.0  # weight of the inverse-dynamics term on z_agent
    layout_std_coeff: float = 16.0  # weight of the variance term on z_layout
    layout_cov_coeff: float = 8.0  # weight of the covariance term on z_layout
    layout_sim_coeff: float = 12.0  # pixel encoder: z_layout of every frame close to that of frame 0
    std_within_window: bool = False  # variance of z_agent around each window's mean (it must move within a window)
    probe_hidden: int = 256  # hidden width of the position and layout probes
    idm_hidden: int = 128  # inverse-dynamics MLP width (the reference: 256)

    def __post_init__(self) -> None:
        for name in ("latent_dim", "encoder_hidden", "encoder_width", "predictor_hidden", "predictor_depth",
                     "action_chunk", "rollout_steps", "probe_hidden", "idm_hidden", "onestep_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rollout_steps % self.action_chunk:
            raise ValueError(f"rollout_steps ({self.rollout_steps}) must be a multiple of action_chunk "
                             f"({self.action_chunk})")
        for name in ("pred_coeff", "onestep_coeff", "std_coeff", "cov_coeff", "sim_coeff", "idm_coeff",
                     "layout_std_coeff", "layout_cov_coeff", "layout_sim_coeff"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; expected some of {sorted(known)}")
        return cls(**d)


class Probe(nn.Module):
    """MLP head z [..., D] -> 2 numbers in pixels (positions, or (wall_x, door_y))."""

    def __init__(self, dim: int, hidden: int = 256):
        super().__init__()
        self.net = mlp(dim, hidden, 2, depth=1, act=nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.float()) * _POS_SCALE + _POS_CENTER


class WorldModel(nn.Module):
    """Encoder + action encoder + predictor + regularisers + probes, built from a ModelConfig."""

    def __init__(self, config: ModelConfig | dict | None = None):
        super().__init__()
        cfg = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config or {})
        self.config = cfg
        self.encoder = build_encoder(cfg.encoder, cfg.latent_dim, cfg.layout_dim, cfg.encoder_hidden,
                                     cfg.layout_encoder, cfg.encoder_width)
        self.latent_dim = cfg.latent_dim
        self.layout_dim = self.encoder.layout_dim
        self.agent_dim = cfg.latent_dim - self.layout_dim
        self.action_chunk = cfg.action_chunk
        self.action_encoder = ActionEncoder(cfg.action_chunk, cfg.action_encoder)
        norm = self.encoder.norm if cfg.predictor == "gru" and cfg.encoder == "impala" else None
        self.predictor = build_predictor(cfg.predictor, cfg.latent_dim, self.action_encoder.out_dim,
                                         cfg.predictor_hidden, cfg.predictor_depth, self.layout_dim, norm)
        self.variance, self.covariance = VarianceLoss(), CovarianceLoss()
        self.time_similarity = TemporalSimilarityLoss()
        self.idm = InverseDynamicsLoss(self.agent_dim, hidden=cfg.idm_hidden)
        self.probe = Probe(cfg.latent_dim, cfg.probe_hidden)  # positions (docs/reference.md#position-probe)
        self.layout_probe = Probe(cfg.latent_dim, cfg.probe_hidden)  # (wall_x, door_y): diagnostic

    # ------------------------------------------------------------------ planning interface
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Frames [..., 2, 65, 65] (uint8 or float in [0, 1]) -> latents [..., D], one call."""
        if obs.dim() < 4:
            raise ValueError(f"expected frames [..., 2, 65, 65], got {tuple(obs.shape)}")
        lead = obs.shape[:-3]
        z = self.encoder(obs.reshape(-1, *obs.shape[-3:]))
        return z.reshape(*lead, z.shape[-1])

    def step(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One predictor call: z [B, D], actions [B, k, 2] (pixels) -> z after k steps."""
        return self.predictor(z, self.action_encoder(actions))

    def unroll(self, z0: torch.Tensor, actions: torch.Tensor, tbptt: int = 0) -> torch.Tensor:
        """z0 [B, D], actions [B, H, 2] px -> [B, H // k + 1, D] with index 0 equal to z0."""
        if z0.dim() != 2 or actions.dim() != 3 or actions.shape[0] != z0.shape[0] or actions.shape[2] != 2:
            raise ValueError(f"expected z0 [B, D] and actions [B, H, 2], got {tuple(z0.shape)}, "
                             f"{tuple(actions.shape)}")
        k = self.action_chunk
        if actions.shape[1] % k:
            raise ValueError(f"horizon {actions.shape[1]} must be a multiple of action_chunk {k}")
        chunks = actions.reshape(actions.shape[0], -1, k, 2).to(z0.dtype)
        u = self.action_encoder(chunks)  # all chunks encoded in one call
        out = [z0]
        z = z0
        for i in range(chunks.shape[1]):  # sequential by nature; vectorised over the batch
            if tbptt and i and i % tbptt == 0:
                z = z.detach()
            z = self.predictor(z, u[:, i])
            out.append(z)
        return torch.stack(out, dim=1)

    def planning_distance(self, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        """L2 distance over the agent part of the latent (the layout part is the same for both)."""
        a = self.agent_dim
        return (z[..., :a] - z_goal[..., :a]).norm(dim=-1)

    # ----------------------------------------------------------------------------- energy
    def forward(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        positions: torch.Tensor | None = None,
        layout: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Energy of a batch of windows: obs [B, T, 2, 65, 65], actions [B, T-1, 2] px.

        Strided windows: obs may hold only every k-th frame (k = ``action_chunk``), [B, T', 2, 65,
        65] with actions [B, (T'-1) k, 2]; the losses then use exactly the frames given (a pixel
        encoder encodes k times fewer frames) and ``positions`` are those of the given frames.

        ``obs`` may instead be the raw profiles (rows, cols) [B, T, 2, 65] of the frames for a
        profile encoder (exactly what it would compute from the frames; the training data can
        produce them without rendering).

        Optional positions [B, T, 2] and layout [B, 2] (wall_x, door_y) train the probes on detached
        features. Returns (total loss, per-term breakdown) with every term a scalar tensor.
        """
        profile_encoder = hasattr(self.encoder, "encode_profiles")
        if isinstance(obs, (tuple, list)):  # precomputed raw profiles (rows, cols) [B, T, 2, 65]
            if not profile_encoder:
                raise TypeError(f"profiles given but the {self.config.encoder!r} encoder needs frames")
            rows, cols = obs[0].float(), obs[1].float()
        elif obs.dim() != 5:
            raise ValueError(f"expected obs [B, T, 2, 65, 65], got {tuple(obs.shape)}")
        elif profile_encoder:
            rows, cols = self.encoder.raw_profiles(obs.reshape(-1, *obs.shape[2:]))
            rows, cols = rows.reshape(*obs.shape[:2], 2, -1), cols.reshape(*obs.shape[:2], 2, -1)
        if profile_encoder:  # every frame in one call; the static layout from each window's frame 0
            z = self.encoder.encode_profiles(rows, cols, static_layout=True)
        else:
            z = self.encode(obs)  # [B, T, D], every frame in one call
        b, t_len = z.shape[:2]
        strided = self.action_chunk > 1 and actions.shape[1] == (t_len - 1) * self.action_chunk
        if actions.shape != (b, t_len - 1, 2) and not strided:
            raise ValueError(f"expected actions [B, T-1, 2] = [{b}, {t_len - 1}, 2] (or [B, (T-1) k, 2] for "
                             f"windows of every k = {self.action_chunk}-th frame), got {tuple(actions.shape)}")
        return self.energy(z, actions.float(), positions, layout, strided=strided)

    def energy(self, z, actions, positions=None, layout=None, strided: bool = False):
        """The energy of encoded windows z [B, T, D]; ``strided``: z holds every k-th frame only."""
        cfg, k, a_dim = self.config, self.action_chunk, self.agent_dim
        b, t_len, _ = z.shape
        z_agent = z[..., :a_dim]
        target = z.detach() if cfg.detach_targets else z
        terms: dict[str, torch.Tensor] = {}
        s = 1 if strided else k  # frames between a latent and the one a predictor call reaches

        n_calls = min(cfg.rollout_steps // k, (t_len - 1) // s)
        if n_calls < 1:
            raise ValueError(f"windows of {t_len} frames are too short for action_chunk {k}")
        z_hat = self.unroll(z[:, 0], actions[:, : n_calls * k], tbptt=cfg.tbptt)[:, 1:]  # eq. 9-10
        terms["pred"] = (z_hat[..., :a_dim] - target[:, s : n_calls * s + 1 : s, :a_dim]).pow(2).mean()  # eq. 11
        if cfg.onestep_coeff > 0:  # one predictor call from every (n-th) frame, all in parallel
            if strided:  # the chunk after each given frame
                a_win, src, dst = actions.reshape(b, t_len - 1, k, 2), z[:, :-1], target[:, 1:]
            else:
                a_win = actions.unfold(1, k, 1).transpose(-1, -2)  # [B, T-k, k, 2]: the chunk after each frame
                src, dst = z[:, : t_len - k], target[:, k:]
            if cfg.onestep_stride > 1:  # an unbiased subsample of the same term: a random offset per batch
                offset = int(torch.randint(cfg.onestep_stride, (1,)))
                a_win, src, dst = (x[:, offset :: cfg.onestep_stride] for x in (a_win, src, dst))
            starts = src.shape[1]
            z1 = self.predictor(src.reshape(b * starts, -1), self.action_encoder(a_win.reshape(b * starts, k, 2)))
            terms["onestep"] = (z1[:, :a_dim] - dst[..., :a_dim].reshape(b * starts, -1)).pow(2).mean()
        # eq. 6 over B*T pooled samples; within windows, z_agent cannot meet it with what does not move
        # (with a learned static part, the pooled variance is met by encoding the layout in z_agent too)
        terms["std"] = self.variance(z_agent - z_agent.mean(dim=1, keepdim=True) if cfg.std_within_window else z_agent)
        terms["cov"] = self.covariance(z_agent)  # eq. 7
        terms["sim"] = self.time_similarity(z_agent)  # eq. 12
        if cfg.idm_coeff > 0:  # eq. 12; between strided frames: the chunk's mean action
            terms["idm"] = self.idm(z_agent, actions.reshape(b, t_len - 1, k, 2).mean(dim=2) if strided else actions)
        if getattr(self.encoder, "layout_learned", False):  # static within a window: one sample per window
            z_layout = z[:, 0, a_dim:]
            terms["layout_std"] = self.variance(z_layout)
            terms["layout_cov"] = self.covariance(z_layout)
            if cfg.encoder != "profile":  # encoded from every frame: learn that it does not move
                terms["layout_sim"] = (z[:, 1:, a_dim:] - z[:, :1, a_dim:]).float().pow(2).mean()
        coeff = {"pred": cfg.pred_coeff, "onestep": cfg.onestep_coeff, "std": cfg.std_coeff,
                 "cov": cfg.cov_coeff, "sim": cfg.sim_coeff, "idm": cfg.idm_coeff,
                 "layout_std": cfg.layout_std_coeff, "layout_cov": cfg.layout_cov_coeff,
                 "layout_sim": cfg.layout_sim_coeff}
        total = sum(coeff[name] * value for name, value in terms.items())
        terms["energy"] = total.detach()

        feats = z.detach()
        # docs/reference.md#position-probe: MSE in px^2 on detached features (every 4th frame)
        if positions is not None:
            p = 1 if strided else 4
            terms["probe"] = (self.probe(feats[:, ::p]) - positions[:, ::p].float()).pow(2).mean()
            total = total + terms["probe"]
        if layout is not None:
            terms["layout_probe"] = (self.layout_probe(feats[:, 0]) - layout.float()).pow(2).mean()
            total = total + terms["layout_probe"]
        return total, terms


# --------------------------------------------------------------------------------- checkpoints
def checkpoint_dict(model: WorldModel, config: dict | None = None, **extra) -> dict:
    """What a world-model checkpoint holds (loadable with ``torch.load(weights_only=True)``);
    ``checksum`` is the sha256 of the weights (``validation.state_checksum``), verified at load."""
    state = model.state_dict()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": asdict(model.config),
        "config": dict(config or {}),
        "model": state,
        "checksum": state_checksum(state),
        **extra,
    }


def check_checkpoint(ckpt: object, path: str | Path = "<checkpoint>") -> dict:
    """Raise ValueError naming the problem unless ``ckpt`` is a world-model checkpoint we can read."""
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise ValueError(f"{path} is not a world-model checkpoint (no 'format' key; expected {FORMAT!r})")
    if ckpt["format"] != FORMAT:
        raise ValueError(f"{path} holds format {ckpt['format']!r}, expected {FORMAT!r}")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {ckpt.get('format_version')!r}; this code reads "
                         f"version {FORMAT_VERSION}")
    for key in ("model_config", "model"):
        if key not in ckpt:
            raise ValueError(f"{path} lacks the {key!r} entry")
    verify_state(ckpt["model"], path, ckpt.get("checksum"))  # older checkpoints have no checksum
    return ckpt


def planner_defaults_path(checkpoint: str | Path) -> Path:
    """The file beside a checkpoint that holds the planner options calibrated for it (``X.planner.json``)."""
    return Path(checkpoint).with_suffix(".planner.json")


def read_planner_defaults(checkpoint: str | Path) -> tuple[str | None, dict]:
    """(planner name or None, ``PlannerConfig`` fields) calibrated for ``checkpoint``, from its
    ``.planner.json`` ({"planner": "grad", "arrive_radius": 1.0, ...}; (None, {}) without one). An
    unknown or invalid option is an error here, not at the first plan."""
    import json

    from jepa_agent.planner_config import PlannerConfig

    path = planner_defaults_path(checkpoint)
    if not path.exists():
        return None, {}
    values = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}  # "_comment" etc.
    name = values.pop("planner", None)
    PlannerConfig.from_dict(values)
    if name is not None:
        from jepa_agent.planners import make_planner

        make_planner(name, PlannerConfig.from_dict(values))  # an unknown name fails here
    return name, values


def load_world_model(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> WorldModel:
    """Load a world model (path=None: the shipped CPU checkpoint), in eval mode. ``model.planner_defaults``
    and ``model.default_planner`` hold the planner calibrated for it (``read_planner_defaults``), which
    ``JEPAAgent`` starts from."""
    path = Path(path) if path is not None else DEFAULT_CHECKPOINT
    ckpt = check_checkpoint(load_checkpoint_file(path, "world-model checkpoint", map_location), path)
    model = WorldModel(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.data_tier = ckpt.get("data_tier")  # what it was trained on (None in checkpoints of version 0.1)
    model.dataset = ckpt.get("dataset")
    model.elapsed_s = ckpt.get("elapsed_s")  # training wall-clock seconds
    model.default_planner, model.planner_defaults = read_planner_defaults(path)
    return model.to(map_location).eval()
