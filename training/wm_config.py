"""Typed configuration of world-model training, with presets and command-line overrides.

    cfg = make_config(["--preset", "tiny", "batch_size=16", "--lr", "3e-4"])

Presets: ``tiny`` (tests, seconds), ``cpu`` (the default: a learned pixel encoder trained on an
offline dataset of the ``random`` tier), ``profile`` (hand-crafted position features, privileged,
on a stream of ``navigate``-like windows: the recipe of the shipped checkpoint) and ``reference``
(the paper's sizes: IMPALA encoder, 512-d GRU; for GPUs). Any field can be
overridden as ``--key-name value`` or ``key_name=value`` (``tworooms_env.cli``); an unknown key is
an error naming the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from jepa_agent.precision import check_amp
from jepa_agent.world_model import ModelConfig
from tworooms_env.cli import ConfigCLI
from tworooms_env.tiers import TIERS, TierConfig, tier_config
from training.config_checks import WORLD_MODEL_RANGES, check_device, check_ranges


@dataclass
class TrainConfig(ModelConfig):
    """Everything a run needs: the model's fields (inherited from ModelConfig, whose defaults are the
    CPU recipe and exist only there) plus data, optimisation and infrastructure."""

    preset: str = "cpu"  # the preset these settings started from
    # ---- data: windows of a stored dataset (``dataset``), or streamed fresh from the generator
    dataset: str = ""  # .npz of trajectories (tworooms-collect); "" streams fresh windows instead
    data_tier: str = field(default="navigate", metadata={"choices": TIERS})  # tier of the dataset (checked against its metadata) or of a missing one to collect
    dataset_size: int = 100_000  # trajectories to collect when ``dataset`` does not exist yet
    window: int = 41  # frames per training window (rollout_steps + 1)
    frame_stride: int = 1  # render and encode every n-th frame of a window (n = action_chunk for pixel encoders)
    cross_wall_rate: float = 0.3  # share of windows built around a door crossing
    wall_bump_rate: float = 0.45  # share of windows starting near the wall heading into it
    segment_rate: float = 0.5  # share of planner-like windows (piecewise-constant actions up to 2.45 px)
    parallel_rate: float = 0.35  # of the planner-like windows: share running along a wall face
    door_aim_rate: float = 0.25  # of the planner-like windows: share aimed straight through the door
    push_rate: float = 0.2  # of the planner-like windows: share pushing into the centre wall, mostly diagonally
    detour_rate: float = 0.3  # of the planner-like windows: share of goal-directed door detours (noisy door routes)
    step_mean: float = 1.2  # random-walk step length (px): truncated normal (docs/reference.md#random-walks)
    step_std: float = 0.6  # standard deviation of the random-walk step length (px)
    step_max: float = 2.45  # the reference's data stops at 1.8 px while plans use up to 2.45
    fixed_wall: bool = False  # one layout only (wall 32, door 18)
    fast_profiles: bool = True  # profile encoder: stream exact row/column sums instead of frames
    shift_max: int = 0  # augmentation: translate each window's frames (positions, layout) by one offset uniform in [-n, n]^2 px, zero-filled (0: off)
    # ---- optimisation (docs/reference.md#optimisation)
    batch_size: int = 256  # windows per step
    epochs: int = 18  # epochs of steps_per_epoch steps (a checkpoint and the gates after each)
    steps_per_epoch: int = 600  # optimiser steps per epoch
    lr: float = 3e-3  # peak learning rate (AdamW), after the linear warmup
    weight_decay: float = 1e-5  # AdamW weight decay
    warmup_frac: float = 0.1  # share of the steps with a linear warmup, then cosine decay
    min_lr: float = 1e-5  # learning rate at the end of the cosine decay
    grad_clip: float = 2.0  # clip the gradient norm of each parameter group to this (0: no clipping)
    # ---- infrastructure
    seed: int = 0  # seed of the weights and of every batch
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    compile: bool = False  # torch.compile the model
    amp: Literal["auto", "bf16", "off"] = "auto"  # auto (bf16 on CUDA and on CPUs with native bf16) | bf16 | off
    threads: int = 2  # torch CPU threads (0: torch's default); 2 on 2 idle cores, 1 when other jobs run
    out_dir: str = "outputs/world_model/run"  # directory of the checkpoints and logs
    resume: str = field(default="", metadata={"const": "auto"})  # --resume: continue from out_dir/last.pt if present; --resume PATH: from that checkpoint
    log_every: int = 25  # steps between rows of log.csv
    gate_samples: int = 512  # samples per diagnostic gate at each epoch end (0: skip gates)
    tensorboard: bool = True  # also write TensorBoard events (if installed)
    max_minutes: float = 29.5  # stop (and save) after this wall time; 0 = no limit

    def model_config(self) -> ModelConfig:
        names = {f.name for f in fields(ModelConfig)}
        return ModelConfig(**{k: v for k, v in asdict(self).items() if k in names})

    def tier_config(self) -> TierConfig:
        """The generator parameters of this config's data, as a data tier (raises if they do not fit it)."""
        return TierConfig(tier=self.data_tier, **{k: getattr(self, k) for k in STREAM_KEYS})

    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self) -> None:
        super().__post_init__()  # validates the model part
        if isinstance(self.amp, bool):  # checkpoints written before amp took auto | bf16 | off
            self.amp = "auto" if self.amp else "off"
        check_amp(self.amp)
        if self.data_tier not in TIERS:
            raise ValueError(f"unknown data_tier {self.data_tier!r}; expected one of {', '.join(TIERS)}")
        if self.frame_stride < 1 or (self.window - 1) % self.frame_stride:
            raise ValueError(f"frame_stride must be >= 1 and divide window - 1 = {self.window - 1}, got {self.frame_stride}")
        if self.frame_stride > 1 and self.frame_stride != self.action_chunk:
            raise ValueError(f"frame_stride {self.frame_stride} must be 1 or equal action_chunk ({self.action_chunk}): "
                             "a predictor call must land on a given frame")
        self.tier_config()  # the rates must belong to data_tier (e.g. no layout-aware families in 'random')
        if self.frame_stride > 1 and self.encoder == "profile" and self.fast_profiles and not self.dataset:
            raise ValueError("frame_stride applies to rendered frames; the profile stream (fast_profiles) has none")
        if self.shift_max and self.encoder == "profile" and self.fast_profiles and not self.dataset:
            raise ValueError("shift_max translates rendered frames; the profile stream (fast_profiles) has none")
        if self.window < 2:
            raise ValueError(f"window must be >= 2 frames, got {self.window}")
        if self.rollout_steps > self.window - 1:
            raise ValueError(f"rollout_steps ({self.rollout_steps}) needs window >= rollout_steps + 1 "
                             f"(window is {self.window})")
        for name in ("batch_size", "epochs", "steps_per_epoch", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("segment_rate", "parallel_rate", "door_aim_rate", "push_rate", "detour_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a share and must be in [0, 1], got {getattr(self, name)}")
        planner_like = self.parallel_rate + self.door_aim_rate + self.push_rate
        if planner_like > 1.0 + 1e-9:
            raise ValueError(f"parallel_rate + door_aim_rate + push_rate must be <= 1 (shares of the planner-like "
                             f"windows), got {planner_like:g}")
        check_ranges(self, WORLD_MODEL_RANGES)  # lr > 0, grad_clip >= 0, warmup_frac in [0, 1), ...
        check_device(self.device)


# The stream options that a dataset's tier fixes: with ``dataset`` set they must match its metadata.
STREAM_KEYS = ("cross_wall_rate", "wall_bump_rate", "segment_rate", "parallel_rate", "door_aim_rate", "push_rate",
               "detour_rate", "step_mean", "step_std", "step_max", "fixed_wall")
# The random tier's generator in the trainer's terms, read from its one definition (tworooms_env.tiers)
_RANDOM_TIER = {k: getattr(tier_config("random"), k) for k in STREAM_KEYS if k != "fixed_wall"}


def tier_overrides(tier: str) -> list[str]:
    """``KEY=VALUE`` overrides that set ``data_tier`` and every stream rate to those of ``tier``'s files
    (``tworooms_env.tiers``), so that any preset can read a dataset of that tier::

        make_config(["--preset", "cpu", "dataset=data/tworooms_contact.npz", *tier_overrides("contact")])
    """
    cfg = tier_config(tier)
    return [f"data_tier={tier}"] + [f"{k}={getattr(cfg, k)}" for k in STREAM_KEYS]


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        latent_dim=12, layout_dim=4, encoder_hidden=32, predictor_hidden=32, probe_hidden=16,
        window=9, rollout_steps=8, action_chunk=2, threads=1, batch_size=8, epochs=2, steps_per_epoch=4, log_every=2,
        gate_samples=32, tensorboard=False, max_minutes=0.0, out_dir="outputs/world_model/tiny", amp="off",
    ),
    # the pixel recipe: a learned CNN on whole frames, trained on a stored dataset of the random tier
    "cpu": dict(
        encoder="pixel", latent_dim=32, layout_dim=16, encoder_hidden=256, encoder_width=32, std_within_window=True,
        dataset="data/tworooms_random.npz", data_tier="random", frame_stride=5, amp="auto", batch_size=128,
        # 30 x 600 steps: the door's height is still being learned at 18 x 600 (probe 1.4-2.4 px there,
        # 0.40 px at 18,000 steps); ~34 min on 2 idle cores, 54 min on one thread of a shared machine
        lr=2e-3, epochs=30, steps_per_epoch=600, max_minutes=60.0, threads=1, out_dir="outputs/world_model/cpu",
        **_RANDOM_TIER,
    ),
    # hand-crafted position features (privileged) on a stream of layout-aware and expert-route windows
    "profile": dict(data_tier="navigate", amp="off", out_dir="outputs/world_model/profile"),
    # the paper's model, data and optimisation (docs/reference.md#world-model-action-conditioned-video-jepa)
    "reference": dict(
        encoder="impala", latent_dim=512, layout_dim=0, predictor="gru", action_chunk=1, rollout_steps=8,
        pred_coeff=1.0, onestep_coeff=0.0, layout_std_coeff=0.0, layout_cov_coeff=0.0, probe_hidden=512,
        idm_hidden=256, window=17, data_tier="random", **{**_RANDOM_TIER, "step_mean": 1.0, "step_std": 0.4,
                                                          "step_max": 1.8}, batch_size=384, epochs=12, steps_per_epoch=260,
        lr=1e-3, threads=0, max_minutes=0.0, compile=True, out_dir="outputs/world_model/reference",
    ),
}


CLI = ConfigCLI(TrainConfig, prog="tworooms-train", presets=PRESETS, default_preset="cpu",
                description="Train the action-conditioned JEPA world model (training.world_model).")


def make_config(argv: list[str] | None = None, **overrides: Any) -> TrainConfig:
    """Preset (``--preset``, default 'cpu') + command-line flags + keyword ``overrides`` (see tworooms_env.cli)."""
    return CLI.parse(list(argv or []), **overrides)


def config_from_dict(d: dict) -> TrainConfig:
    """Rebuild a config saved in a checkpoint (unknown keys are errors)."""
    types = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(d) - types)
    if unknown:
        raise ValueError(f"checkpoint config has unknown keys {unknown}")
    return TrainConfig(**d)


__all__ = ["TrainConfig", "PRESETS", "CLI", "make_config", "config_from_dict", "tier_overrides"]
