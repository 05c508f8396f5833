"""Shared parts of the offline goal-conditioned RL baselines (GCBC, GCIQL, HIQL, CRL).

- **Data**: a trajectory file of ``tworooms-collect`` (the same files the world model trains on),
  its "train" split by layout, with the dataset's name, tier (metadata key "tier", "random" when
  absent), size and sha256 recorded in every checkpoint. Batches are relabelled with
  :mod:`eval.baselines.relabel` and their frames rendered with ``core.render_frames`` in one call.
- **Features** (the same switch for every method): ``profile``, the privileged hand-crafted row and
  column sums of both channels of the rendered frame (260 numbers, ``ProfileEncoder.features``'s
  scaling, no parameters); ``pixels``, a small CNN learned end to end (2x2 average pool, then 3
  stride-2 convolutions). Each network owns its encoder; one call encodes observation and goal.
- **Losses** used by several methods: expectile regression, AWR weights, InfoNCE, Polyak averaging.
- **Checkpoints** without code execution: ``torch.save`` of a dict of tensors and JSON-able
  configs, read with ``torch.load(weights_only=True)``; :class:`OfflineAgent` wraps a loaded
  method in the evaluation's policy interface (``act``, ``act_batch``, ``predict``).
"""

from __future__ import annotations

import json
import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import functional_call
from torch import nn

from eval.baselines.relabel import GoalMixture, LayoutGroups, goal_rewards, sample_goals, sample_transitions
from training.interrupt import atomic_save
from tworooms_env import core
from tworooms_env.random_walk import Trajectories

FORMAT = "tworooms-jepa/offline-gcrl"
FORMAT_VERSION = 1
TIERS = ("random", "contact", "navigate")
FEATURES = ("profile", "pixels", "jepa")
OBS_SHAPE = (core.N_CHANNELS, core.IMG_SIZE, core.IMG_SIZE)
METHODS = {"gcbc": "eval.baselines.gcbc:GCBC", "gciql": "eval.baselines.gciql:GCIQL",
           "gcivl": "eval.baselines.gcivl:GCIVL",
           "hiql": "eval.baselines.hiql:HIQL", "crl": "eval.baselines.crl:CRL"}


# ------------------------------------------------------------------------------------ data
@dataclass
class OfflineData:
    traj: Trajectories
    info: dict[str, Any]  # name, path, tier, sha256, sizes: what a checkpoint records
    groups: LayoutGroups
    embeddings: np.ndarray | None = None  # "jepa" features: [N, L, D] float16 latents of every state


def load_dataset(path: str | Path, split: str = "train", max_trajectories: int | None = None) -> OfflineData:
    """A trajectory file's ``split`` ("train": the layouts the world model trains on; or "all"),
    optionally only its first ``max_trajectories`` trajectories (recorded as ``used_trajectories``)."""
    from tworooms_env.dataset import load_trajectories, sha256_file
    from training.data import split_rows, subset

    path = Path(path)
    traj, meta = load_trajectories(path)
    tier = meta.get("tier", "random")
    rows = split_rows(traj, meta, split)
    n_split = len(rows)
    if max_trajectories is not None:
        if max_trajectories < 1:
            raise ValueError(f"max_trajectories must be >= 1, got {max_trajectories}")
        rows = rows[:max_trajectories]
    part = subset(traj, rows)
    info = {"name": path.name, "path": str(path), "tier": tier, "sha256": sha256_file(path), "split": split,
            "num_trajectories": int(len(traj)), "split_trajectories": int(n_split), "used_trajectories": int(len(part)),
            "length": int(traj.positions.shape[1]), "generator_params": meta.get("generator_params"),
            "layout_split": (meta.get("layout_split") or {}).get("name"), "door_crossings": (meta.get("generator_params") or {}).get("door_crossings", True)}
    return OfflineData(part, info, LayoutGroups(part.wall_x, part.door_y))


@dataclass
class BatchSpec:
    """What a method samples: value goals (with reward and mask), actor goals, HIQL subgoals."""

    value: GoalMixture | None = None
    actor: GoalMixture | None = None
    gamma: float = 0.99
    subgoal_steps: int | None = None  # HIQL: s_{min(t + k, L - 1)} ("subgoals"); with actor goals also s_{min(t + k, t_g)} ("high_subgoals")
    success_radius: float | None = None  # None: success = same state index (OGBench)


