"""GCIQL: goal-conditioned implicit Q-learning (Kostrikov et al. 2022, IQL; goal-conditioned as in
OGBench, Park et al. 2024), with an advantage-weighted (AWR) or a DDPG+BC actor.

Relabelled transitions (s, a, s', g, r, m) come from :mod:`eval.baselines.relabel`: value goals
0.2 current / 0.5 future (geometric, gamma) / 0.3 random, r = 0 at the goal else -1, mask m = 0 at
the goal. Networks: two critics Q_1, Q_2 (s, a, g) with Polyak target copies Qbar_j, a value
V(s, g) and a deterministic actor pi(s, g)::

    value  (expectile tau):  L_V = E[ |tau - 1(u < 0)| u^2 ],   u = min_j Qbar_j(s, a, g) - V(s, g)
    critic (TD to V):        L_Q = sum_j E[ (r + gamma m V(s', g) - Q_j(s, a, g))^2 ]
    actor  (AWR, beta):      L_pi = E[ w || pi(s, g_a) - a ||^2 ],
                             w = min(exp(beta (min_j Qbar_j(s, a, g_a) - V(s, g_a))), 100)
    actor  (DDPG+BC, alpha): L_pi = -E[ Q(s, pi(s, g_a), g_a) ] / E|Q| + alpha E|| pi(s, g_a) - a ||^2,
                             Q = min_j Q_j with the critics' parameters held fixed
    target:                  Qbar <- (1 - tau_p) Qbar + tau_p Q

Actor goals g_a: future states of the same trajectory, uniform (OGBench's actor mixture 0 / 1 / 0).
The squared error is the log-likelihood of a fixed-variance Gaussian policy (AWR's weighted
maximum likelihood). ``actor="awr"`` (beta 3, chosen, not tuned) extracts the policy as HIQL does;
``actor="ddpgbc"`` is OGBench's GCIQL default (the Q term normalised by its batch mean magnitude,
as in CRL; alpha 0.1, chosen, not tuned). AWR only reweights the data's actions, so a poor
advantage makes it a noisy subsample of behaviour cloning; DDPG+BC follows the critic's gradient
and keeps the cloning term.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from eval.baselines.offline import (BatchSpec, GoalNet, OfflineMethod, awr_weights, expectile_loss, frozen_call,
                                    polyak_update)
from eval.baselines.relabel import ACTOR_MIXTURE, VALUE_MIXTURE


ACTORS = ("awr", "ddpgbc")


@dataclass
class GCIQLConfig:
    features: str = "profile"
    hidden: tuple[int, ...] = (256, 256, 256)
    feat_dim: int = 128
    gamma: float = 0.99
    expectile: float = 0.9  # OGBench GCIQL
    actor: str = "awr"  # policy extraction: "awr" | "ddpgbc"
    beta: float = 3.0  # AWR inverse temperature
    alpha: float = 0.1  # DDPG+BC: behaviour-cloning weight
    polyak: float = 0.005

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.actor not in ACTORS:
            raise ValueError(f"GCIQL actor {self.actor!r} is unknown; expected one of {ACTORS}")
        if self.alpha < 0:
            raise ValueError(f"GCIQL alpha must be >= 0, got {self.alpha}")


class GCIQL(OfflineMethod):
    name = "gciql"
    Config = GCIQLConfig

    def __init__(self, config: GCIQLConfig) -> None:
        super().__init__(config)
        f, h, d = config.features, config.hidden, config.feat_dim
        self.q1 = GoalNet(f, 1, h, d, d_extra=2)
        self.q2 = GoalNet(f, 1, h, d, d_extra=2)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        for p in (*self.q1_target.parameters(), *self.q2_target.parameters()):
            p.requires_grad_(False)
        self.value = GoalNet(f, 1, h, d)
        self.actor = GoalNet(f, 2, h, d)

    def batch_spec(self) -> BatchSpec:
        return BatchSpec(value=VALUE_MIXTURE, actor=ACTOR_MIXTURE, gamma=self.config.gamma)

    def target_q(self, obs: torch.Tensor, goal: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.minimum(self.q1_target(obs, goal, action), self.q2_target(obs, goal, action)).squeeze(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        s, s2, a, g, ga = batch["obs"], batch["next_obs"], batch["actions"], batch["value_goals"], batch["actor_goals"]
        # value: expectile regression of V(s, g) toward min_j Qbar_j(s, a, g)
        v = self.value(s, g).squeeze(-1)
        value_loss = expectile_loss(self.target_q(s, g, a) - v, c.expectile)
        # critics: TD toward r + gamma * m * V(s', g)
        with torch.no_grad():
            y = batch["rewards"] + c.gamma * batch["masks"] * self.value(s2, g).squeeze(-1)
        q1, q2 = self.q1(s, g, a).squeeze(-1), self.q2(s, g, a).squeeze(-1)
        critic_loss = (q1 - y).pow(2).mean() + (q2 - y).pow(2).mean()
        actor_loss, actor_metrics = self.actor_loss(s, a, ga)
        loss = value_loss + critic_loss + actor_loss
        return loss, {"value_loss": value_loss.item(), "critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                      "v_mean": v.mean().item(), **actor_metrics}

    def actor_loss(self, s: torch.Tensor, a: torch.Tensor, ga: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        pi = torch.tanh(self.actor(s, ga))
        bc = (pi - a).pow(2).sum(-1)
        if c.actor == "awr":  # A = min_j Qbar_j(s, a, g_a) - V(s, g_a)
            with torch.no_grad():
                adv = self.target_q(s, ga, a) - self.value(s, ga).squeeze(-1)
            w = awr_weights(adv, c.beta)
            return (w * bc).mean(), {"adv_mean": adv.mean().item(), "weight_mean": w.mean().item()}
        # DDPG+BC: the gradient reaches pi through the fixed critics
        q = torch.minimum(frozen_call(self.q1, s, ga, pi), frozen_call(self.q2, s, ga, pi)).squeeze(-1)
        q_term = -q.mean() / q.abs().mean().detach().clamp(min=1e-6)
        return q_term + c.alpha * bc.mean(), {"q_pi_mean": q.mean().item(), "bc_loss": bc.mean().item()}

    def after_step(self) -> None:
        polyak_update(self.q1_target, self.q1, self.config.polyak)
        polyak_update(self.q2_target, self.q2, self.config.polyak)

    def act(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs, goal))
