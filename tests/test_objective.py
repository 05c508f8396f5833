"""Planning objectives that reward arriving early ("arrive", "min") and the gradient planner."""

import math

import numpy as np
import pytest
import torch

from eval.baselines.scripted import oracle_steps
from jepa_agent.agent import JEPAAgent
from jepa_agent.analytic import TruePositionModel
from jepa_agent.planners import MPPIPlanner, PlannerConfig, make_planner
from tworooms_env import core


def path_latents(xs, wall_x=32, door_y=18):
    """Imagined latents [1, L + 1, 4] of a dot moving along x at y = 30 (analytic model's latent)."""
    x = torch.tensor(xs, dtype=torch.float32)
    z = torch.stack([x, torch.full_like(x, 30.0), torch.full_like(x, wall_x), torch.full_like(x, door_y)], dim=-1)
    return z[None]


def cost_of(z_seq, goal_x, **cfg):
    planner = MPPIPlanner(PlannerConfig(**cfg))
    goal = path_latents([goal_x])[:, 0]
    last = torch.tensor([z_seq.shape[1] - 1])
    return float(planner._sequence_cost(TruePositionModel(walls=False), z_seq, goal, last)[0])


def test_arrive_cost_follows_its_formula_and_reduces_to_last():
    z = path_latents([0.0, 4.0, 9.0, 10.0, 12.0, 10.0])  # d to x = 10: 6, 1, 0, 2, 0
    # min_t [max(max_{s >= t} d_s - eps, 0) + lam t]; suffix max of d: 6, 2, 2, 2, 0
    lam, eps = 0.3, 1.5
    expected = min(max(m - eps, 0.0) + lam * t for t, m in enumerate([6, 2, 2, 2, 0], start=1))
    assert cost_of(z, 10.0, cost="arrive", time_penalty=lam, arrive_radius=eps) == pytest.approx(expected)
    assert cost_of(z, 10.0, cost="arrive", time_penalty=0, arrive_radius=0) == pytest.approx(cost_of(z, 10.0, cost="last")) == 0.0
    # "min" does not ask the plan to stay: the first time within eps counts
    expected_min = min(max(d - eps, 0.0) + lam * t for t, d in enumerate([6, 1, 0, 2, 0], start=1))
    assert cost_of(z, 10.0, cost="min", time_penalty=lam, arrive_radius=eps) == pytest.approx(expected_min)


def test_stop_cost_scores_segment_ends_and_stills_arrived_samples():
    model = TruePositionModel(walls=False)
    planner = MPPIPlanner(PlannerConfig(cost="stop", time_penalty=0.1, arrive_radius=1.0, segment_length=2))
    goal = path_latents([10.0])[:, 0]
    z = path_latents([0.0, 3.0, 6.0, 8.0, 9.5, 12.0, 14.0])  # segment ends at steps 2, 4, 6: d = 4, 0.5, 4
    cost, stop = planner._sequence_cost(model, z, goal, torch.tensor([6]), return_stop=True)
    # min over ends of max(d - 1, 0) + 0.1 t = min(3.2, 0.4, 3.6)
    assert cost.item() == pytest.approx(0.4) and stop.tolist() == [1]
    never = path_latents([0.0, 2.0, 4.0, 6.0, 7.0, 7.0, 7.5])  # ends: d = 6, 3, 2.5, never within 1
    cost_never, stop_never = planner._sequence_cost(model, never, goal, torch.tensor([6]), return_stop=True)
    assert cost_never.item() == pytest.approx(min(5.2, 2.4, 2.1)) and stop_never.tolist() == [3]  # 3: no standing still
    # an arrived sample stands still after its stopping segment, one that does not arrive keeps moving
    samples = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])[:, None, :].expand(2, 3, 2)[None]  # [E=1, N=2, S=3, 2]
    z0, zg = path_latents([20.0])[:, 0], path_latents([24.0])[:, 0]  # sample 0 is at x = 24 after segment 1
    costs, stilled = planner._costs(model, z0, zg, samples, 6, 1, torch.tensor([6]))
    assert stilled[0, 0, :2].equal(samples[0, 0, :2]) and stilled[0, 0, 2].eq(0.0).all()
    assert stilled[0, 1].equal(samples[0, 1]) and costs[0, 0].item() == pytest.approx(0.4) and costs[0, 1] > costs[0, 0]