def sample_batch(data: OfflineData, rng: np.random.Generator, batch_size: int, spec: BatchSpec,
                 features: str = "pixels") -> dict[str, np.ndarray]:
    """Relabelled transitions: frames uint8 [B, 2, 65, 65] (``obs``, ``next_obs``, goals), ``actions``
    float32 [B, 2] in env units (px / 2.45), ``rewards`` / ``masks`` float32 [B] for value goals.

    ``features="jepa"``: the states are the frozen JEPA encoder's latents float32 [B, D] of the stored
    frames (``data.embeddings``, :func:`embed_dataset`).
    ``features="profile"``: the states are the profile features float32 [B, 260] instead of frames,
    computed from the positions without rendering (``training.data.profiles_from_positions``: the
    same integers as the row and column sums of the rendered frames, so the same features that
    the agent computes from its observation frames; ~100x cheaper than rendering).
    """
    traj = data.traj
    n, length = traj.positions.shape[:2]
    i, t = sample_transitions(rng, n, length, batch_size)
    frames: dict[str, tuple[np.ndarray, np.ndarray]] = {"obs": (i, t), "next_obs": (i, t + 1)}
    out: dict[str, np.ndarray] = {"actions": (traj.actions[i, t] / core.MAX_STEP_NORM).astype(np.float32)}
    if spec.value is not None:
        gi, gt, _ = sample_goals(rng, i, t, n, length, spec.value, spec.gamma, data.groups)
        layout = np.stack([traj.wall_x, traj.door_y], axis=1)
        out["rewards"], out["masks"] = goal_rewards(i, t, gi, gt, traj.positions, layout, spec.success_radius)
        frames["value_goals"] = (gi, gt)
    if spec.actor is not None:
        ai, at, _ = sample_goals(rng, i, t, n, length, spec.actor, spec.gamma, data.groups)
        frames["actor_goals"] = (ai, at)
    if spec.subgoal_steps is not None:
        # low level: k steps ahead on the trajectory; high level: the same, but never past the actor's
        # goal when that goal lies ahead on the same trajectory (OGBench's HIQL targets): near the
        # goal, the high-level policy must point at the goal itself
        ahead = np.minimum(t + spec.subgoal_steps, length - 1)
        frames["subgoals"] = (i, ahead)
        if spec.actor is not None:
            same = (ai == i) & (at >= t)
            frames["high_subgoals"] = (i, np.where(same, np.minimum(ahead, at), ahead))
    ii = np.concatenate([v[0] for v in frames.values()])
    tt = np.concatenate([v[1] for v in frames.values()])
    if features == "profile":
        rendered = profile_features_from_positions(traj.positions[ii, tt], traj.wall_x[ii], traj.door_y[ii])
    elif features == "jepa":
        if data.embeddings is None:
            raise ValueError("jepa features need the dataset's latents: embed_dataset(data) first")
        rendered = data.embeddings[ii, tt].astype(np.float32)
    else:
        rendered = core.render_frames(traj.positions[ii, tt], traj.wall_x[ii], traj.door_y[ii])
    for k, chunk in zip(frames, np.split(rendered, len(frames))):
        out[k] = chunk
    return out


# -------------------------------------------------------------------------------- features
PROFILE_DIM = 4 * core.IMG_SIZE


def profile_features_from_positions(positions: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray) -> np.ndarray:
    """``ProfileFeatures`` of the frames ``core.render_frames`` would draw, float32 [N, 260], unrendered."""
    from jepa_agent.encoders import ProfileEncoder
    from training.data import profiles_from_positions

    rows, cols = profiles_from_positions(positions, wall_x, door_y)
    dot, wall = ProfileEncoder.features(torch.from_numpy(rows).float(), torch.from_numpy(cols).float())
    return torch.cat([dot, wall], dim=-1).numpy()


class ProfileFeatures(nn.Module):
    """Privileged hand-crafted features: row and column sums of the dot and wall channels [B, 260].

    No parameters. Already-computed features [B, 260] pass through (the trainer computes them once
    per batch instead of once per network).
    """

    learned = False

    def __init__(self, dim: int = PROFILE_DIM) -> None:
        super().__init__()
        self.dim = PROFILE_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[-1] == PROFILE_DIM:
            return x.float()
        from jepa_agent.encoders import ProfileEncoder  # read-only use of its feature definition

        dot, wall = ProfileEncoder.features(*ProfileEncoder.raw_profiles(x))
        return torch.cat([dot, wall], dim=-1).to(x.device)


