"""The baselines the JEPA agent is compared with, all behind the policy interface of ``eval.runner``.

- ``scripted``: random, greedy and oracle policies (greedy and oracle read privileged positions);
- ``offline`` with ``gcbc``, ``gciql``, ``gcivl``, ``hiql``, ``crl`` and ``relabel``: offline goal-conditioned
  RL trained on the world model's datasets (``python -m eval.baselines.train``);
- ``gcbc_cnn``: the convolutional GCBC trained on generated walks (the shipped ``weights/gcbc.pt``);
- ``sb3_agents``: SAC + HER from Stable-Baselines3 (optional dependency).

``WEIGHTS`` is the folder of the shipped baseline weights and their training logs. The registry that
turns ``--agent NAME`` into a policy, the JEPA agent included, is ``eval.agents``.
"""

from pathlib import Path

from eval.baselines.scripted import GreedyPolicy, OraclePolicy, RandomPolicy

WEIGHTS = Path(__file__).resolve().parent / "weights"

__all__ = ["WEIGHTS", "RandomPolicy", "GreedyPolicy", "OraclePolicy"]
