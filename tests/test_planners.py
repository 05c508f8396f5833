"""Planners (MPPI, CEM) with analytic world models: goals reached, formulae, warm start, seeding."""

import math

import numpy as np
import pytest
import torch

from jepa_agent.analytic import TruePositionModel
from jepa_agent.planners import (
    CEMPlanner, MPPIPlanner, PlannerConfig, clip_norm, make_planner, mppi_weights, shift_plan,
)
from tworooms_env import core

FAST = dict(num_samples=64, num_elites=8, iterations_first=8, iterations_later=2, horizon=30, segment_length=5)


def latents(points, wall_x=32, door_y=18):
    """z = (x, y, wall_x, door_y) for the analytic model."""
    p = torch.tensor(points, dtype=torch.float32)
    layout = torch.tensor([[wall_x, door_y]], dtype=torch.float32).expand(len(p), 2)
    return torch.cat([p, layout], dim=1)


class CountingModel(TruePositionModel):
    """Open-field model that counts unroll calls and horizon steps (= predictor calls)."""

    def __init__(self, action_chunk=1):
        super().__init__(walls=False)
        self.action_chunk = action_chunk
        self.calls, self.steps, self.batch = 0, 0, []

    def unroll(self, z0, actions):
        assert actions.shape[1] % self.action_chunk == 0, "planner must pad to the chunk"
        self.calls += 1
        self.steps += actions.shape[1] // self.action_chunk
        self.batch.append(actions.shape[0])
        z = super().unroll(z0, actions)
        return z[:, :: self.action_chunk]


@pytest.mark.parametrize("cls", [MPPIPlanner, CEMPlanner])
@pytest.mark.parametrize("cost", ["last", "sum", "stop"])
def test_reaches_open_field_goals(cls, cost):
    model = TruePositionModel(walls=False)
    z0 = latents([[10.0, 10.0], [50.0, 40.0], [30.0, 50.0]])
    zg = latents([[30.0, 25.0], [20.0, 15.0], [45.0, 30.0]])
    planner = cls(PlannerConfig(**FAST, cost=cost, seed=0))
    plan = planner.plan_with_info(model, z0, zg, steps_left=30, return_latents=True)
    dist = (plan.latents[:, :, :2] - zg[:, None, :2]).norm(dim=-1)  # [E, H + 1]
    # last-step cost: the plan ends at the goal; summed cost: it gets there (coarse segments may
    # drift after, which replanning corrects)
    reached = dist[:, -1] if cost == "last" else dist.min(dim=1).values
    assert reached.max() < 2.0
    assert plan.actions.shape == (3, 30, 2)
    assert plan.actions.norm(dim=-1).max() <= core.MAX_STEP_NORM + 1e-5


def test_crosses_the_door_with_true_dynamics():
    """Closed loop with replanning on a task where the straight line is blocked by the wall."""
    model = TruePositionModel(walls=True)
    wall_x, door_y = 32, 10
    pos, goal = np.array([[15.0, 50.0]]), np.array([[50.0, 50.0]])
    planner = MPPIPlanner(PlannerConfig(num_samples=128, num_elites=16, iterations_first=12, iterations_later=3,
                                        horizon=90, segment_length=10, seed=0))
    zg = latents(goal.tolist(), wall_x, door_y)
    plan, steps = None, 10
    for t in range(0, 200, steps):
        z0 = latents(pos.tolist(), wall_x, door_y)
        plan = planner.plan(model, z0, zg, 200 - t, warm_start=None if plan is None else shift_plan(plan, steps))
        for j in range(steps):
            pos, _ = core.step_positions(pos, plan[:, j].numpy(), wall_x, door_y)
    assert np.linalg.norm(pos - goal) < core.SUCCESS_RADIUS


def test_mppi_weights_follow_the_formula():
    costs = torch.tensor([[3.0, 1.0, 2.0, 5.0]])
    tau = 0.7
    expected = torch.exp(-(costs - 1.0) / tau)
    assert torch.allclose(mppi_weights(costs, tau), expected / expected.sum())
    # the reference code's variant (docs/reference.md#mppi-as-the-reference-runs-it)
    expected_mul = torch.exp(-tau * (costs - 1.0))
    assert torch.allclose(mppi_weights(costs, tau, "multiply"), expected_mul / expected_mul.sum())
    gap = (costs - 1.0) / 4.0
    assert torch.allclose(mppi_weights(costs, tau, normalize=True), torch.exp(-gap / tau) / torch.exp(-gap / tau).sum())


