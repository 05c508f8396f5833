"""Offline goal-conditioned RL baselines: losses on hand-computed tensors, relabelling, tiny runs,
checkpoints, the agent interface and the data-tier check of eval.compare."""

from __future__ import annotations

import csv
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from eval import compare
from eval.agents import make_agent
from eval.baselines import relabel as rl
from eval.baselines.offline import (
    METHODS, BatchSpec, GoalNet, OfflineAgent, awr_weights, build_method, expectile_loss, infonce_loss, load_dataset,
    prepare_batch, read_checkpoint, sample_batch, save_checkpoint,
)
from eval.baselines.relabel import VALUE_MIXTURE
from tworooms_env.dataset import save_trajectories, sha256_file
from tworooms_env.random_walk import WalkConfig, generate_trajectories

TINY = {"hidden": (32, 32)}


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    traj = generate_trajectories(np.random.default_rng(0), 60, WalkConfig(length=31, wall_bump_rate=0.0))
    return save_trajectories(tmp_path_factory.mktemp("data") / "tiny.npz", traj, {"tier": "random"})


@pytest.fixture(scope="module")
def data(dataset_file):
    return load_dataset(dataset_file, split="all")


# ------------------------------------------------------------------------------ losses
def test_expectile_loss_on_hand_computed_values():
    diff = torch.tensor([2.0, -1.0])
    # weights |0.9 - 1(u < 0)| = [0.9, 0.1]: (0.9 * 4 + 0.1 * 1) / 2
    assert expectile_loss(diff, 0.9).item() == pytest.approx(1.85)
    # weights follow the sign of another tensor (HIQL's advantage): [0.1, 0.9] -> (0.1 * 4 + 0.9 * 1) / 2
    assert expectile_loss(diff, 0.9, sign_of=torch.tensor([-1.0, 1.0])).item() == pytest.approx(0.65)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (4 + 1) / 2)  # tau = 0.5: half the MSE


def _constant(net: torch.nn.Module, value: float) -> None:
    """Make a GoalNet output ``value`` everywhere (last layer: zero weights, bias = value)."""
    last = net.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)


def test_gcivl_value_and_actor_losses_on_hand_computed_values():
    m = build_method("gcivl", **TINY)
    for net, c in zip(m.targets, (-2.0, -4.0)):
        _constant(net, c)
    for net, c in zip(m.values, (-1.0, -3.0)):
        _constant(net, c)
    _constant(m.actor, 0.0)
    b, gamma, tau = 4, m.config.gamma, m.config.expectile
    frames = torch.zeros(b, 260)
    r = torch.tensor([0.0, -1.0, -1.0, -1.0])
    batch = {"obs": frames, "next_obs": frames, "value_goals": frames, "actor_goals": frames, "rewards": r,
             "masks": 1.0 + r, "actions": torch.tensor([[0.5, 0.0]] * b)}
    loss, metrics = m.loss(batch)
    # targets: next values (-2, -4), min -4, mean -3 -> A = r + gamma m (-4) + 3; q_j = r + gamma m Vbar_j
    mask = 1.0 + r
    adv = r + gamma * mask * -4.0 + 3.0
    weight = torch.where(adv < 0, 1 - tau, tau)
    expected_value = (weight * (r + gamma * mask * -2.0 + 1.0) ** 2).mean() + (weight * (r + gamma * mask * -4.0 + 3.0) ** 2).mean()
    assert metrics["value_loss"] == pytest.approx(expected_value.item(), rel=1e-5)
    # actor: V(s', g) - V(s, g) = 0 -> weights exp(0) = 1; pi = tanh(0) = 0 -> || 0 - a ||^2 = 0.25
    assert metrics["weight_mean"] == pytest.approx(1.0)
    assert metrics["actor_loss"] == pytest.approx(0.25, rel=1e-5)
    assert loss.item() == pytest.approx(expected_value.item() + 0.25, rel=1e-5)


