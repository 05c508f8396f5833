"""Deprecated alias of ``jepa_agent.video.train`` (removed in 0.3)."""

from training._moved import alias

alias(__name__, "jepa_agent.video.train")