class PixelCNN(nn.Module):
    """Learned pixel features: 2x2 average pool (65 -> 32), x/y coordinate maps, 3 stride-2 3x3
    convs (32 -> 16 -> 8 -> 4), linear to ``dim``, LayerNorm: cheap on a CPU."""

    learned = True

    def __init__(self, dim: int = 128, width: int = 32) -> None:
        super().__init__()
        self.dim = dim
        self.pool = nn.AvgPool2d(2)
        self.net = nn.Sequential(
            nn.Conv2d(core.N_CHANNELS + 2, width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.GELU(), nn.Flatten(),
            nn.Linear(width * 4 * 4, dim), nn.LayerNorm(dim),
        )
        ramp = torch.linspace(-1.0, 1.0, core.IMG_SIZE // 2)
        self.register_buffer("coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="xy")), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != OBS_SHAPE:
            raise ValueError(f"pixel features need frames [B, 2, 65, 65], got {tuple(x.shape)}")
        x = self.pool(x.float() / 255.0 if x.dtype == torch.uint8 else x.float()) * 8.0  # dot pixels ~0.1 -> ~1
        return self.net(torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1))


class JEPAFeatures(nn.Module):
    """The shipped JEPA world model's pixel encoder, frozen: latents [B, D] of frames [B, 2, 65, 65].

    Learned from pixels on the `random`-tier dataset by the JEPA objective, no position enters it;
    the offline methods then learn on top of the same representation the planner uses, which
    separates the method (planning or a policy) from the features. One instance is shared by every
    network of a method (its weights are saved once per network key, the same tensors). Latents
    [B, D] pass through (the trainer reads them from :func:`embed_dataset`'s cache).
    """

    learned = False

    def __init__(self) -> None:
        super().__init__()
        from jepa_agent.world_model import load_world_model

        self.encoder = load_world_model(None).encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.dim = int(self.encoder(torch.zeros(1, *OBS_SHAPE, dtype=torch.uint8)).shape[-1])

    def train(self, mode: bool = True) -> "JEPAFeatures":
        return super().train(False)  # frozen: always in evaluation mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[-1] == self.dim:
            return x.float()
        if x.dim() != 4 or tuple(x.shape[1:]) != OBS_SHAPE:
            raise ValueError(f"jepa features need frames [B, 2, 65, 65] or latents [B, {self.dim}], got {tuple(x.shape)}")
        with torch.no_grad():
            return self.encoder(x).float()


_SHARED_JEPA: list[JEPAFeatures] = []


def shared_jepa_features() -> JEPAFeatures:
    if not _SHARED_JEPA:
        _SHARED_JEPA.append(JEPAFeatures())
    return _SHARED_JEPA[0]


def embed_dataset(data: OfflineData, cache_dir: str | Path = "outputs/cache", batch: int = 4096, progress: bool = True) -> Path:
    """Encode every state of ``data`` with the frozen JEPA encoder into ``data.embeddings`` (float16
    [N, L, D]), cached on disk by dataset sha256, split and encoder weights (reused when present)."""
    import hashlib

    from tqdm import tqdm

    enc = shared_jepa_features()
    digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in enc.encoder.parameters())).hexdigest()
    traj = data.traj
    n, length = traj.positions.shape[:2]
    path = Path(cache_dir) / f"{data.info['sha256'][:12]}_{data.info['split']}{data.info.get('used_trajectories', '')}_{digest[:12]}_jepa.npy"
    if path.is_file():
        emb = np.load(path, mmap_mode="r")
        if emb.shape == (n, length, enc.dim):
            data.embeddings = np.asarray(emb)
            return path
    flat_pos = traj.positions.reshape(-1, 2)
    rows = np.repeat(np.arange(n), length)
    out = np.empty((n * length, enc.dim), dtype=np.float16)
    with torch.inference_mode():
        for lo in tqdm(range(0, n * length, batch), desc="jepa latents", disable=not progress, unit_scale=batch):
            sl = slice(lo, lo + batch)
            frames = core.render_frames(flat_pos[sl], traj.wall_x[rows[sl]], traj.door_y[rows[sl]])
            out[sl] = enc.encoder(torch.from_numpy(frames)).float().numpy()
    data.embeddings = out.reshape(n, length, enc.dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, data.embeddings)
    tmp.replace(path)
    return path