def test_mppi_refit_is_the_weighted_mean_and_std():
    planner = MPPIPlanner(PlannerConfig(temperature=0.5, normalize_costs=False))
    costs = torch.tensor([[0.0, 1.0]])
    elites = torch.tensor([[[[1.0, 0.0]], [[3.0, 2.0]]]])  # [E=1, Q=2, S=1, 2]
    mean, std, w = planner._refit(costs, elites)
    w_expected = torch.tensor([1.0, math.exp(-2.0)]) / (1.0 + math.exp(-2.0))
    assert torch.allclose(w[0], w_expected)
    assert torch.allclose(mean[0, 0], (w_expected[:, None] * elites[0, :, 0]).sum(0))
    var = (w_expected[:, None] * (elites[0, :, 0] - mean[0, 0]) ** 2).sum(0)
    assert torch.allclose(std[0, 0], var.sqrt())


def test_warm_start_shifts_the_plan():
    plan = torch.arange(2 * 6 * 2, dtype=torch.float32).reshape(2, 6, 2)
    assert torch.equal(shift_plan(plan, 2), plan[:, 2:])
    planner = MPPIPlanner(PlannerConfig(segment_length=1, horizon=6, warm_std=0.5))
    mean, std, warm = planner._initial_distribution(2, 6, shift_plan(plan, 2), None)
    assert warm.tolist() == [True, True]
    assert torch.equal(mean[:, :4], plan[:, 2:])  # the rest of the old plan ...
    assert torch.equal(mean[:, 4:], torch.zeros(2, 2, 2))  # ... then stay put
    assert torch.all(std == 0.5)
    seg = MPPIPlanner(PlannerConfig(segment_length=2, horizon=6))
    mean, _, _ = seg._initial_distribution(2, 3, shift_plan(plan, 2), None)
    assert torch.allclose(mean[:, 0], plan[:, 2:4].mean(dim=1))  # segments average their steps


def test_warm_start_uses_later_iteration_count_and_keeps_a_good_plan():
    model = CountingModel()
    cfg = PlannerConfig(**{**FAST, "iterations_first": 6, "iterations_later": 2}, execute="best")
    planner = MPPIPlanner(cfg)
    z0, zg = latents([[10.0, 10.0]]), latents([[30.0, 30.0]])
    first = planner.plan_with_info(model, z0, zg, 30)
    assert model.calls == 6
    z1 = model.unroll(z0, first.actions[:, :5])[:, -1]
    model.calls = 0
    second = planner.plan_with_info(model, z1, zg, 25, warm_start=shift_plan(first.actions, 5))
    assert model.calls == 2
    assert second.cost.item() <= first.cost.item() + 1e-4  # the warm start is one of the samples


def test_cold_episodes_refine_longer_than_warm_ones_in_one_batch():
    model = CountingModel()
    cfg = PlannerConfig(**{**FAST, "iterations_first": 5, "iterations_later": 2})
    planner = MPPIPlanner(cfg)
    z0, zg = latents([[10.0, 10.0]] * 3), latents([[30.0, 30.0]] * 3)
    first = planner.plan_with_info(model, z0, zg, 30)
    model.calls, model.batch = 0, []
    mask = torch.tensor([True, False, True])  # the middle episode restarts cold
    second = planner.plan_with_info(model, z0, zg, 30, warm_start=first.actions, warm_mask=mask)
    assert second.iterations == 5 and model.calls == 5
    n = FAST["num_samples"]
    assert model.batch == [3 * n, 3 * n, n, n, n]  # after 2 iterations only the cold episode is unrolled
    assert second.actions.shape == (3, 30, 2) and torch.isfinite(second.cost).all()
    # the mix does not change the warm episodes' sampling stream: same plans as an all-warm batch
    planner.reseed(3)
    mixed = planner.plan(model, z0, zg, 30, warm_start=first.actions, warm_mask=mask)
    planner.reseed(3)
    warm = planner.plan(model, z0, zg, 30, warm_start=first.actions)
    assert torch.equal(mixed[[0, 2]], warm[[0, 2]])


