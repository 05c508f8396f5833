"""The baselines the JEPA agent is compared with, all behind the policy interface of ``eval.runner``.

- ``scripted``: random, greedy and oracle policies (greedy and oracle read privileged positions);
- ``offline`` with ``gcbc``, ``gciql``, ``hiql``, ``crl`` and ``relabel``: offline goal-conditioned
  RL trained on the world model's datasets (``python -m eval.baselines.train``);
- ``gcbc_cnn``: the convolutional GCBC trained on generated walks (the shipped ``weights/gcbc.pt``);
- ``sb3_agents``: SAC + HER from Stable-Baselines3 (optional dependency).

``WEIGHTS`` is the folder of the shipped baseline weights and their training logs. The registry that
turns ``--agent NAME`` into a policy, the JEPA agent included, is ``eval.agents``.
"""

from pathlib import Path

from eval.baselines.scripted import GreedyPolicy, OraclePolicy, RandomPolicy

WEIGHTS = Path(__file__).resolve().parent / "weights"

_MOVED = ("AGENTS", "Unavailable", "make_agent")


def __getattr__(name: str):
    if name in _MOVED:  # the registry moved to eval.agents in 0.2; these aliases go in 0.3
        import warnings

        warnings.warn(f"eval.baselines.{name} moved to eval.agents.{name}", DeprecationWarning, stacklevel=2)
        from eval import agents

        return getattr(agents, name)
    raise AttributeError(f"module 'eval.baselines' has no attribute {name!r}")


__all__ = ["WEIGHTS", "RandomPolicy", "GreedyPolicy", "OraclePolicy"]
