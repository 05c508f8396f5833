"""HIQL: hierarchical implicit Q-learning (Park et al. 2023), as in OGBench.

One action-free goal-conditioned value function and two policies extracted from it with AWR.

Value (IQL in value space, "GCIVL"): a goal representation phi(s, g) in R^d (normalised to norm
sqrt(d)) and two heads V_j(s, phi(s, g)) with Polyak target copies Vbar_j. Value goals are the
0.2 / 0.5 / 0.3 mixture of :mod:`eval.baselines.relabel`; r = 0 at the goal else -1, mask m::

    q_j = r + gamma m Vbar_j(s', g),    A = r + gamma m min_j Vbar_j(s', g) - mean_j Vbar_j(s, g)
    L_V = sum_j E[ |tau - 1(A < 0)| (q_j - V_j(s, g))^2 ]

Policies, with subgoal s_{t+k} (k = ``subgoal_steps``, clipped to the trajectory's end), the high
level's subgoal s_h = s_{min(t+k, t_g)} (never past its goal g = s_{t_g}) and the online value
V = mean_j V_j (no gradient into V from the policies)::

    low level:   pi_lo(s, z) -> a,  z = phi(s, s_{t+k})
                 L_lo = E[ exp(beta_lo (V(s', s_{t+k}) - V(s, s_{t+k}))) || pi_lo(s, z) - a ||^2 ]
    high level:  pi_hi(s, g) -> z,  g = future state (actor mixture: uniform, same trajectory)
                 L_hi = E[ exp(beta_hi (V(s_h, g) - V(s, g))) || pi_hi(s, g) - phi(s, s_h) ||^2 ]

(weights clipped at 100; squared errors are fixed-variance Gaussian log-likelihoods). Acting:
z = normalise(pi_hi(s, g)), a = pi_lo(s, z). Defaults: OGBench's (tau 0.7, beta 3, d = 10);
k = 15 here (OGBench uses 25 on trajectories of 1000 steps; these hold 91 states).

``low_actor_rep_grad`` (default on; OGBench's state-based default is off): L_lo also trains phi.
phi trained by the value alone need only keep how far the goal is, not where: the low level then
cannot tell which way its subgoal lies (on the one layout of `k1`, 30 minutes: 16.5 % with it off,
100.0 % with it on; docs/experiments/offline-gcrl.md).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from eval.baselines.offline import BatchSpec, GoalNet, OfflineMethod, awr_weights, expectile_loss, polyak_update
from eval.baselines.relabel import ACTOR_MIXTURE, VALUE_MIXTURE


@dataclass
class HIQLConfig:
    features: str = "profile"
    hidden: tuple[int, ...] = (256, 256, 256)
    feat_dim: int = 128
    rep_dim: int = 10
    subgoal_steps: int = 15
    gamma: float = 0.99
    expectile: float = 0.7
    beta_low: float = 3.0
    beta_high: float = 3.0
    polyak: float = 0.005
    low_actor_rep_grad: bool = True  # the low level's loss also trains phi (OGBench: off for states, on for pixels)

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.subgoal_steps < 1 or self.rep_dim < 1:
            raise ValueError(f"need subgoal_steps >= 1 and rep_dim >= 1, got {self.subgoal_steps}, {self.rep_dim}")


def normalise(z: torch.Tensor) -> torch.Tensor:
    """z / ||z|| * sqrt(d): representations on a sphere of fixed radius."""
    return z / z.norm(dim=-1, keepdim=True).clamp(min=1e-6) * math.sqrt(z.shape[-1])


class GoalValue(nn.Module):
    """V_j(s, phi(s, g)) for j = 1, 2, sharing the goal representation phi."""

    def __init__(self, c: HIQLConfig) -> None:
        super().__init__()
        self.phi = GoalNet(c.features, c.rep_dim, c.hidden, c.feat_dim)
        self.heads = nn.ModuleList(GoalNet(c.features, 1, c.hidden, c.feat_dim, use_goal=False, d_extra=c.rep_dim) for _ in range(2))

    def rep(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """normalise(phi(s, g)), in float32 even under bf16 autocast: at initialisation phi hardly
        depends on the goal, and bf16 hidden layers round that dependence away, so the value never
        learns to read the goal (a bf16 phi gave V = -1.7 for every pair on the `k1` file after
        38,267 steps, 0 % success: docs/experiments/offline-gcrl.md)."""
        with torch.autocast(obs.device.type, enabled=False):
            return normalise(self.phi(obs.float(), goal.float()))

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.rep(obs, goal)
        return tuple(head(obs, None, z).squeeze(-1) for head in self.heads)


class HIQL(OfflineMethod):
    name = "hiql"
    Config = HIQLConfig

    def __init__(self, config: HIQLConfig) -> None:
        super().__init__(config)
        c = config
        self.value = GoalValue(c)
        self.value_target = copy.deepcopy(self.value)
        for p in self.value_target.parameters():
            p.requires_grad_(False)
        self.low_actor = GoalNet(c.features, 2, c.hidden, c.feat_dim, use_goal=False, d_extra=c.rep_dim)
        self.high_actor = GoalNet(c.features, c.rep_dim, c.hidden, c.feat_dim)

    def batch_spec(self) -> BatchSpec:
        return BatchSpec(value=VALUE_MIXTURE, actor=ACTOR_MIXTURE, gamma=self.config.gamma, subgoal_steps=self.config.subgoal_steps)

    def v(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Online value mean_j V_j(s, g), no gradient (for the policies' advantages)."""
        with torch.no_grad():
            v1, v2 = self.value(obs, goal)
            return 0.5 * (v1 + v2)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        s, s2, a, g = batch["obs"], batch["next_obs"], batch["actions"], batch["value_goals"]
        sg, ga = batch["subgoals"], batch["actor_goals"]
        hg = batch["high_subgoals"]  # s_{min(t + k, t_g)}: the high level's target for goal g_a
        r, m = batch["rewards"], batch["masks"]
        # value: expectile regression in value space, the sign of the target-network advantage
        with torch.no_grad():
            (nv1, tv1), (nv2, tv2) = (v.chunk(2) for v in self.value_target(torch.cat([s2, s]), torch.cat([g, g])))
            adv = r + c.gamma * m * torch.minimum(nv1, nv2) - 0.5 * (tv1 + tv2)
            q1, q2 = r + c.gamma * m * nv1, r + c.gamma * m * nv2
        v1, v2 = self.value(s, g)
        value_loss = expectile_loss(q1 - v1, c.expectile, adv) + expectile_loss(q2 - v2, c.expectile, adv)
        # the policies' advantages, the four values in one call: V(s', sg), V(s, sg), V(hg, g_a), V(s, g_a)
        v_next_sub, v_sub, v_sub_goal, v_goal = self.v(torch.cat([s2, s, hg, s]), torch.cat([sg, sg, ga, ga])).chunk(4)
        with torch.set_grad_enabled(c.low_actor_rep_grad):  # with it, phi must keep where sg is
            z_sub = self.value.rep(s, sg)  # phi(s, sg)
        with torch.no_grad():
            z_high = self.value.rep(s, hg)  # phi(s, hg)
        # low-level policy toward the subgoal s_{t+k}, AWR on V(s', s_{t+k}) - V(s, s_{t+k})
        w_lo = awr_weights(v_next_sub - v_sub, c.beta_low)
        low_loss = (w_lo * (torch.tanh(self.low_actor(s, None, z_sub)) - a).pow(2).sum(-1)).mean()
        # high-level policy: predict phi(s, s_h) for goal g_a, AWR on V(s_h, g_a) - V(s, g_a)
        w_hi = awr_weights(v_sub_goal - v_goal, c.beta_high)
        high_loss = (w_hi * (self.high_actor(s, ga) - z_high).pow(2).sum(-1)).mean()
        loss = value_loss + low_loss + high_loss
        return loss, {"value_loss": value_loss.item(), "low_actor_loss": low_loss.item(), "high_actor_loss": high_loss.item(),
                      "v_mean": v1.mean().item(), "weight_low_mean": w_lo.mean().item(), "weight_high_mean": w_hi.mean().item()}

    def after_step(self) -> None:
        polyak_update(self.value_target, self.value, self.config.polyak)

    def act(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        z = normalise(self.high_actor(obs, goal))
        return torch.tanh(self.low_actor(obs, None, z))