def build_features(name: str, dim: int = 128) -> nn.Module:
    if name == "profile":
        return ProfileFeatures()
    if name == "jepa":
        return shared_jepa_features()
    if name == "pixels":
        return PixelCNN(dim)
    raise ValueError(f"unknown features {name!r}; expected one of {FEATURES}")


def mlp(d_in: int, hidden: tuple[int, ...], d_out: int, layer_norm: bool = True) -> nn.Sequential:
    """Linear -> [LayerNorm] -> GELU per hidden layer, then a linear output."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(d_in, h), *([nn.LayerNorm(h)] if layer_norm else []), nn.GELU()]
        d_in = h
    return nn.Sequential(*layers, nn.Linear(d_in, d_out))


class GoalNet(nn.Module):
    """y = MLP([f(s)] + [f(g)] + [extra]) with its own features f; any of the parts may be off."""

    def __init__(self, features: str, d_out: int, hidden: tuple[int, ...], feat_dim: int = 128,
                 use_obs: bool = True, use_goal: bool = True, d_extra: int = 0, layer_norm: bool = True) -> None:
        super().__init__()
        self.use_obs, self.use_goal = use_obs, use_goal
        self.features = build_features(features, feat_dim)
        d_in = (use_obs + use_goal) * self.features.dim + d_extra
        self.mlp = mlp(d_in, tuple(hidden), d_out, layer_norm)

    def forward(self, obs: torch.Tensor | None, goal: torch.Tensor | None = None, extra: torch.Tensor | None = None) -> torch.Tensor:
        """float32 outputs: under bf16 autocast the hidden layers run in bf16, the output layer in fp32
        (a value near -60 has a bf16 resolution of 0.25, a quarter of one step's reward)."""
        frames = [x for x, use in ((obs, self.use_obs), (goal, self.use_goal)) if use]
        parts = list(self.features(torch.cat(frames)).chunk(len(frames))) if frames else []  # one encoder call
        x = torch.cat(parts + ([extra] if extra is not None else []), dim=-1)
        hidden = self.mlp[:-1](x)
        with torch.autocast(hidden.device.type, enabled=False):
            return self.mlp[-1](hidden.float())


def frame_features(features: str) -> Any:
    """frames [B, 2, 65, 65] -> what the networks of ``features`` take: computed features for the
    parameter-free ones (profile, frozen jepa), the frames themselves for learned pixels."""
    if features == "profile":
        return ProfileFeatures()
    if features == "jepa":
        return shared_jepa_features()
    return lambda x: x


def prepare_batch(batch: dict[str, np.ndarray], features: str, device: torch.device) -> dict[str, torch.Tensor]:
    """numpy batch -> tensors on ``device``; fixed features of frames are computed here, once per frame."""
    out = {}
    f = frame_features(features)
    for k, v in batch.items():
        x = torch.from_numpy(v)
        if features != "pixels" and x.dim() == 4:
            x = f(x)
        out[k] = x.to(device)
    return out


# ---------------------------------------------------------------------------------- losses
def expectile_loss(diff: torch.Tensor, tau: float, sign_of: torch.Tensor | None = None) -> torch.Tensor:
    """Asymmetric L2 (IQL): mean |tau - 1(u < 0)| * diff^2, u = ``sign_of`` (default ``diff``)."""
    u = diff if sign_of is None else sign_of
    weight = torch.where(u < 0, 1.0 - tau, tau)
    return (weight * diff.pow(2)).mean()


def awr_weights(advantage: torch.Tensor, beta: float, max_weight: float = 100.0) -> torch.Tensor:
    """Advantage-weighted regression weights min(exp(beta * A), max_weight), no gradient."""
    return torch.exp(beta * advantage.detach()).clamp(max=max_weight)


def infonce_loss(logits: torch.Tensor) -> torch.Tensor:
    """InfoNCE over a batch: row i's positive is column i; mean_i -log softmax_j(logits[i, j])[i]."""
    return nn.functional.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def frozen_call(module: nn.Module, *args: Any) -> torch.Tensor:
    """``module(*args)`` with its parameters detached: the gradient flows to the inputs only (an
    actor's loss through a critic that it must not train)."""
    return functional_call(module, {k: v.detach() for k, v in module.named_parameters()}, args)


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """theta_target <- (1 - tau) theta_target + tau theta_online."""
    for pt, p in zip(target.parameters(), online.parameters()):
        pt.lerp_(p, tau)


class OfflineMethod(nn.Module):
    """Base of the methods: ``loss(batch) -> (loss, metrics)``, ``act(obs, goal) -> [B, 2]``."""

    name = "offline"

    def __init__(self, config: Any) -> None:
        super().__init__()
        if config.features not in FEATURES:
            raise ValueError(f"unknown features {config.features!r}; expected one of {FEATURES}")
        self.config = config

    def batch_spec(self) -> BatchSpec:
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each optimiser step (target networks)."""

    def act(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def method_class(name: str) -> type[OfflineMethod]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_method(name: str, **config: Any) -> OfflineMethod:
    cls = method_class(name)
    return cls(cls.Config(**config))


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, method: OfflineMethod, dataset: dict, train: dict, stats: dict) -> Path:
    """Weights (dict of tensors) and JSON-able config, dataset record and training record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_save({"format": FORMAT, "format_version": FORMAT_VERSION, "method": method.name,
                        "config": json.loads(json.dumps(asdict(method.config))), "dataset": dataset, "train": train,
                        "stats": stats, "model": {k: v.detach().cpu() for k, v in method.state_dict().items()}}, path)


def read_checkpoint(path: str | Path) -> dict:
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not an offline GCRL checkpoint: expected format {FORMAT!r}, got {got!r}")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {ckpt.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    return ckpt


def load_method(path: str | Path, device: str | torch.device = "cpu") -> tuple[OfflineMethod, dict]:
    """(method in eval mode on ``device``, checkpoint record without weights)."""
    ckpt = read_checkpoint(path)
    method = build_method(ckpt["method"], **ckpt["config"])
    method.load_state_dict(ckpt["model"])
    return method.to(device).eval(), {k: v for k, v in ckpt.items() if k != "model"}


# ----------------------------------------------------------------------------------- agent
class OfflineAgent:
    """A trained method behind the evaluation's interface: uint8 pixels in, env action out."""

    def __init__(self, method: OfflineMethod, meta: dict | None = None, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.method = method.to(self.device).eval()
        self.meta = meta or {}
        self.name = method.name
        self.data_tier = (self.meta.get("dataset") or {}).get("tier")

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "OfflineAgent":
        method, meta = load_method(path, device)
        return cls(method, meta, device)

    def reset(self, n: int | None = None) -> None:
        """Memoryless policies: nothing to reset."""

    def act_batch(self, obs: np.ndarray, goal_obs: np.ndarray, infos: Any = None) -> np.ndarray:
        """obs, goal_obs uint8 [E, 2, 65, 65] -> float32 [E, 2] in env units; ``infos`` is ignored."""
        obs, goal_obs = np.asarray(obs), np.asarray(goal_obs)
        if obs.ndim != 4 or obs.shape[1:] != OBS_SHAPE or goal_obs.shape != obs.shape:
            raise ValueError(f"obs and goal_obs must both be [E, 2, 65, 65], got {obs.shape} and {goal_obs.shape}")
        with torch.inference_mode():
            a = self.method.act(torch.as_tensor(obs, device=self.device), torch.as_tensor(goal_obs, device=self.device))
        return a.float().clamp(-1.0, 1.0).cpu().numpy().astype(np.float32)

    def act(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """One observation and goal uint8 [2, 65, 65] -> action float32 (2,)."""
        obs, goal = np.asarray(obs), np.asarray(goal)
        if obs.shape != OBS_SHAPE or goal.shape != OBS_SHAPE:
            raise ValueError(f"act expects obs and goal of shape {OBS_SHAPE}, got {obs.shape} and {goal.shape}")
        return self.act_batch(obs[None], goal[None])[0]

    def predict(self, observation: dict, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        """stable-baselines3 style: ``(actions, state)`` from {"observation", "desired_goal"}."""
        if not isinstance(observation, dict) or "observation" not in observation or "desired_goal" not in observation:
            raise ValueError("predict() needs a dict with 'observation' and 'desired_goal' frames")
        obs, goal = np.asarray(observation["observation"]), np.asarray(observation["desired_goal"])
        if obs.ndim == 3:
            return self.act(obs, goal), state
        return self.act_batch(obs, goal), state
