"""Scores of docs/protocol.md: success@end (headline) with its Wilson interval, success@any, strict
success, final distance, seconds per episode; and the machine they were measured on.

Efficiency: an episode's steps to success is the first step t >= 1 after which the dot is within
``core.SUCCESS_RADIUS`` (4.5 px) of the goal (None: never). Per task it is divided by the oracle's
steps on the same task (``eval.baselines.scripted.oracle_steps``). Medians and p90s of steps,
ratios and path lengths are taken over the episodes that reached the goal; success within N steps
counts every episode (never-reached ones as failures)."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
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


SUCCESS_WITHIN = (50, 100, 200)  # success within N steps, reported for each N


def steps_to_success(positions: np.ndarray, goal: np.ndarray, radius: float = core.SUCCESS_RADIUS) -> int | None:
    """First step t >= 1 with |positions[t] - goal| < radius, from a trajectory [T + 1, 2]; None: never."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(f"positions must be a trajectory [T + 1, 2], got shape {positions.shape}")
    hits = np.flatnonzero(np.linalg.norm(positions[1:] - np.asarray(goal, dtype=np.float64), axis=1) < radius)
    return int(hits[0]) + 1 if hits.size else None


def path_length(positions: np.ndarray, steps: int | None = None) -> float:
    """Distance travelled (px) along a trajectory [T + 1, 2], over its first ``steps`` steps (None: all)."""
    positions = np.asarray(positions, dtype=np.float64)
    if steps is not None:
        positions = positions[: steps + 1]
    return float(np.linalg.norm(np.diff(positions, axis=0), axis=1).sum())


def _quantiles(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(median, p90) of the values, (None, None) when there are none."""
    if len(values) == 0:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    return float(np.median(arr)), float(np.percentile(arr, 90))


def efficiency_summary(episodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Steps to success, its ratio to the oracle's, success within 50/100/200 steps, path lengths.

    Episodes without the ``steps_to_success`` field (older records) give an empty dict.
    """
    if not episodes or any("steps_to_success" not in e for e in episodes):
        return {}
    n = len(episodes)
    steps = [e["steps_to_success"] for e in episodes if e["steps_to_success"] is not None]
    ratios = [e["steps_to_success"] / e["oracle_steps"] for e in episodes
              if e["steps_to_success"] is not None and e.get("oracle_steps")]
    paths = [e["path_length_to_success"] for e in episodes if e.get("path_length_to_success") is not None]
    out: dict[str, Any] = {"reached": len(steps)}
    out["steps_to_success_median"], out["steps_to_success_p90"] = _quantiles(steps)
    out["oracle_ratio_median"], out["oracle_ratio_p90"] = _quantiles(ratios)
    out["path_length_to_success_median"], _ = _quantiles(paths)
    out["path_length_median"], _ = _quantiles([e["path_length"] for e in episodes if e.get("path_length") is not None])
    for limit in SUCCESS_WITHIN:
        out[f"success_within_{limit}"] = sum(s <= limit for s in steps) / n
    return out


def machine_description() -> str:
    """CPU model and torch thread count, or the GPU name (what docs/protocol.md asks to report)."""
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
        **efficiency_summary(episodes),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The one Markdown table writer: a header line, the separator, one line per row (short rows are
    padded with dashes)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in rows:
        cells = [str(c) for c in row] + ["-"] * (len(header) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


SCORE_HEADER = ("success@end [95 % CI]", "success@any", "strict (<1.41 px)", "mean final dist (px)",
                "steps to success median / p90", "vs oracle median / p90", "within 50 / 100 / 200",
                "path to success (px)", "s/episode median")


def _num(value: float | None, fmt: str = ".0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{suffix}"


def efficiency_cells(r: dict[str, Any]) -> list[str]:
    """The four efficiency cells of one summary row (dashes where the records lack them)."""
    if "steps_to_success_median" not in r:
        return ["-"] * 4
    within = " / ".join(f"{100 * r[f'success_within_{k}']:.0f} %" for k in SUCCESS_WITHIN)
    return [f"{_num(r['steps_to_success_median'])} / {_num(r['steps_to_success_p90'])}",
            f"{_num(r['oracle_ratio_median'], '.2f', 'x')} / {_num(r['oracle_ratio_p90'], '.2f', 'x')}",
            within, _num(r["path_length_to_success_median"], ".1f")]


def score_cells(r: dict[str, Any]) -> list[str]:
    """The cells of ``SCORE_HEADER`` for one summary row (a reason and dashes when it is unavailable)."""
    if r.get("unavailable"):
        return [f"not available: {r['unavailable']}"] + ["-"] * (len(SCORE_HEADER) - 1)
    lo, hi = r["success_ci"]
    return [f"{100 * r['success_rate']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]", f"{100 * r['success_any_rate']:.1f} %",
            f"{100 * r['strict_success_rate']:.1f} %", f"{r['mean_final_distance']:.2f}", *efficiency_cells(r),
            f"{r['median_episode_seconds']:.3f}"]


def format_table(rows: Sequence[dict[str, Any]], title_key: str = "method", second: tuple[str, str] = ("episodes", "episodes"),
                 p90: bool = True) -> str:
    """A Markdown table of summaries, one row per method: the title, a ``second`` column (header, key),
    the protocol's scores, efficiency, seconds per episode (and their p90)."""
    header = [title_key, second[0], *SCORE_HEADER] + (["p90"] if p90 else [])
    lines = []
    for r in rows:
        cells = [r[title_key], r.get(second[1], "-"), *score_cells(r)]
        if p90 and not r.get("unavailable"):
            cells.append(f"{r['p90_episode_seconds']:.3f}")
        lines.append(cells)
    return markdown_table(header, lines)


def write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as indented JSON at ``path`` (parent folders created): every command's --json output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))
    return path
