"""GCIVL: goal-conditioned implicit V-learning (IQL in value space; OGBench, Park et al. 2024),
with an advantage-weighted (AWR) actor.

No Q-function: an action-free value V(s, g) is regressed with an expectile toward its own
one-step target, which is optimistic over the data's actions because the expectile (tau > 0.5)
weighs the transitions that do better than V more. Two value networks V_1, V_2 with Polyak
target copies Vbar_j; relabelled transitions (s, a, s', g, r, m) from :mod:`eval.baselines.relabel`
(value goals 0.2 current / 0.5 future (geometric, gamma) / 0.3 random; r = 0 at the goal else -1;
m = 0 at the goal)::

    q_j = r + gamma m Vbar_j(s', g)                             (targets, one per network)
    A   = r + gamma m min_j Vbar_j(s', g) - mean_j Vbar_j(s, g)  (the expectile's sign)
    L_V = sum_j E[ |tau - 1(A < 0)| (q_j - V_j(s, g))^2 ]

Actor on future goals g_a of the same trajectory (uniform), with the online value
V = mean_j V_j (no gradient into V)::

    L_pi = E[ w || pi(s, g_a) - a ||^2 ],   w = min(exp(beta (V(s', g_a) - V(s, g_a))), 100)

(the squared error is a fixed-variance Gaussian log-likelihood). Defaults are OGBench's GCIVL
ones (tau 0.9, beta 10, gamma 0.99, Polyak 0.005), except the network sizes, which are the
project's CPU sizes (3 x 256).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from eval.baselines.offline import BatchSpec, GoalNet, OfflineMethod, awr_weights, expectile_loss, polyak_update
from eval.baselines.relabel import ACTOR_MIXTURE, VALUE_MIXTURE


@dataclass
class GCIVLConfig:
    features: str = "profile"
    hidden: tuple[int, ...] = (256, 256, 256)
    feat_dim: int = 128
    gamma: float = 0.99
    expectile: float = 0.9  # OGBench GCIVL
    beta: float = 10.0  # AWR inverse temperature (OGBench GCIVL alpha)
    polyak: float = 0.005

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if not 0.0 < self.expectile < 1.0 or not 0.0 < self.polyak <= 1.0 or not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"need 0 < expectile < 1, 0 < polyak <= 1, 0 <= gamma < 1; got {self.expectile}, "
                             f"{self.polyak}, {self.gamma}")


class GCIVL(OfflineMethod):
    name = "gcivl"
    Config = GCIVLConfig

    def __init__(self, config: GCIVLConfig) -> None:
        super().__init__(config)
        f, h, d = config.features, config.hidden, config.feat_dim
        self.values = torch.nn.ModuleList(GoalNet(f, 1, h, d) for _ in range(2))
        self.targets = copy.deepcopy(self.values)
        for p in self.targets.parameters():
            p.requires_grad_(False)
        self.actor = GoalNet(f, 2, h, d)

    def batch_spec(self) -> BatchSpec:
        return BatchSpec(value=VALUE_MIXTURE, actor=ACTOR_MIXTURE, gamma=self.config.gamma)

    @staticmethod
    def _pair(nets: torch.nn.ModuleList, obs: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nets[0](obs, goal).squeeze(-1), nets[1](obs, goal).squeeze(-1)

    def value(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Online value mean_j V_j(s, g), no gradient."""
        with torch.no_grad():
            v1, v2 = self._pair(self.values, obs, goal)
            return 0.5 * (v1 + v2)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        s, s2, a, g, ga = batch["obs"], batch["next_obs"], batch["actions"], batch["value_goals"], batch["actor_goals"]
        r, m = batch["rewards"], batch["masks"]
        # value: expectile regression toward the target networks' one-step values; (s', g) and (s, g) in one call
        with torch.no_grad():
            (nv1, tv1), (nv2, tv2) = (v.chunk(2) for v in self._pair(self.targets, torch.cat([s2, s]), torch.cat([g, g])))
            adv = r + c.gamma * m * torch.minimum(nv1, nv2) - 0.5 * (tv1 + tv2)
            q1, q2 = r + c.gamma * m * nv1, r + c.gamma * m * nv2
        v1, v2 = self._pair(self.values, s, g)
        value_loss = expectile_loss(q1 - v1, c.expectile, adv) + expectile_loss(q2 - v2, c.expectile, adv)
        # actor: AWR on V(s', g_a) - V(s, g_a), both in one call
        next_v, v_now = self.value(torch.cat([s2, s]), torch.cat([ga, ga])).chunk(2)
        w = awr_weights(next_v - v_now, c.beta)
        actor_loss = (w * (torch.tanh(self.actor(s, ga)) - a).pow(2).sum(-1)).mean()
        loss = value_loss + actor_loss
        return loss, {"value_loss": value_loss.item(), "actor_loss": actor_loss.item(), "v_mean": v1.mean().item(),
                      "adv_mean": adv.mean().item(), "weight_mean": w.mean().item()}

    def after_step(self) -> None:
        polyak_update(self.targets, self.values, self.config.polyak)

    def act(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs, goal))
