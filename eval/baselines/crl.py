"""CRL: contrastive reinforcement learning (Eysenbach et al. 2022), as in OGBench.

The critic is a dot product of a state-action representation and a goal representation, trained
by InfoNCE to tell the future state reached from (s_i, a_i) apart from the other goals of the
batch. Its optimum is f(s, a, g) = log p^pi(s_+ = g | s, a) / p(g) + c(s, a): a Q-function of the
discounted occupancy of the data's policy. Positives: future states of the same trajectory,
g_i = s_{t+k}, k ~ Geometric(1 - gamma) (:data:`relabel.CONTRASTIVE_MIXTURE`)::

    f(s, a, g) = phi(s, a)^T psi(g),       logits_ij = f(s_i, a_i, g_j)
    L_critic   = -1/B sum_i log( exp(logits_ii) / sum_j exp(logits_ij) )          (InfoNCE)

The deterministic actor maximises the critic with a behaviour-cloning term (DDPG+BC, OGBench's
default, alpha 0.1); the critic is held fixed in the actor's loss and the Q scale is normalised::

    L_actor = -E[ f(s, pi(s, g_a), g_a) ] / E[|f|] + alpha E|| pi(s, g_a) - a ||^2

with actor goals g_a future states of the same trajectory, uniform (the actor mixture).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from eval.baselines.offline import BatchSpec, GoalNet, OfflineMethod, frozen_call, infonce_loss
from eval.baselines.relabel import ACTOR_MIXTURE, CONTRASTIVE_MIXTURE


@dataclass
class CRLConfig:
    features: str = "profile"
    hidden: tuple[int, ...] = (256, 256, 256)
    feat_dim: int = 128
    rep_dim: int = 64
    gamma: float = 0.99
    alpha: float = 0.1  # behaviour-cloning weight of the actor

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)


class CRL(OfflineMethod):
    name = "crl"
    Config = CRLConfig

    def __init__(self, config: CRLConfig) -> None:
        super().__init__(config)
        c = config
        self.phi = GoalNet(c.features, c.rep_dim, c.hidden, c.feat_dim, use_goal=False, d_extra=2)  # phi(s, a)
        self.psi = GoalNet(c.features, c.rep_dim, c.hidden, c.feat_dim, use_obs=False)  # psi(g)
        self.actor = GoalNet(c.features, 2, c.hidden, c.feat_dim)

    def batch_spec(self) -> BatchSpec:
        return BatchSpec(value=CONTRASTIVE_MIXTURE, actor=ACTOR_MIXTURE, gamma=self.config.gamma)

    def critic(self, obs: torch.Tensor, action: torch.Tensor, goal: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """f(s_i, a_i, g_i) [B]; ``frozen``: parameters detached (gradient flows to the action only)."""
        if frozen:
            phi, psi = frozen_call(self.phi, obs, None, action), frozen_call(self.psi, None, goal)
        else:
            phi, psi = self.phi(obs, None, action), self.psi(None, goal)
        return (phi * psi).sum(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        s, a, g, ga = batch["obs"], batch["actions"], batch["value_goals"], batch["actor_goals"]
        logits = self.phi(s, None, a) @ self.psi(None, g).T  # [B, B]
        critic_loss = infonce_loss(logits)
        pi = torch.tanh(self.actor(s, ga))
        q = self.critic(s, pi, ga, frozen=True)
        bc = (pi - a).pow(2).sum(-1).mean()
        actor_loss = -q.mean() / q.abs().mean().detach().clamp(min=1e-6) + self.config.alpha * bc
        accuracy = (logits.argmax(dim=1) == torch.arange(len(logits), device=logits.device)).float().mean()
        return critic_loss + actor_loss, {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                                          "bc_loss": bc.item(), "contrastive_accuracy": accuracy.item()}

    def act(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs, goal))
