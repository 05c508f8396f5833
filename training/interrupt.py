"""Interruption safety shared by the trainers and ``collect``: signals, atomic saves, logs, out_dir.

- ``StopSignal`` (from ``tworooms_env.signals``, re-exported): SIGINT (Ctrl-C) and SIGTERM set a flag; the loop saves a resumable checkpoint
  after the current step and the command exits ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
  A second signal aborts at once (KeyboardInterrupt).
- ``raise_on_signals``: SIGTERM (and SIGINT) raise ``Interrupted`` so that ``finally`` blocks run
  (temporary files are removed) in code that has no loop to stop, such as a file being written.
- ``atomic_save``: ``torch.save`` to a temporary name, then rename; the temporary file is removed
  on any exit, so a crash mid-save never destroys the last good checkpoint nor leaves debris.
- ``CsvLog``: the one CSV log of every trainer (rows appended as dicts; a new column widens the file).
- ``truncate_csv`` / ``truncate_jsonl``: drop log rows past the step a run resumes from, so that
  rows appended after a resume are never duplicates.
- ``new_dir`` / ``remove_if_empty``: an out_dir created by a run that failed before writing
  anything is removed again.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from tworooms_env.signals import SIGNALS, Interrupted, StopSignal, _main_thread, raise_on_signals  # noqa: F401


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; the temporary file never outlives the call."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _rewrite(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class CsvLog:
    """Append rows (dicts) to a CSV file: the training log of every trainer.

    The columns are the file's header, else the first row's keys. A row with a key the header lacks
    rewrites the file once with the widened header (earlier rows get empty cells), so that a column
    written only now and then (an evaluation every few epochs) is never dropped. ``append=False``
    starts a fresh file; on resume, ``truncate_csv`` first drops the rows past the resumed step.
    """

    def __init__(self, path: str | Path, append: bool = True):
        self.path, self.columns = Path(path), None
        if not append and self.path.exists():
            self.path.unlink()
        if self.path.is_file():
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            self.columns = header or None

    def write(self, row: dict) -> None:
        if self.columns is not None and any(k not in self.columns for k in row):
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            self.columns += [k for k in row if k not in self.columns]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows)
            _rewrite(self.path, buf.getvalue())
        new = self.columns is None
        if new:
            self.columns = list(row)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def truncate_csv(path: str | Path, last_step: int, key: str = "step") -> int:
    """Keep the header and the rows of ``path`` whose ``key`` column is <= ``last_step``; returns the
    number of rows dropped (0 when the file or the column does not exist)."""
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or key not in rows[0]:
        return 0
    col = rows[0].index(key)
    keep = [r for r in rows[1:] if r and _number(r[col]) <= last_step]
    dropped = len(rows) - 1 - len(keep)
    if dropped:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows([rows[0], *keep])
        _rewrite(path, buf.getvalue())
    return dropped


def truncate_jsonl(path: str | Path, last_step: int, key: str = "iteration") -> int:
    """``truncate_csv`` for a JSON-lines file: drop records whose ``key`` is > ``last_step``."""
    path = Path(path)
    if not path.is_file():
        return 0
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = [ln for ln in lines if _number(json.loads(ln).get(key, 0)) <= last_step]
    if len(keep) != len(lines):
        _rewrite(path, "".join(ln + "\n" for ln in keep))
    return len(lines) - len(keep)


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("inf")  # an unreadable (half-written) row is dropped


def new_dir(path: str | Path) -> bool:
    """Create ``path`` (and parents); True if it did not exist before."""
    path = Path(path)
    existed = path.exists()
    path.mkdir(parents=True, exist_ok=True)
    return not existed


def remove_if_empty(path: str | Path, created: bool) -> None:
    """Remove ``path`` if this run ``created`` it and it is still empty."""
    path = Path(path)
    if created and path.is_dir() and not any(path.iterdir()):
        path.rmdir()


__all__ = ["StopSignal", "Interrupted", "raise_on_signals", "atomic_save", "CsvLog", "truncate_csv", "truncate_jsonl",
           "new_dir", "remove_if_empty"]
