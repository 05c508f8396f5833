"""Aliases of modules that moved in 0.2 (removed in 0.3): the old path imports the new module."""

from __future__ import annotations

import importlib
import runpy
import sys
import warnings


def alias(old: str, new: str) -> None:
    """Make ``old`` (a shim module's ``__name__``) the module ``new``; run it when started as a script."""
    if old == "__main__":
        warnings.warn(f"this module moved: run python -m {new}", DeprecationWarning, stacklevel=3)
        runpy.run_module(new, run_name="__main__", alter_sys=True)
        return
    warnings.warn(f"{old} moved to {new}", DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