def test_arrive_slope_widens_the_goal_region_with_the_steps_ahead():
    model = TruePositionModel(walls=False)
    goal = path_latents([10.0])[:, 0]
    z = path_latents([0.0, 3.0, 6.0, 8.0, 9.5, 12.0, 14.0])  # segment ends at steps 2, 4, 6: d = 4, 0.5, 4
    cfg = dict(cost="stop", time_penalty=0.1, arrive_radius=1.0, segment_length=2)
    # radius 1 + 0.25 (t - 2) at the ends t = 2, 4, 6: 1.0, 1.5, 2.0 -> max(d - r, 0) + 0.1 t = 3.2, 0.4, 2.6
    cost, stop = MPPIPlanner(PlannerConfig(**cfg, arrive_slope=0.25))._sequence_cost(
        model, z, goal, torch.tensor([6]), return_stop=True)
    assert cost.item() == pytest.approx(0.4) and stop.tolist() == [1]
    # the first segment end keeps the base radius however steep the slope: 4 - 1 + 0.2 = 3.2 there
    steep = MPPIPlanner(PlannerConfig(**cfg, arrive_slope=10.0))
    d_first = steep._sequence_cost(model, z[:, :3], goal, torch.tensor([2]))
    assert d_first.item() == pytest.approx(3.2)
    # "min" per latent (segments of 1 step): radius 1 + 0.5 (t - 1) at t = 1..5, d = 6, 1, 0, 2, 0
    z_min = path_latents([0.0, 4.0, 9.0, 10.0, 12.0, 10.0])
    expected = min(max(d - (1.0 + 0.5 * (t - 1)), 0.0) + 0.3 * t for t, d in enumerate([6, 1, 0, 2, 0], start=1))
    assert cost_of(z_min, 10.0, cost="min", time_penalty=0.3, arrive_radius=1.0, arrive_slope=0.5,
                   segment_length=1) == pytest.approx(expected)
    with pytest.raises(ValueError, match="arrive_slope"):
        PlannerConfig(arrive_slope=-0.1)


def test_arrive_cost_prefers_early_arrival_and_staying():
    early = path_latents([0.0, 10.0, 10.0, 10.0, 10.0])
    late = path_latents([0.0, 2.0, 4.0, 6.0, 10.0])
    leaves = path_latents([0.0, 10.0, 10.0, 4.0, 0.0])  # at the goal early, gone at the end
    cfg = dict(cost="arrive", time_penalty=0.1, arrive_radius=1.0)
    assert cost_of(early, 10.0, **cfg) < cost_of(late, 10.0, **cfg) < cost_of(leaves, 10.0, **cfg)
    assert cost_of(early, 10.0, cost="last") == cost_of(late, 10.0, cost="last")  # why "last" dawdles


def test_arrive_cost_ignores_latents_past_each_episodes_horizon():
    planner = MPPIPlanner(PlannerConfig(cost="arrive", time_penalty=0.1, arrive_radius=0.0))
    z = torch.cat([path_latents([0.0, 10.0, 0.0]), path_latents([0.0, 10.0, 0.0])])
    goal = path_latents([10.0])[:, 0].expand(2, -1)
    cost = planner._sequence_cost(TruePositionModel(walls=False), z, goal, torch.tensor([1, 2]))
    assert cost[0] == pytest.approx(0.1)  # horizon 1 step: at the goal at t = 1
    assert cost[1] == pytest.approx(10.0 + 0.1)  # horizon 2 steps: it leaves, so the suffix max is 10


def test_option_errors():
    with pytest.raises(ValueError, match="time_penalty"):
        PlannerConfig(time_penalty=-1.0)
    with pytest.raises(ValueError, match="arrive_radius"):
        PlannerConfig(arrive_radius="wide")
    with pytest.raises(ValueError, match="grad_lr"):
        PlannerConfig(grad_lr=0.0)
    for name in ("mppi-arrive", "cem-min", "mppi-stop", "grad", "grad-last"):
        assert make_planner(name).name in ("mppi", "cem", "grad")


FAR_DOOR_TASKS = [  # (start, goal, wall_x, door_y): the straight line is blocked, the door far from it
    ((15.0, 50.0), (50.0, 50.0), 32, 10),
    ((12.0, 12.0), (45.0, 15.0), 30, 52),
    ((48.0, 40.0), (14.0, 48.0), 34, 12),
]


