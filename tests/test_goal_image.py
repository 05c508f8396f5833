"""The goal-image wrapper: stable-baselines3's evaluate_policy runs the JEPA agent over episodes
with different goals (the agent restarts its plan when the goal frame changes)."""

import gymnasium as gym
import numpy as np
import pytest

import tworooms_env  # noqa: F401
from jepa_agent import JEPAAgent
from jepa_agent.analytic import TruePositionModel
from tworooms_env.wrappers import GoalImageObservation


def test_goal_image_observation_holds_both_frames():
    env = GoalImageObservation(gym.make("TwoRooms-v0"))
    obs, info = env.reset(seed=3)
    assert set(obs) == {"observation", "desired_goal"}
    assert obs["observation"].shape == obs["desired_goal"].shape == (2, 65, 65)
    assert np.array_equal(obs["desired_goal"], info["goal_obs"]) and env.observation_space.contains(obs)
    obs2, *_ = env.step(np.zeros(2, dtype=np.float32))
    assert np.array_equal(obs2["desired_goal"], obs["desired_goal"])


def test_evaluate_policy_runs_the_agent_over_episodes_with_different_goals():
    evaluation = pytest.importorskip("stable_baselines3.common.evaluation")
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(GoalImageObservation(gym.make("TwoRooms-v0")))
    env.reset(seed=11)
    agent = JEPAAgent(TruePositionModel(walls=True), num_samples=64, iterations_first=8, iterations_later=3)
    goals = []
    original = agent.act_batch

    def spy(obs, goal_obs, infos=None):
        goals.append(np.asarray(goal_obs).copy())
        return original(obs, goal_obs, infos)

    agent.act_batch = spy
    rewards, lengths = evaluation.evaluate_policy(agent, env, n_eval_episodes=3, return_episode_rewards=True)
    assert len(rewards) == 3 and all(n == 200 for n in lengths)
    distinct = {g.tobytes() for g in goals}
    assert len(distinct) == 3  # each episode planned toward its own goal frame
