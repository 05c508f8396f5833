"""SIGINT / SIGTERM handling shared by every long-running command (collect and the trainers).

- ``StopSignal``: a flag the signals set, for loops that save a checkpoint and stop cleanly;
- ``raise_on_signals``: within a block both signals raise ``Interrupted`` (exit code 128 + signal:
  130 for Ctrl-C, 143 for SIGTERM), so that ``finally`` blocks remove temporary files.

Standard library only: the environment package uses it for ``tworooms-collect`` and
``training.interrupt`` re-exports it for the trainers.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised by ``raise_on_signals`` on SIGINT or SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class StopSignal:
    """A flag set by SIGINT / SIGTERM while installed (``with StopSignal() as stop: ... stop.stop``)."""

    def __init__(self, what: str = "saving a checkpoint, then stopping"):
        self.signum, self.what = 0, what
        self._old: dict[int, Any] = {}

    @property
    def stop(self) -> bool:
        return self.signum != 0

    @property
    def signame(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 Ctrl-C, 143 SIGTERM); 0 if no signal came."""
        return 128 + self.signum if self.signum else 0

    def __call__(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.signum:  # a second signal: give up at once
            raise Interrupted(signum)
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: {self.what} (send again to abort)", file=sys.stderr)

    def install(self) -> "StopSignal":
        if _main_thread():  # signal handlers can only be set from the main thread
            self._old = {s: signal.signal(s, self) for s in SIGNALS}
        return self

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old = {}

    def __enter__(self) -> "StopSignal":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()


@contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise ``Interrupted`` (finally blocks then clean up)."""
    if not _main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
