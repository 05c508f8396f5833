"""Mixed precision: bf16 autocast where the hardware computes bf16 natively.

``amp`` settings: ``"auto"`` (bf16 on CUDA, and on CPUs with native bf16 matrix instructions such as
AVX512-BF16 or AMX, where oneDNN runs convolutions about twice as fast; fp32 elsewhere, since
emulated bf16 is slower than fp32), ``"bf16"`` (always) and ``"off"`` (always fp32).
"""

from __future__ import annotations

import torch

AMP_CHOICES = ("auto", "bf16", "off")


def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports native bf16 support on this CPU (AVX512-BF16 / AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or differently built torch: assume not
        return False


def check_amp(amp: str) -> str:
    """``amp`` itself if it is one of ``AMP_CHOICES``; a ValueError naming the choices otherwise."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    return amp


def use_bf16(amp: str, device: str | torch.device) -> bool:
    """Whether bf16 autocast is on for ``amp`` (one of ``AMP_CHOICES``) on ``device``."""
    check_amp(amp)
    kind = torch.device(device).type
    if amp == "off" or kind not in ("cuda", "cpu"):
        return False
    return amp == "bf16" or kind == "cuda" or cpu_has_native_bf16()


def autocast(device: str | torch.device, enabled: bool) -> torch.autocast:
    """bf16 autocast on ``device`` when ``enabled`` (a no-op context otherwise)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)
