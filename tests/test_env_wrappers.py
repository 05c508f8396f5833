"""Observation variants: the goal-conditioned dict form (HER) and the privileged state."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import tworooms_env  # noqa: F401  (registers the ids)
from tworooms_env import core
from tworooms_env.wrappers import GoalDictObservation, StateObservation, from_unit, to_unit


@pytest.mark.parametrize("observation", ["pixels", "state"])
@pytest.mark.parametrize("normalize", [True, False])
def test_goal_dict_passes_both_checkers(observation, normalize):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = GoalDictObservation(gym.make("TwoRooms-v0"), observation=observation, normalize=normalize)
        sb3_check_env(env)  # includes the vectorised compute_reward check of goal envs
        # A wrapper is by definition "different from the unwrapped version": that notice only.
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        check_env(env, skip_render_check=True)


def test_compute_reward_matches_the_env_reward():
    env = GoalDictObservation(gym.make("TwoRooms-v0"), observation="state")
    obs, info = env.reset(options={"wall_x": 32, "door_y": 30, "start": [24.0, 30.0], "goal": [40.0, 30.0]})
    np.testing.assert_allclose(from_unit(obs["desired_goal"]), [40.0, 30.0], atol=1e-5)
    achieved, desired, rewards = [], [], []
    for _ in range(12):
        obs, reward, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        rewards.append(reward)
        np.testing.assert_allclose(from_unit(obs["achieved_goal"]), info["position"], atol=1e-5)
    batch = env.compute_reward(np.stack(achieved), np.stack(desired), [{}] * 12)
    assert batch.shape == (12,) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, rewards)
    assert 0.0 in rewards and -1.0 in rewards
    pixel_env = GoalDictObservation(gym.make("TwoRooms-v0"), normalize=False)
    assert pixel_env.compute_reward(np.array([10.0, 10.0]), np.array([14.4, 10.0]), {}) == 0.0
    assert pixel_env.compute_reward(np.array([10.0, 10.0]), np.array([14.6, 10.0]), {}) == -1.0


def test_state_observation_holds_dot_goal_and_layout():
    env = StateObservation(gym.make("TwoRooms-v0"))
    obs, info = env.reset(seed=5)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    expected = np.concatenate([info["position"], info["goal"], [info["wall_x"], info["door_y"]]])
    np.testing.assert_allclose(from_unit(obs), expected, atol=1e-4)
    np.testing.assert_allclose(to_unit([core.BORDER_LO, core.BORDER_HI]), [-1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from stable_baselines3.common.env_checker import check_env

        check_env(env)


@pytest.fixture
def one_torch_thread():
    """Tiny networks on a shared 2-core machine: a second thread only adds contention (15x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sb3_her_replay_buffer_works_unchanged(one_torch_thread):
    from stable_baselines3 import SAC, HerReplayBuffer

    env = GoalDictObservation(gym.make("TwoRooms-v0", max_episode_steps=20), observation="state")
    model = SAC(
        "MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        learning_starts=40, buffer_size=1000, batch_size=32, policy_kwargs={"net_arch": [32, 32]},
        seed=0, device="cpu",
    )
    model.learn(100)
    assert model.num_timesteps == 100
    batch = model.replay_buffer.sample(16)
    assert batch.rewards.shape == (16, 1) and set(np.unique(batch.rewards.numpy())) <= {-1.0, 0.0}