def test_infonce_loss_on_hand_computed_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    expected = 0.5 * (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(math.e / (1 + math.e)))
    assert infonce_loss(logits).item() == pytest.approx(expected, rel=1e-6)
    assert infonce_loss(torch.zeros(4, 4)).item() == pytest.approx(math.log(4))  # chance level


def test_awr_weights_are_clipped_exponentials_without_gradient():
    adv = torch.tensor([0.0, 1.0, -1.0, 10.0], requires_grad=True)
    w = awr_weights(adv, beta=2.0, max_weight=100.0)
    torch.testing.assert_close(w, torch.tensor([1.0, math.exp(2.0), math.exp(-2.0), 100.0]))
    assert not w.requires_grad


# -------------------------------------------------------------------------- relabelling
def test_goal_sources_follow_the_mixture_and_future_goals_are_later():
    rng = np.random.default_rng(0)
    n, length, b = 50, 40, 200_000
    i, t = rl.sample_transitions(rng, n, length, b)
    assert t.min() == 0 and t.max() == length - 2
    wall = np.repeat(np.arange(20, 25), 10)  # 5 layouts of 10 trajectories
    groups = rl.LayoutGroups(wall, np.full(n, 30))
    gi, gt, src = rl.sample_goals(rng, i, t, n, length, rl.VALUE_MIXTURE, 0.9, groups)
    freq = np.bincount(src, minlength=3) / b
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=0.005)
    cur, fut, rnd = src == rl.CURRENT, src == rl.FUTURE, src == rl.RANDOM
    assert np.all(gi[cur] == i[cur]) and np.all(gt[cur] == t[cur])
    assert np.all(gi[fut] == i[fut]) and np.all(gt[fut] > t[fut]) and np.all(gt[fut] <= length - 1)
    assert np.all(wall[gi[rnd]] == wall[i[rnd]])  # random goals share the layout
    assert len(np.unique(gi[rnd][wall[i[rnd]] == 20])) == 10  # ... and cover its trajectories
    reward, mask = rl.goal_rewards(i, t, gi, gt)
    same = (gi == i) & (gt == t)  # current goals, and the rare random goal that hits s_t
    assert np.all(same[cur]) and same.mean() < 0.2 + 0.01
    np.testing.assert_array_equal(reward == 0, same)  # r = 0 exactly at the goal, else -1
    np.testing.assert_array_equal(mask, 1 - same)
    assert set(np.unique(reward)) == {-1.0, 0.0}


def test_future_offsets_geometric_and_uniform():
    rng = np.random.default_rng(1)
    t = np.zeros(100_000, dtype=np.int64)
    k = rl.future_times(rng, t, 10_000, geometric=True, gamma=0.9) - t
    assert k.min() == 1 and abs(k.mean() - 10.0) < 0.15 and abs((k == 1).mean() - 0.1) < 0.005
    short = rl.future_times(rng, np.full(90_000, 2), 12, geometric=False, gamma=0.9)
    np.testing.assert_allclose(np.bincount(short, minlength=12)[3:] / len(short), np.full(9, 1 / 9), atol=0.005)
    assert short.min() == 3 and short.max() == 11
    clipped = rl.future_times(rng, np.full(1000, 8), 10, geometric=True, gamma=0.99)
    assert clipped.max() == 9 and clipped.min() == 9  # never past the last state
    with pytest.raises(ValueError, match="sum to 1"):
        rl.GoalMixture(0.5, 0.5, 0.5)


def test_success_radius_rewards_nearby_goals_of_the_same_layout():
    pos = np.array([[[10.0, 10.0], [11.0, 10.0], [30.0, 30.0]]])
    layout = np.array([[32, 20]])
    i, t = np.zeros(3, np.int64), np.zeros(3, np.int64)
    r, m = rl.goal_rewards(i, t, i, np.array([0, 1, 2]), pos, layout, radius=2.0)
    np.testing.assert_array_equal(r, [0.0, 0.0, -1.0])
    np.testing.assert_array_equal(m, [0.0, 0.0, 1.0])