def _closed_loop_steps(cfg: PlannerConfig, max_steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Steps to success on FAR_DOOR_TASKS with the true dynamics (replanning every 10 steps), and the oracle's."""
    model = TruePositionModel(walls=True)
    start = np.array([t[0] for t in FAR_DOOR_TASKS])
    goal = np.array([t[1] for t in FAR_DOOR_TASKS])
    wall_x = np.array([t[2] for t in FAR_DOOR_TASKS], dtype=np.float64)
    door_y = np.array([t[3] for t in FAR_DOOR_TASKS], dtype=np.float64)
    planner = MPPIPlanner(cfg)
    layout = torch.tensor(np.stack([wall_x, door_y], axis=1), dtype=torch.float32)
    zg = torch.cat([torch.tensor(goal, dtype=torch.float32), layout], dim=1)
    pos, plan, first = start.copy(), None, np.zeros(len(start), dtype=int)
    for t in range(0, max_steps, 10):
        z0 = torch.cat([torch.tensor(pos, dtype=torch.float32), layout], dim=1)
        plan = planner.plan(model, z0, zg, max_steps - t, warm_start=None if plan is None else plan[:, 10:])
        for j in range(10):
            pos, _ = core.step_positions(pos, plan[:, j].numpy(), wall_x, door_y)
            hit = (first == 0) & (np.linalg.norm(pos - goal, axis=1) < core.SUCCESS_RADIUS)
            first[hit] = t + j + 1
        if first.all():
            break
    return first, oracle_steps(start, goal, wall_x, door_y)


def test_stop_objective_reaches_far_door_goals_much_sooner_than_last():
    """Closed loop with the true dynamics on tasks whose door is far from the straight line: the
    "stop" objective arrives within 2.5x the oracle's steps on each task (1.3-2.2x here), the
    last-step cost takes more than twice as long in total."""
    stop, oracle = _closed_loop_steps(PlannerConfig(cost="stop", time_penalty=0.01, arrive_radius=0.5,
                                                    drop_segments=True, execute_retimed=False, seed=0))
    assert np.all(stop > 0), f"not reached: {stop.tolist()}"
    assert np.all(stop <= 2.5 * oracle), f"steps {stop.tolist()} vs oracle {oracle.tolist()}"
    last, _ = _closed_loop_steps(PlannerConfig(cost="last", drop_segments=False, execute_retimed=False, seed=0))  # 0.1's default
    last = np.where(last > 0, last, 200)
    assert last.sum() > 2 * stop.sum(), f"stop {stop.tolist()} vs last {last.tolist()}"


def test_execute_retimed_walks_the_planned_route_at_full_speed():
    """``execute_retimed``: the same search (same seed, same mean), the returned actions walk its
    route at the env's full speed per step and end where the slow plan ends."""
    model = TruePositionModel(walls=False)
    z0 = torch.tensor([[10.0, 10.0, 32, 18], [50.0, 40.0, 32, 18]])
    zg = torch.tensor([[30.0, 25.0, 32, 18], [20.0, 15.0, 32, 18]])
    cfg = PlannerConfig(num_samples=64, num_elites=8, iterations_first=4, horizon=40, seed=0)
    slow = MPPIPlanner(cfg, execute_retimed=False).plan(model, z0, zg, 40)
    fast = MPPIPlanner(cfg).plan(model, z0, zg, 40)  # the default
    assert fast.shape == slow.shape
    assert torch.allclose(fast.sum(dim=1), slow.sum(dim=1), atol=1e-3)  # the same end point (open field)
    assert fast.norm(dim=-1).max() <= core.MAX_STEP_NORM + 1e-5
    for e in range(2):
        path = float(slow[e].norm(dim=-1).sum())  # px along the planned route
        moving = int((fast[e].norm(dim=-1) > 1e-4).sum())
        # full speed but at the corners, where a step is the chord across: ceil(path / 2.45) steps and one
        assert moving <= min(math.ceil(path / core.MAX_STEP_NORM) + 1, int((slow[e].norm(dim=-1) > 1e-4).sum()))
    assert int((fast[0].norm(dim=-1) > 1e-4).sum()) < int((slow[0].norm(dim=-1) > 1e-4).sum())  # a slow plan, sped up
    grad = make_planner("grad", cfg, execute_retimed=True, grad_steps=2).plan(model, z0, zg, 40)
    assert grad.norm(dim=-1).max() <= core.MAX_STEP_NORM + 1e-5


def test_execute_retimed_reaches_far_door_goals_within_1_5x_the_oracle():
    """Closed loop with the true dynamics on the far-door tasks, the default planner (it executes
    its route at full speed): every task within 2.5x the oracle's steps, the median within 1.5x (planner
    seed 0: 2.06x, 1.37x, 1.24x; the per-seed median over planner seeds 0-4 is 1.26-1.63x, and on
    50 tasks of development seed 1 the median is 1.27x, docs/experiments/planning-objective.md)."""
    steps, oracle = _closed_loop_steps(PlannerConfig(seed=0))  # the default: execute_retimed
    assert np.all(steps > 0), f"not reached: {steps.tolist()}"
    ratio = steps / oracle
    assert np.all(ratio <= 2.5) and np.median(ratio) <= 1.5, f"steps {steps.tolist()} vs oracle {oracle.tolist()}"


def test_grad_planner_lowers_the_cost_on_a_known_model():
    model = TruePositionModel(walls=False)  # differentiable: clamp and clip
    z0 = torch.tensor([[10.0, 10.0, 32, 18], [50.0, 40.0, 32, 18]])
    zg = torch.tensor([[30.0, 25.0, 32, 18], [20.0, 15.0, 32, 18]])
    cfg = PlannerConfig(num_samples=16, num_elites=4, iterations_first=1, horizon=20, segment_length=5,
                        grad_steps=25, grad_lr=0.5, cost="last", seed=0)
    for seed_iterations in (0, 1):
        planner = make_planner("grad", cfg, grad_seed_iterations=seed_iterations)
        plan = planner.plan_with_info(model, z0, zg, 20, return_latents=True)
        assert plan.stats["final_cost"] < 0.5 * plan.stats["seed_cost"]
        assert plan.actions.shape == (2, 20, 2) and plan.actions.norm(dim=-1).max() <= core.MAX_STEP_NORM + 1e-5
        end = plan.latents[:, -1, :2]
        assert (end - zg[:, :2]).norm(dim=-1).max() < 1.5
    stop = make_planner("grad", cfg, cost="stop", grad_seed_iterations=0).plan_with_info(model, z0, zg, 20)
    assert stop.stats["final_cost"] < 0.5 * stop.stats["seed_cost"]
    a = make_planner("grad", cfg).plan(model, z0, zg, 20)
    b = make_planner("grad", cfg).plan(model, z0, zg, 20)
    assert torch.equal(a, b)  # seeded


def test_grad_planner_in_the_agent_and_its_error_on_a_non_differentiable_model():
    agent = JEPAAgent(TruePositionModel(walls=False), planner="grad", num_samples=16, num_elites=4, horizon=20,
                      iterations_first=2, grad_steps=3, segment_length=5)
    obs = np.zeros((2, 65, 65), dtype=np.uint8)
    obs[0, 30:33, 10:13] = 255
    goal = np.zeros_like(obs)
    goal[0, 30:33, 40:43] = 255
    assert agent.act(obs, goal).shape == (2,)
    walls = TruePositionModel(walls=True)
    z = torch.tensor([[10.0, 10.0, 32, 18]])
    with pytest.raises(TypeError, match="differentiable"):
        make_planner("grad", PlannerConfig(num_samples=8, num_elites=2, horizon=10, iterations_first=1)).plan(walls, z, z, 10)


def test_calibration_of_the_true_dynamics_is_one_latent_unit_per_px():
    from eval.calibrate import format_calibration, latent_distance_scale

    result = latent_distance_scale(TruePositionModel(walls=True), seed=0, tasks=8)
    for row in result["bins"]:
        if row["n"] and row["px"][0] >= 2.0:  # the true model's latent is the position in px
            assert row["encoded_per_px"] == pytest.approx(1.0, abs=0.05)
            assert row["imagined_per_px"] == pytest.approx(1.0, abs=0.05)
    assert all(r["imagined_median"] < 4.5 for r in result["arrival"] if r["n"])  # no drift: within the success radius
    assert "per px" in format_calibration(result)
