"""GCBC: goal-conditioned behaviour cloning with hindsight goals (offline, reward-free).

Trained from a trajectory file (``--dataset``, e.g. the file the world model trains on), with the
actor goal mixture of :mod:`eval.baselines.relabel` (OGBench): for a transition (s_t, a_t) the goal
is a future state of the same trajectory, g = s_{t'}, t' uniform on {t+1, ..., L-1}. A
deterministic policy regresses the data's action (the mean of a fixed-variance Gaussian policy)::

    loss = E_{(s_t, a_t, g)} || pi(s_t, g) - a_t ||^2,     a_t in env units (px / 2.45)

Train: ``python -m eval.baselines.train --method gcbc --dataset F.npz --features profile``.
The convolutional GCBC that shipped earlier (trained on freshly generated walks) lives in
:mod:`eval.baselines.gcbc_cnn`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from eval.baselines.offline import BatchSpec, GoalNet, OfflineMethod
from eval.baselines.relabel import ACTOR_MIXTURE


@dataclass
class GCBCConfig:
    features: str = "profile"  # "profile" (privileged) or "pixels" (learned CNN)
    hidden: tuple[int, ...] = (256, 256, 256)
    feat_dim: int = 128  # pixel features only

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)


class GCBC(OfflineMethod):
    name = "gcbc"
    Config = GCBCConfig

    def __init__(self, config: GCBCConfig) -> None:
        super().__init__(config)
        self.actor = GoalNet(config.features, 2, config.hidden, config.feat_dim)

    def batch_spec(self) -> BatchSpec:
        return BatchSpec(actor=ACTOR_MIXTURE)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        pred = torch.tanh(self.actor(batch["obs"], batch["actor_goals"]))
        loss = (pred - batch["actions"]).pow(2).sum(-1).mean()
        return loss, {"actor_loss": loss.item()}

    def act(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs, goal))


if __name__ == "__main__":
    raise SystemExit(
        "train GCBC from a dataset file with: python -m eval.baselines.train --method gcbc --dataset F.npz --out-dir DIR\n"
        "(the convolutional GCBC of weights/gcbc.pt: python -m eval.baselines.gcbc_cnn --train)"
    )