def test_batches_render_the_relabelled_states(data):
    spec = build_method("hiql", **TINY).batch_spec()
    batch = sample_batch(data, np.random.default_rng(0), 32, spec)
    for key in ("obs", "next_obs", "value_goals", "actor_goals", "subgoals", "high_subgoals"):
        assert batch[key].shape == (32, 2, 65, 65) and batch[key].dtype == np.uint8
    assert batch["actions"].shape == (32, 2) and np.abs(batch["actions"]).max() <= 1.0
    assert batch["rewards"].shape == batch["masks"].shape == (32,)
    np.testing.assert_array_equal(batch["obs"][:, 1], batch["value_goals"][:, 1])  # same layout
    assert data.info["tier"] == "random" and len(data.info["sha256"]) == 64


def test_hiql_high_level_subgoals_never_pass_the_actor_goal(data):
    # s_h = s_{min(t + k, t_g)}: the k-step subgoal, or the actor goal itself when it is nearer
    spec = build_method("hiql", **TINY).batch_spec()
    b = sample_batch(data, np.random.default_rng(1), 256, spec)
    is_sub = (b["high_subgoals"] == b["subgoals"]).all(axis=(1, 2, 3))
    is_goal = (b["high_subgoals"] == b["actor_goals"]).all(axis=(1, 2, 3))
    assert (is_sub | is_goal).all()
    assert (~is_sub).sum() > 20 and (~is_goal).sum() > 20  # both cases occur on walks of 31 states, k = 15


