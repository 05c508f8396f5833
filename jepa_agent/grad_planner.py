"""Gradient-based planning: Adam on the action segments through a differentiable world model.

The planning cost (any ``PlannerConfig.cost``) is a differentiable function of the segment actions
u [E, S, 2] whenever ``model.unroll`` is (the learned world models are; the open-field analytic
model is too; the analytic model with walls is not):

    u <- Adam(u, grad_u cost(unroll(z0, clip_norm(repeat_k(u)))))

Gradients alone do not find the door (the cost is flat or misleading behind the wall), so a plan
is first seeded by MPPI: ``iterations_first`` iterations for a cold plan (the global search), and
``grad_seed_iterations`` for a warm-started replan, where Adam then refines the seed. Each episode
optimises ``grad_candidates`` sequences (the seed and perturbations of it) in one batch and keeps
the lowest cost seen.

Usage::

    planner = make_planner("grad", PlannerConfig(grad_steps=20, grad_lr=0.3))
    actions = planner.plan(model, z0, z_goal, steps_left=200)
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from jepa_agent import planners as _p


class GradPlanner(_p.MPPIPlanner):
    """MPPI-seeded Adam on the segment actions; same interface as ``MPPIPlanner``."""

    name = "grad"

    def plan_with_info(
        self,
        model: Any,
        z0: torch.Tensor,
        z_goal: torch.Tensor,
        steps_left: int | torch.Tensor,
        warm_start: torch.Tensor | None = None,
        warm_mask: torch.Tensor | None = None,
        return_latents: bool = False,
    ) -> _p.Plan:
        """Optimise action sequences for E episodes (arguments as ``MPPIPlanner.plan_with_info``)."""
        _p.check_world_model(model)
        cfg = self.config
        z0, z_goal = self._check_latents(z0, z_goal)
        n_ep = z0.shape[0]
        h_max = int(self._horizons(steps_left, n_ep).max())
        k, chunk = cfg.segment_length, int(getattr(model, "action_chunk", 1) or 1)
        n_seg = math.ceil(h_max / k)
        seed_iterations = 0
        if cfg.grad_seed_iterations > 0:
            self.config = replace(cfg, iterations_later=cfg.grad_seed_iterations, execute_retimed=False)  # the seeding MPPI
            try:
                seed_plan = super().plan_with_info(model, z0, z_goal, steps_left, warm_start, warm_mask)
            finally:
                self.config = cfg
            seed = seed_plan.actions[:, ::k].clone()  # [E, S, 2]: the first step of each segment
            seed_iterations = seed_plan.iterations
        else:
            seed = self._initial_distribution(n_ep, n_seg, warm_start, warm_mask)[0]
        # leave inference mode's tensors behind: autograd needs ordinary ones
        z0, z_goal, seed = z0.clone(), z_goal.clone(), seed.clone()
        h_ep = self._horizons(steps_left, n_ep)
        last_idx = torch.div(h_ep + chunk - 1, chunk, rounding_mode="floor")

        c = cfg.grad_candidates
        noise = torch.randn((n_ep, c, n_seg, 2), generator=self.generator, device=self.device)
        noise[:, 0] = 0.0  # candidate 0 is the seed itself
        u = (seed[:, None] + 0.25 * cfg.init_std * noise).requires_grad_(True)  # [E, C, S, 2]
        optimiser = torch.optim.Adam([u], lr=cfg.grad_lr)
        best_u = u.detach().clone()
        best_cost = torch.full((n_ep, c), math.inf, device=self.device)
        z0_c, zg_c, last_c = (x.repeat_interleave(c, dim=0) for x in (z0, z_goal, last_idx))
        segments = torch.arange(n_seg, device=self.device)
        with torch.inference_mode(False), torch.enable_grad():
            for step in range(cfg.grad_steps + 1):
                a = _p.clip_norm(u, cfg.max_norm) if cfg.clip_norm else u
                actions = self._segments_to_steps(a, h_max).reshape(n_ep * c, h_max, 2)
                z_seq = self._unroll(model, z0_c, self._pad_to_chunk(actions, chunk))
                cost, stop = self._sequence_cost(model, z_seq, zg_c, last_c, return_stop=True)
                cost = cost.reshape(n_ep, c)
                if step == 0:
                    seed_cost = cost.detach()[:, 0]
                kept = a.detach()
                if stop is not None:  # "stop": a sequence that arrives stands still after its stopping segment
                    kept = kept * (segments[None, None, :] <= stop.reshape(n_ep, c)[:, :, None])[..., None]
                improved = cost.detach() < best_cost
                best_u = torch.where(improved[:, :, None, None], kept, best_u)
                best_cost = torch.where(improved, cost.detach(), best_cost)
                if step == cfg.grad_steps:
                    break
                if not cost.requires_grad:
                    raise TypeError(f"the grad planner needs a differentiable model.unroll; {type(model).__name__}'s "
                                    "output carries no gradient (use MPPI or CEM with it)")
                (u.grad,) = torch.autograd.grad(cost.sum(), u)  # episodes and candidates are independent
                optimiser.step()
        rows = torch.arange(n_ep, device=self.device)
        pick = best_cost.argmin(dim=1)
        actions = self._executed_steps(best_u[rows, pick], h_max)
        latents = None
        if return_latents:
            with torch.no_grad():
                latents = self._unroll(model, z0, self._pad_to_chunk(actions, chunk))
        self.predictor_calls += (cfg.grad_steps + 1) * math.ceil(h_max / chunk)
        return _p.Plan(
            actions=actions, cost=best_cost[rows, pick], latents=latents, iterations=seed_iterations + cfg.grad_steps,
            stats={"seed_cost": float(seed_cost.mean()), "final_cost": float(best_cost[rows, pick].mean())},
        )
