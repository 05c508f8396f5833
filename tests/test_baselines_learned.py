"""Learned baselines: GCBC (offline, hindsight goals) and SB3 SAC + HER (online), tiny configs."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
import torch

from eval.agents import make_agent
from eval.baselines import gcbc_cnn as gcbc
from eval.baselines.gcbc_cnn import GCBCAgent, GCBCConfig, GCBCPolicy, GCBCTrainConfig
from eval.runner import run_episodes
from tworooms_env import core
from tworooms_env.random_walk import WalkConfig, generate_trajectories

TINY_NET = GCBCConfig(channels=(8, 16), hidden=32)


@pytest.fixture(scope="module")
def trajectories():
    return generate_trajectories(np.random.default_rng(0), 40, WalkConfig(length=31))


def _task_frames(seed: int = 0, index: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    env = gym.make("TwoRooms-v0")
    obs, info = env.reset(options={"task_seed": seed, "task_index": index})
    return obs, info["goal_obs"], info


# ------------------------------------------------------------------------------ hindsight
def test_hindsight_goals_are_later_states_of_the_same_trajectory(trajectories):
    rng = np.random.default_rng(1)
    i, t, t_goal = gcbc.sample_hindsight_indices(rng, len(trajectories), 31, 5000)
    assert np.all(t >= 0) and np.all(t_goal > t) and np.all(t_goal <= 30)
    assert (t_goal - t).max() >= 25  # far goals are drawn too, not only the next state
    _, t5, g5 = gcbc.sample_hindsight_indices(rng, len(trajectories), 31, 5000, max_gap=5)
    assert np.all((g5 - t5 >= 1) & (g5 - t5 <= 5))

    batch = gcbc.hindsight_batch(trajectories, rng, 64)
    i, t, t_goal = batch["index"].T
    wx, dy = trajectories.wall_x[i], trajectories.door_y[i]
    np.testing.assert_array_equal(batch["obs"], core.render_frames(trajectories.positions[i, t], wx, dy))
    np.testing.assert_array_equal(batch["goal"], core.render_frames(trajectories.positions[i, t_goal], wx, dy))
    np.testing.assert_allclose(batch["action"], trajectories.actions[i, t] / core.MAX_STEP_NORM, rtol=1e-6)
    assert batch["obs"].dtype == np.uint8 and batch["action"].dtype == np.float32


def test_hindsight_sampling_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="max_gap"):
        gcbc.sample_hindsight_indices(rng, 3, 10, 4, max_gap=0)
    with pytest.raises(ValueError, match="2 states"):
        gcbc.sample_hindsight_indices(rng, 3, 1, 4)


# ----------------------------------------------------------------------------------- GCBC
def test_gcbc_training_lowers_the_loss_and_gives_a_policy(trajectories, tmp_path):
    torch.manual_seed(0)
    policy = GCBCPolicy(TINY_NET)
    fixed = gcbc.hindsight_batch(trajectories, np.random.default_rng(5), 128)

    def loss_on_fixed_batch() -> float:
        with torch.inference_mode():
            pred = policy.eval()(torch.as_tensor(fixed["obs"]), torch.as_tensor(fixed["goal"]))
            return ((pred - torch.as_tensor(fixed["action"])) ** 2).sum(-1).mean().item()

    before = loss_on_fixed_batch()
    tc = GCBCTrainConfig(batch_size=32, lr=1e-3, steps=60, log_every=30, val_trajectories=10, val_samples=32)
    path = tmp_path / "gcbc.pt"
    policy, stats = gcbc.train(tc, out=path, trajectories=trajectories, progress=False, policy=policy)
    assert loss_on_fixed_batch() < 0.9 * before
    assert stats["steps"] == 60 and [h["step"] for h in stats["history"]] == [0, 30, 60]

    agent = GCBCAgent.from_pretrained(path)
    obs, goal, _ = _task_frames()
    action = agent.act(obs, goal)
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
    batch = agent.act_batch(np.stack([obs, goal]), np.stack([goal, goal]))
    assert batch.shape == (2, 2)
    np.testing.assert_allclose(batch[0], action, atol=1e-6)  # batched == one by one
    agent.reset()

    # registered for `python -m eval.planning --agent gcbc`, runs through the evaluation runner
    registered = make_agent("gcbc", gcbc_checkpoint=str(path))
    records = run_episodes(registered, seed=0, indices=[0, 1], batch_size=2, max_steps=3, progress=False)
    assert [r.index for r in records] == [0, 1]


def test_gcbc_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    policy = GCBCPolicy(TINY_NET)
    path = gcbc.save_checkpoint(tmp_path / "p.pt", policy, GCBCTrainConfig(), {"steps": 0})
    ckpt = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert ckpt["format"] == gcbc.FORMAT and ckpt["config"]["channels"] == [8, 16]
    loaded, meta = gcbc.load_checkpoint(path)
    obs, goal, _ = _task_frames(index=1)
    o, g = torch.as_tensor(obs[None]), torch.as_tensor(goal[None])
    with torch.inference_mode():
        torch.testing.assert_close(loaded(o, g), policy.eval()(o, g))
    assert meta["stats"] == {"steps": 0}

    torch.save({"format": "something-else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a GCBC checkpoint"):
        gcbc.load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="shape"):
        GCBCAgent(loaded).act(obs[None], goal)
    with pytest.raises(ValueError, match="channels"):
        GCBCConfig(channels=())


# ------------------------------------------------------------------------------------ SB3
requires_sb3 = pytest.mark.skipif(
    importlib.util.find_spec("stable_baselines3") is None, reason="stable-baselines3 not installed (extra 'rl')"
)


@pytest.fixture
def sb3_agents():
    from eval.baselines import sb3_agents

    return sb3_agents


@requires_sb3
def test_dot_centroids_recover_positions_and_pixel_reward_matches_the_env(sb3_agents):
    rng = np.random.default_rng(0)
    p = rng.uniform(core.BORDER_LO + 0.3, core.BORDER_HI - 0.3, (200, 2))
    frames = core.render_frames(p, 30, 20)
    np.testing.assert_allclose(sb3_agents.dot_centroids(frames[:, :1]), p, atol=0.02)

    env = sb3_agents.make_env("pixels")
    options = {"wall_x": 32, "door_y": 32, "start": (20.0, 32.0), "goal": (44.0, 32.0)}  # through the door
    obs, info = env.reset(seed=3, options=options)
    rewards = []
    for _ in range(15):  # straight at the goal: the distance crosses the success radius
        obs, reward, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
        assert env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == reward
        rewards.append(reward)
    assert set(rewards) == {-1.0, 0.0}
    np.testing.assert_array_equal(obs["desired_goal"][0], info["goal_obs"][0])
    batch = env.compute_reward(np.stack([obs["achieved_goal"]] * 3), np.stack([obs["desired_goal"]] * 3))
    assert batch.shape == (3,) and batch.dtype == np.float32


@requires_sb3
@pytest.mark.parametrize("obs_kind", ["state", "pixels"])
def test_sac_her_trains_saves_loads_and_acts(obs_kind, tmp_path, sb3_agents):
    torch.set_num_threads(1)
    path = tmp_path / f"sac_{obs_kind}.zip"
    policy_kwargs = {"net_arch": [16, 16]}
    if obs_kind == "pixels":
        policy_kwargs |= {"features_extractor_class": sb3_agents.GoalPixelExtractor,
                          "features_extractor_kwargs": {"features_dim": 16, "channels": (4, 8)}}
    # HER samples only from finished episodes: learning starts after the first 200-step episode.
    model, stats = sb3_agents.train(
        obs_kind, 230, path, seed=0, device="cpu", progress=False,
        learning_starts=201, batch_size=8, train_freq=4, policy_kwargs=policy_kwargs,
    )
    assert stats["timesteps"] >= 230 and path.is_file() and path.with_suffix(".json").is_file()

    agent = sb3_agents.load_policy(obs_kind, path)
    assert agent.obs_kind == obs_kind and agent.privileged == (obs_kind == "state")
    obs, goal, info = _task_frames(index=2)
    action = agent.act(obs, goal, info)
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
    # the reloaded model acts like the trained one
    expected, _ = model.predict(agent.dict_observation(obs[None], goal[None], [info]), deterministic=True)
    np.testing.assert_allclose(action, expected[0], atol=1e-5)
    if obs_kind == "state":
        with pytest.raises(ValueError, match="privileged"):
            agent.act(obs, goal)
    with pytest.raises(ValueError, match="not a"):
        sb3_agents.load_policy("pixels" if obs_kind == "state" else "state", path)

    # through the evaluation runner's common interface (reset(n), act_batch(obs, goal, infos))
    registered = make_agent(f"sb3-{obs_kind}", **{f"sb3_{obs_kind}_checkpoint": str(path)})
    records = run_episodes(registered, seed=0, indices=2, batch_size=2, max_steps=3, progress=False)
    assert len(records) == 2 and all(np.isfinite(r.final_distance) for r in records)


@requires_sb3
def test_sb3_bad_arguments(sb3_agents):
    with pytest.raises(ValueError, match="obs_kind"):
        sb3_agents.make_env("rgb")
    with pytest.raises(ValueError, match="algo"):
        sb3_agents.train("state", 10, algo="ppo")
    with pytest.raises(FileNotFoundError, match="no SB3 model"):
        sb3_agents.SB3Agent.from_pretrained("/nonexistent/model.zip")