def test_profile_batches_equal_the_features_of_the_rendered_frames(data):
    """The unrendered profile path gives exactly the features of the frames the agent would see."""
    spec = build_method("hiql", **TINY).batch_spec()
    frames = sample_batch(data, np.random.default_rng(3), 32, spec)
    feats = sample_batch(data, np.random.default_rng(3), 32, spec, features="profile")
    for key in ("obs", "next_obs", "value_goals", "actor_goals", "subgoals"):
        assert feats[key].shape == (32, 260) and feats[key].dtype == np.float32
        expected = prepare_batch({key: frames[key]}, "profile", torch.device("cpu"))[key]
        torch.testing.assert_close(torch.from_numpy(feats[key]), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(feats["rewards"], frames["rewards"])


# --------------------------------------------------------------------------- tiny runs
def _fit(method, data, steps: int, batch_size: int = 64, seed: int = 0) -> tuple[float, float]:
    """(loss before, loss after) on one fixed batch, training on fresh batches."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    spec = method.batch_spec()
    fixed = prepare_batch(sample_batch(data, np.random.default_rng(99), 256, spec), method.config.features, torch.device("cpu"))
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    before = method.loss(fixed)[0].item()
    for _ in range(steps):
        loss, _ = method.loss(prepare_batch(sample_batch(data, rng, batch_size, spec), method.config.features, torch.device("cpu")))
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step()
    return before, method.loss(fixed)[0].item()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_tiny_run_lowers_the_loss(name, data):
    before, after = _fit(build_method(name, **TINY), data, steps=150)
    assert after < 0.8 * before, (name, before, after)


def test_gciql_ddpgbc_actor_climbs_the_fixed_critic_and_leaves_it_untouched(data):
    torch.manual_seed(0)
    method = build_method("gciql", actor="ddpgbc", alpha=0.0, **TINY)
    b = prepare_batch(sample_batch(data, np.random.default_rng(0), 128, method.batch_spec()), "profile", torch.device("cpu"))
    s, a, ga = b["obs"], b["actions"], b["actor_goals"]

    def q_of_pi() -> float:
        with torch.no_grad():
            pi = method.act(s, ga)
            return torch.minimum(method.q1(s, ga, pi), method.q2(s, ga, pi)).mean().item()

    loss, metrics = method.actor_loss(s, a, ga)
    loss.backward()
    assert all(p.grad is None for p in (*method.q1.parameters(), *method.q2.parameters(), *method.value.parameters()))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.actor.parameters())
    assert {"q_pi_mean", "bc_loss"} <= set(metrics)
    opt = torch.optim.Adam(method.actor.parameters(), lr=1e-2)
    before = q_of_pi()
    for _ in range(30):
        opt.zero_grad()
        method.actor_loss(s, a, ga)[0].backward()
        opt.step()
    assert q_of_pi() > before
    with pytest.raises(ValueError, match="actor 'sac' is unknown"):
        build_method("gciql", actor="sac")
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        build_method("gciql", actor="ddpgbc", alpha=-1.0)


def test_bf16_autocast_keeps_the_outputs_fp32_and_close(data):
    torch.manual_seed(0)
    net = GoalNet("profile", 1, (64, 64))
    batch = prepare_batch(sample_batch(data, np.random.default_rng(0), 32, BatchSpec(value=VALUE_MIXTURE)), "profile",
                          torch.device("cpu"))
    with torch.no_grad():
        full = net(batch["obs"], batch["value_goals"]) - 60.0  # values of the size a long route has
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net(batch["obs"], batch["value_goals"]) - 60.0
    assert half.dtype == torch.float32  # the output layer ran in fp32: no 0.25-step rounding near -60
    torch.testing.assert_close(half, full, rtol=0, atol=0.05)


def test_hiql_goal_representation_runs_in_fp32_under_bf16_autocast(data):
    # the goal's small effect on phi at initialisation must not be rounded away (a bf16 phi kept the
    # value constant in the goal for a whole 30-minute run)
    torch.manual_seed(0)
    m = build_method("hiql", **TINY)
    batch = prepare_batch(sample_batch(data, np.random.default_rng(0), 32, m.batch_spec()), "profile", torch.device("cpu"))
    with torch.no_grad():
        full = m.value.rep(batch["obs"], batch["value_goals"])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = m.value.rep(batch["obs"], batch["value_goals"])
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, rtol=0, atol=1e-6)
    assert half.std(0).mean() > 0  # the representation depends on (s, g)


def test_hiql_low_actor_rep_grad_trains_phi_through_the_low_level(data):
    # off (OGBench's state-based default) phi learns from the value loss only; on (the default), the low level's too
    grads = {}
    for flag in (False, True):
        torch.manual_seed(0)
        m = build_method("hiql", **TINY, low_actor_rep_grad=flag)
        batch = prepare_batch(sample_batch(data, np.random.default_rng(0), 64, m.batch_spec()), "profile", torch.device("cpu"))
        loss, metrics = m.loss(batch)
        loss.backward()
        grads[flag] = torch.cat([p.grad.flatten() for p in m.value.phi.parameters()])
        assert math.isfinite(metrics["low_actor_loss"])
    assert not torch.allclose(grads[False], grads[True])  # the low level's gradient reaches phi
    assert build_method("hiql", **TINY).config.low_actor_rep_grad


def test_a_tiny_bf16_run_lowers_the_loss(dataset_file, tmp_path):
    from eval.baselines import train

    out = tmp_path / "bf16"
    assert train.main(["--method", "gcbc", "--dataset", str(dataset_file), "--split", "all", "--max-minutes", "0",
                       "--steps", "120", "--batch-size", "64", "--set", "hidden=[32,32]", "--curve-tasks", "0", "--lr", "1e-3",
                       "--log-every", "20", "--amp", "bf16", "--out-dir", str(out), "--no-progress", "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train"]["bf16"] is True
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert float(rows[-1]["loss"]) < 0.8 * float(rows[0]["loss"])


def test_pixel_features_train_end_to_end(data):
    method = build_method("gcbc", features="pixels", feat_dim=16, hidden=(32,))
    cnn = method.actor.features
    w0 = cnn.net[0].weight.detach().clone()
    before, after = _fit(method, data, steps=40, batch_size=32)
    assert after < before and not torch.equal(w0, cnn.net[0].weight)


def test_unknown_features_or_method_are_refused():
    with pytest.raises(ValueError, match="unknown features"):
        build_method("gciql", features="coords")
    with pytest.raises(ValueError, match="unknown method"):
        build_method("sac")


# ------------------------------------------------------------------ checkpoints, agent
def _task():
    env = gym.make("TwoRooms-v0")
    obs, info = env.reset(options={"task_seed": 0, "task_index": 0})
    return obs, info["goal_obs"]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_save_load_round_trip_gives_identical_actions(name, data, dataset_file, tmp_path):
    torch.manual_seed(0)
    method = build_method(name, **TINY)
    _fit(method, data, steps=3)
    path = save_checkpoint(tmp_path / f"{name}.pt", method, data.info, {"minutes_budget": 0.1}, {"train_minutes": 0.01, "steps": 3})
    ckpt = torch.load(path, weights_only=True)  # no code execution
    assert ckpt["dataset"]["sha256"] == sha256_file(dataset_file) and ckpt["dataset"]["tier"] == "random"
    assert ckpt["config"]["hidden"] == [32, 32] and json.dumps({k: v for k, v in ckpt.items() if k != "model"})
    obs, goal = _task()
    frames = np.stack([obs, goal, obs]), np.stack([goal, goal, obs])
    original = OfflineAgent(method).act_batch(*frames)
    loaded = make_agent(name, checkpoint=str(path))
    np.testing.assert_array_equal(loaded.act_batch(*frames, [{}] * 3), original)
    a = loaded.act(obs, goal)
    assert a.shape == (2,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    np.testing.assert_array_equal(loaded.predict({"observation": obs, "desired_goal": goal})[0], a)
    with pytest.raises(ValueError, match="shape"):
        loaded.act(obs[None], goal)


def test_foreign_checkpoints_are_refused(tmp_path, data):
    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not an offline GCRL checkpoint"):
        read_checkpoint(tmp_path / "x.pt")
    path = save_checkpoint(tmp_path / "h.pt", build_method("hiql", **TINY), data.info, {}, {})
    with pytest.raises(ValueError, match="use --agent hiql"):
        make_agent("gciql", checkpoint=str(path))


def test_training_cli_writes_model_curve_and_summary(dataset_file, tmp_path):
    from eval.baselines import train

    out = tmp_path / "run"
    assert train.main(["--method", "gcbc", "--dataset", str(dataset_file), "--split", "all", "--max-minutes", "1",
                       "--steps", "6", "--batch-size", "16", "--set", "hidden=[16]", "--curve-tasks", "2",
                       "--log-every", "3", "--out-dir", str(out), "--no-progress", "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["dataset"]["tier"] == "random" and len(summary["curve"]) == 1
    assert (out / "curve.png").stat().st_size > 0 and (out / "curve.csv").exists() and (out / "train_log.csv").exists()
    assert read_checkpoint(out / "model.pt")["stats"]["steps"] == 6


def test_the_curve_can_run_on_a_layout_set(dataset_file, tmp_path, capsys):
    from eval.baselines import train
    common = ["--method", "gcbc", "--dataset", str(dataset_file), "--split", "all", "--max-minutes", "1", "--steps", "4",
              "--batch-size", "16", "--set", "hidden=[16]", "--curve-tasks", "3", "--no-progress", "--threads", "1"]
    assert train.main([*common, "--curve-layouts", "train:k1", "--out-dir", str(tmp_path / "k1")]) == 0
    point = json.loads((tmp_path / "k1" / "summary.json").read_text())["curve"][0]
    assert point["layouts"] == "train:k1" and point["tasks"] == 3
    assert train.main([*common, "--curve-layouts", "train:nope", "--out-dir", str(tmp_path / "bad")]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "bad").exists()


# ------------------------------------------------------------------- tier check (compare)
def test_compare_refuses_a_model_of_another_tier(tmp_path, data, capsys):
    path = save_checkpoint(tmp_path / "g.pt", build_method("gcbc", **TINY), {**data.info, "tier": "contact"}, {}, {})
    code = compare.main(["--dataset", "random", "--methods", "gcbc", "--agent-checkpoint", f"gcbc={path}",
                         "--episodes", "1", "--out-dir", str(tmp_path / "cmp"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refused" in err and "'contact'" in err and "'random'" in err
    assert not (tmp_path / "cmp").exists()  # nothing ran
    with pytest.raises(compare.TierMismatch):
        compare.check_tier("gcbc", make_agent("gcbc", checkpoint=str(path)), "navigate")
    assert compare.check_tier("gcbc", make_agent("gcbc", checkpoint=str(path)), "contact") == "contact"
    with pytest.raises(ValueError, match="--dataset must be"):
        compare.table_tier("expert")


def test_table_tier_reads_a_dataset_file(dataset_file):
    assert compare.table_tier(str(dataset_file)) == "random"


def test_compare_with_a_dataset_file_refuses_a_model_of_another_file(tmp_path, data, dataset_file, capsys):
    other = {**data.info, "sha256": "0" * 64, "name": "other.npz"}  # same tier, another file
    path = save_checkpoint(tmp_path / "g.pt", build_method("gcbc", **TINY), other, {}, {})
    code = compare.main(["--dataset", str(dataset_file), "--methods", "gcbc", "--agent-checkpoint", f"gcbc={path}",
                         "--episodes", "1", "--out-dir", str(tmp_path / "cmp"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refused" in err and "other.npz" in err and "same dataset file" in err
    assert not (tmp_path / "cmp").exists()


def test_compare_rows_name_their_dataset_file_and_write_csv(tmp_path, data, dataset_file):
    path = save_checkpoint(tmp_path / "g.pt", build_method("gcbc", **TINY), data.info, {}, {"train_minutes": 1.5})
    code = compare.main(["--dataset", str(dataset_file), "--methods", "gcbc,oracle", "--agent-checkpoint", f"gcbc={path}",
                         "--episodes", "2", "--batch-size", "2", "--out-dir", str(tmp_path / "cmp"), "--no-progress"])
    assert code == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "cmp" / "results.json").read_text())}
    assert rows["gcbc"]["dataset"] == dataset_file.name and rows["gcbc"]["dataset_sha256"] == sha256_file(dataset_file)
    assert rows["gcbc"]["train_minutes"] == 1.5 and rows["gcbc"]["training_seeds"] == 1 and rows["gcbc"]["features"] == "profile"
    header = (tmp_path / "cmp" / "results.csv").read_text().splitlines()[0].split(",")
    assert {"method", "dataset", "dataset_sha256", "success_rate", "steps_to_success_median", "oracle_ratio_median", "median_episode_seconds"} <= set(header)


def test_jepa_rows_record_their_dataset(tmp_path):
    agent = make_agent("jepa")
    rec = compare.model_dataset(agent)
    assert rec["dataset"] == "tworooms_random.npz" and rec["features"] == "pixels (learned)"
    assert rec["dataset_sha256"].startswith("b2bd419d7c16") and rec["train_minutes"] > 10
    with pytest.raises(compare.TierMismatch, match="same dataset file"):
        compare.check_same_file("jepa", rec, "f" * 64, "x.npz")


@pytest.mark.parametrize("name", ["gciql", "gcivl"])
def test_inspect_calibrates_the_value_and_runs_the_critic_greedy_policy(name, data, dataset_file, tmp_path):
    from eval.baselines import inspect as ins

    path = save_checkpoint(tmp_path / "m.pt", build_method(name, **TINY), data.info, {}, {})
    method, _ = ins.load_method(path)
    cal = ins.value_calibration(method, data, 60, np.random.default_rng(0), 0.99)
    assert cal["pairs"] + cal["pairs_unreached"] == 60 and sum(r["pairs"] for r in cal["bins"]) == cal["pairs"]
    assert all(r["optimal_mean"] <= 0 for r in cal["bins"])
    env = gym.make("TwoRooms-v0")
    obs, info = env.reset(seed=0)
    act = ins.CriticGreedy(method).act_batch(obs[None], info["goal_obs"][None], [info])
    assert act.shape == (1, 2) and any(np.allclose(act[0], c) for c in ins.CANDIDATES)
    out = ins.main(["--checkpoint", str(path), "--tasks", "2", "--pairs", "10", "--dataset", str(dataset_file),
                    "--json", str(tmp_path / "i.json")])
    assert out == 0 and set(json.loads((tmp_path / "i.json").read_text())) >= {"calibration", "actor_success", "critic_greedy_success"}


def test_inspect_refuses_a_method_without_a_critic(data, tmp_path):
    from eval.baselines import inspect as ins

    with pytest.raises(ValueError, match="no critic"):
        ins.CriticGreedy(build_method("gcbc", **TINY))


def test_jepa_features_are_the_frozen_encoder_and_its_cache_matches(data, tmp_path):
    from dataclasses import replace

    from eval.baselines.offline import embed_dataset, shared_jepa_features
    from tworooms_env import core

    small = replace(data, embeddings=None)
    path = embed_dataset(small, cache_dir=tmp_path, progress=False)
    assert path.is_file() and small.embeddings.shape == (*data.traj.positions.shape[:2], shared_jepa_features().dim)
    frames = core.render_frames(data.traj.positions[3, :4], data.traj.wall_x[3], data.traj.door_y[3])
    live = shared_jepa_features()(torch.from_numpy(frames))
    assert torch.allclose(live, torch.from_numpy(small.embeddings[3, :4].astype(np.float32)), atol=2e-2)  # float16 cache
    again = replace(data, embeddings=None)
    assert embed_dataset(again, cache_dir=tmp_path, progress=False) == path and np.array_equal(again.embeddings, small.embeddings)
    batch = sample_batch(small, np.random.default_rng(0), 8, build_method("gcivl", features="jepa", **TINY).batch_spec(), "jepa")
    assert batch["obs"].shape == (8, shared_jepa_features().dim)
    with pytest.raises(ValueError, match="embed_dataset"):
        sample_batch(data, np.random.default_rng(0), 8, build_method("gcbc", **TINY).batch_spec(), "jepa")


def test_a_tiny_run_on_jepa_features_trains_the_heads_only(data, dataset_file, tmp_path):
    method = build_method("gcivl", features="jepa", **TINY)
    enc = [p.detach().clone() for p in method.actor.features.encoder.parameters()]
    before, after = _fit(method, data, steps=60)
    assert after < 0.8 * before
    assert all(torch.equal(a, b) for a, b in zip(enc, method.actor.features.encoder.parameters()))
    path = save_checkpoint(tmp_path / "j.pt", method, data.info, {}, {})
    agent = make_agent("gcivl", checkpoint=str(path))
    env = gym.make("TwoRooms-v0")
    obs, info = env.reset(seed=1)
    expected = OfflineAgent(method).act(obs, info["goal_obs"])
    assert np.allclose(agent.act(obs, info["goal_obs"]), expected, atol=1e-6)


def test_curves_plot_several_runs_and_write_their_points(tmp_path):
    from eval.baselines import curves

    dirs = []
    for name in ("gcbc", "gcivl"):
        d = tmp_path / name
        d.mkdir()
        (d / "summary.json").write_text(json.dumps({
            "method": name, "features": "profile", "steps": 10, "dataset": {"name": "f.npz", "sha256": "ab" * 32},
            "curve": [{"step": 5, "train_minutes": 1.0, "success": 0.2, "tasks": 100, "seed": 2001},
                      {"step": 10, "train_minutes": 2.0, "success": 0.4, "tasks": 100, "seed": 2001}]}))
        dirs.append(str(d))
    assert curves.main([*dirs, "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 0
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 5
    assert curves.main([str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
