"""Scores of PROTOCOL.md: success@end (headline) with its Wilson interval, success@any, strict
success, final distance, seconds per episode; and the machine they were measured on."""

from __future__ import annotations

import math
import os
import platform
from typing import Any, Sequence

import numpy as np

from tworooms_env import core


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (default z); (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def machine_description() -> str:
    """CPU model and torch thread count, or the GPU name (what PROTOCOL.md asks to report)."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)}"
        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        threads = os.cpu_count() or 1
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {cpu}, {threads} threads ({os.cpu_count()} cores visible)"


def summarize(episodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """PROTOCOL metrics of a list of episode records (``eval.runner.EpisodeRecord.as_dict``)."""
    n = len(episodes)
    if n == 0:
        raise ValueError("no episodes to summarise")
    final = np.array([e["final_distance"] for e in episodes], dtype=np.float64)
    closest = np.array([e["min_distance"] for e in episodes], dtype=np.float64)
    seconds = np.array([e["seconds"] for e in episodes], dtype=np.float64)
    k_end = int((final < core.SUCCESS_RADIUS).sum())
    k_any = int((closest < core.SUCCESS_RADIUS).sum())
    k_strict = int((final < core.STRICT_SUCCESS_RADIUS).sum())
    lo, hi = wilson_interval(k_end, n)
    return {
        "episodes": n,
        "successes": k_end,
        "success_rate": k_end / n,
        "success_ci": [lo, hi],
        "success_any_rate": k_any / n,
        "success_any_ci": list(wilson_interval(k_any, n)),
        "strict_success_rate": k_strict / n,
        "strict_success_ci": list(wilson_interval(k_strict, n)),
        "mean_final_distance": float(final.mean()),
        "median_episode_seconds": float(np.median(seconds)),
        "p90_episode_seconds": float(np.percentile(seconds, 90)),
        "mean_episode_seconds": float(seconds.mean()),
    }


def format_table(rows: Sequence[dict[str, Any]], title_key: str = "method") -> str:
    """A Markdown table of summaries (one row per method) in PROTOCOL.md's columns."""
    header = (
        f"| {title_key} | episodes | success@end [95 % CI] | success@any | strict (<1.41 px) "
        "| mean final dist (px) | s/episode median | p90 |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("unavailable"):
            lines.append(f"| {r[title_key]} | - | not available: {r['unavailable']} | - | - | - | - | - |")
            continue
        lo, hi = r["success_ci"]
        lines.append(
            f"| {r[title_key]} | {r['episodes']} | {100 * r['success_rate']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"| {100 * r['success_any_rate']:.1f} % | {100 * r['strict_success_rate']:.1f} % "
            f"| {r['mean_final_distance']:.2f} | {r['median_episode_seconds']:.3f} | {r['p90_episode_seconds']:.3f} |"
        )
    return "\n".join(lines)
