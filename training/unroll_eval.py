"""Deprecated alias of ``eval.unroll`` (removed in 0.3)."""

from training._moved import alias

alias(__name__, "eval.unroll")
