"""Valid ranges of the trainers' numeric settings, stated once and checked before anything is written.

Each trainer's config calls ``check_ranges(self, RANGES)`` in ``__post_init__``; a rule is one of
``> a``, ``>= a``, ``[a, b]``, ``[a, b)``, ``(a, b]``, ``(a, b)``. A value outside its range (or NaN,
or infinite) is a ValueError naming the field, its value and the range. ``check_device`` accepts
``auto``, ``cpu``, ``cuda``, ``cuda:N`` (and ``mps``).
"""

from __future__ import annotations

import math
import re
from typing import Any

# training.wm_config.TrainConfig (the model's fields are checked by ModelConfig)
WORLD_MODEL_RANGES = {
    "lr": "> 0", "min_lr": ">= 0", "weight_decay": ">= 0", "warmup_frac": "[0, 1)", "grad_clip": ">= 0",
    "max_minutes": ">= 0", "threads": ">= 0", "seed": ">= 0", "gate_samples": ">= 0",
    "cross_wall_rate": "[0, 1]", "wall_bump_rate": "[0, 1]", "step_mean": "> 0", "step_std": ">= 0",
    "step_max": "> 0", "dataset_size": ">= 1", "frame_stride": ">= 1",
    "shift_max": "[0, 16]",
}
# jepa_agent.video.train.VideoJEPAConfig
VIDEO_RANGES = {
    "lr": "> 0", "decoder_lr": "> 0", "iterations": ">= 1", "batch_size": ">= 1", "warmup_iterations": ">= 1",
    "max_minutes": ">= 0", "stop_after": ">= 0", "log_every": ">= 1", "eval_every": ">= 0",
    "eval_sequences_quick": ">= 1", "eval_batch": ">= 1", "threads": ">= 0", "seed": ">= 0",
    "std_coeff": ">= 0", "cov_coeff": ">= 0", "clip_frames": "[2, 20]", "val_sequences": ">= 1",
    "val_digit_fraction": "(0, 1)", "enc_hidden": ">= 1", "dim": ">= 1", "pred_hidden": ">= 1",
    "pred_levels": ">= 1", "context": ">= 1", "steps": ">= 1", "downsample": ">= 1",
}
# jepa_agent.image.train.ImageJEPAConfig (lr is checked before it is scaled with the batch size)
IMAGE_RANGES = {
    "lr": "> 0", "probe_lr": "> 0", "weight_decay": ">= 0", "batch_size": ">= 1", "epochs": ">= 1",
    "warmup_epochs": ">= 0", "crop_scale_min": "(0, 1]", "flip_p": "[0, 1]", "jitter_p": "[0, 1]",
    "grayscale_p": "[0, 1]", "solarize_p": "[0, 1]", "brightness": ">= 0", "contrast": ">= 0",
    "eval_every": ">= 1", "knn_k": ">= 1", "threads": ">= 0", "stop_after": ">= 0", "seed": ">= 0",
    "sigreg_lambda": ">= 0", "std_coeff": ">= 0", "cov_coeff": ">= 0", "num_slices": ">= 1",
    "num_knots": ">= 2", "width": ">= 1", "patch_size": ">= 1", "train_limit": ">= 0", "test_limit": ">= 0",
    "synthetic_size": ">= 1", "pad_to": ">= 0",
}

_BOUND = re.compile(r"^([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def in_range(value: float, rule: str) -> bool:
    """Whether ``value`` satisfies ``rule`` ("> 0", ">= 1", "[0, 1)", ...)."""
    if rule.startswith(">="):
        return value >= float(rule[2:])
    if rule.startswith(">"):
        return value > float(rule[1:])
    m = _BOUND.match(rule)
    if not m:
        raise ValueError(f"bad range rule {rule!r}")
    lo, hi = float(m.group(2)), float(m.group(3))
    above = value >= lo if m.group(1) == "[" else value > lo
    below = value <= hi if m.group(4) == "]" else value < hi
    return above and below


def check_ranges(cfg: Any, rules: dict[str, str]) -> None:
    """Raise ValueError for the first field of ``cfg`` outside its rule (NaN and inf never pass)."""
    for name, rule in rules.items():
        value = getattr(cfg, name, None)
        if value is None or isinstance(value, (bool, str)):
            continue
        if not math.isfinite(value) or not in_range(value, rule):
            raise ValueError(f"{name} must be {'in ' if rule[0] in '[(' else ''}{rule}, got {value}")


def check_device(name: str) -> None:
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")


__all__ = ["check_ranges", "check_device", "in_range", "WORLD_MODEL_RANGES", "VIDEO_RANGES", "IMAGE_RANGES"]