def test_horizon_is_min_of_h_and_steps_left_and_one_call_per_step():
    model = CountingModel()
    planner = MPPIPlanner(PlannerConfig(**FAST))
    z0 = latents([[10.0, 10.0]] * 3)
    zg = latents([[20.0, 20.0]] * 3)
    actions = planner.plan(model, z0, zg, steps_left=7)
    assert actions.shape == (3, 7, 2)
    assert model.steps == FAST["iterations_first"] * 7
    assert set(model.batch) == {3 * FAST["num_samples"]}  # episodes x samples in one batch
    assert planner.plan(model, z0, zg, steps_left=500).shape == (3, 30, 2)


def test_per_episode_steps_left_and_chunked_models():
    model = CountingModel(action_chunk=5)
    planner = MPPIPlanner(PlannerConfig(**{**FAST, "segment_length": 5}))
    z0, zg = latents([[10.0, 10.0]] * 2), latents([[14.0, 12.0]] * 2)
    actions = planner.plan(model, z0, zg, steps_left=torch.tensor([13, 4]))
    assert actions.shape == (2, 13, 2)
    assert model.steps == FAST["iterations_first"] * 3  # 13 steps padded to 15 = 3 chunks


def test_seeded_determinism():
    model = TruePositionModel(walls=False)
    z0, zg = latents([[10.0, 10.0]]), latents([[40.0, 30.0]])
    a = MPPIPlanner(PlannerConfig(**FAST, seed=3)).plan(model, z0, zg, 30)
    b = MPPIPlanner(PlannerConfig(**FAST, seed=3)).plan(model, z0, zg, 30)
    c = MPPIPlanner(PlannerConfig(**FAST, seed=4)).plan(model, z0, zg, 30)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_reference_options_run():
    model = TruePositionModel(walls=False)
    z0, zg = latents([[10.0, 10.0]]), latents([[20.0, 20.0]])
    cfg = PlannerConfig.reference_mppi(horizon=10, num_samples=32, iterations_first=2, iterations_later=2)
    actions = MPPIPlanner(cfg).plan(model, z0, zg, 10)
    assert actions.shape == (1, 10, 2)
    for name in ("mppi", "cem", "mppi-last", "mppi-sum", "cem-sum", "mppi-stop", "grad"):
        assert make_planner(name, PlannerConfig(**FAST)).plan(model, z0, zg, 10).shape == (1, 10, 2)


def test_clip_norm():
    a = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    out = clip_norm(a, 2.45)
    assert torch.allclose(out.norm(dim=-1), torch.tensor([2.45, 0.5, 0.0]))


def test_errors():
    with pytest.raises(ValueError, match="num_elites"):
        PlannerConfig(num_samples=4, num_elites=8)
    with pytest.raises(ValueError, match="cost"):
        PlannerConfig(cost="median")
    with pytest.raises(ValueError, match="unknown planner option"):
        PlannerConfig.from_dict({"samples": 3})
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("ilqr")
    planner = MPPIPlanner(PlannerConfig(**FAST))

    class NoUnroll:
        def encode(self, x):
            return x

    with pytest.raises(TypeError, match="unroll"):
        planner.plan(NoUnroll(), latents([[1.0, 1.0]]), latents([[1.0, 1.0]]), 5)
    with pytest.raises(ValueError, match=r"\[E, D\]"):
        planner.plan(TruePositionModel(), latents([[1.0, 1.0]]), latents([[1.0, 1.0]] * 2), 5)
    with pytest.raises(ValueError, match="steps_left"):
        planner.plan(TruePositionModel(), latents([[1.0, 1.0]]), latents([[1.0, 1.0]]), 0)


def test_planner_config_rejects_unknown_distance_and_temperature_mode():
    from jepa_agent.planner_config import PlannerConfig as Config

    assert Config is PlannerConfig  # jepa_agent.planners re-exports it
    with pytest.raises(ValueError, match="distance must be one of"):
        Config(distance="l1")
    with pytest.raises(ValueError, match="temperature_mode must be one of"):
        Config(temperature_mode="add")
