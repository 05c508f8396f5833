"""JEPAAgent with analytic world models: the issue's usage, evaluate_policy, caching, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import tworooms_env  # noqa: F401  (registers TwoRooms-v0)
from jepa_agent.agent import JEPAAgent
from jepa_agent.analytic import TruePositionModel
from jepa_agent.planners import MPPIPlanner, PlannerConfig
from tworooms_env import core

CHEAP = PlannerConfig(num_samples=64, num_elites=8, iterations_first=6, iterations_later=2, horizon=40,
                      segment_length=10, seed=0)


class GoalPixels(gym.ObservationWrapper):
    """Dict observations with the goal frame, as an SB3 policy sees them."""

    def __init__(self, env):
        super().__init__(env)
        frame = env.observation_space
        self.observation_space = gym.spaces.Dict({"observation": frame, "desired_goal": frame})
        self._goal = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._goal = info["goal_obs"]
        return self.observation(obs), info

    def observation(self, observation):
        return {"observation": observation, "desired_goal": self._goal}


def agent_with(walls=True, **kwargs):
    return JEPAAgent(TruePositionModel(walls=walls), planner=MPPIPlanner(CHEAP), **kwargs)


def test_issue_usage_loop_runs_and_acts_in_env_units():
    env = gym.make("TwoRooms-v0")
    agent = agent_with()
    obs, info = env.reset(seed=0)
    for _ in range(30):
        action = agent.act(obs, info["goal_obs"])
        assert action.shape == (2,) and action.dtype == np.float32
        assert np.linalg.norm(action) <= 1.0 + 1e-5
        obs, reward, terminated, truncated, info = env.step(action)


def test_reaches_the_goal_through_the_door():
    env = gym.make("TwoRooms-v0")
    agent = JEPAAgent(TruePositionModel(walls=True), planner="mppi", num_samples=128, num_elites=16,
                      iterations_first=12, iterations_later=3)
    obs, info = env.reset(options={"wall_x": 32, "door_y": 12, "start": [15.0, 50.0], "goal": [50.0, 48.0]})
    for _ in range(200):
        obs, _, _, _, info = env.step(agent.act(obs, info["goal_obs"]))
    assert info["distance"] < core.SUCCESS_RADIUS


def test_evaluate_policy_runs_two_episodes():
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(GoalPixels(gym.make("TwoRooms-v0", max_episode_steps=40)))
    rewards, lengths = evaluate_policy(agent_with(walls=False), env, n_eval_episodes=2, return_episode_rewards=True)
    assert len(rewards) == 2 and lengths == [40, 40]


def test_goal_embedding_is_cached_and_reset_restarts():
    model = TruePositionModel(walls=False)
    encoded = []
    original = model.encode
    model.encode = lambda x: (encoded.append(len(x)), original(x))[1]
    agent = JEPAAgent(model, planner=MPPIPlanner(CHEAP), replan_every=5)
    env = gym.make("TwoRooms-v0")
    obs, info = env.reset(seed=1)
    for _ in range(10):
        obs, *_, info = env.step(agent.act(obs, info["goal_obs"]))
    # one goal encoding + one observation encoding per replan (steps 0 and 5)
    assert len(encoded) == 3
    assert agent._t[0] == 10
    agent.reset()
    assert agent._n == 0 and agent._plan is None
    obs2, info2 = env.reset(seed=2)
    agent.act(obs, info["goal_obs"])
    agent.act(obs2, info2["goal_obs"])  # a new goal starts a new episode in that slot
    assert agent._t[0] == 1


def test_act_batch_and_seeded_determinism():
    frames = core.render_frames(np.array([[10.0, 10.0], [50.0, 50.0]]), [32, 30], [18, 40])
    goals = core.render_frames(np.array([[50.0, 12.0], [12.0, 50.0]]), [32, 30], [18, 40])
    a = agent_with().act_batch(frames, goals)
    b = agent_with().act_batch(frames, goals)
    assert a.shape == (2, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    actions, state = agent_with().predict({"observation": frames, "desired_goal": goals[:, :1]})
    assert actions.shape == (2, 2) and state is None


def test_an_episode_stuck_at_a_wall_restarts_cold():
    # the open-field model believes the dot walks through the centre wall: the agent pushes into it
    env = gym.make("TwoRooms-v0")
    opts = {"wall_x": 32, "door_y": 10, "start": [28.0, 40.0], "goal": [58.0, 40.0]}
    restarts, cold = {}, {}
    for flag in (True, False):
        planner = MPPIPlanner(CHEAP)
        calls = []
        original = planner.plan_with_info
        planner.plan_with_info = lambda *a, **k: (calls.append(k.get("warm_mask")), original(*a, **k))[1]
        agent = JEPAAgent(TruePositionModel(walls=False), planner=planner, restart_when_stuck=flag)
        obs, info = env.reset(options=opts)
        for _ in range(30):
            obs, *_, info = env.step(agent.act(obs, info["goal_obs"]))
        restarts[flag] = agent.restarts
        cold[flag] = [m is not None and not bool(m.all()) for m in calls]
    assert restarts[True] >= 1 and restarts[False] == 0
    assert any(cold[True]) and not any(cold[False])  # a stuck replan drops the warm start


def test_moving_or_resting_episodes_do_not_restart():
    agent = agent_with(restart_when_stuck=True)
    start = core.render_frames(np.array([[10.0, 10.0]]), [32], [18])
    goal = core.render_frames(np.array([[10.0, 10.0]]), [32], [18])  # already there: it rests
    for _ in range(25):
        agent.act_batch(start, goal)
    assert agent.restarts == 0
    agent = agent_with(restart_when_stuck=True)
    far = core.render_frames(np.array([[20.0, 30.0]]), [32], [18])
    for t in range(25):  # pushing, but the frame changes every step
        frame = core.render_frames(np.array([[10.0 + 0.2 * t, 10.0]]), [32], [18])
        agent.act_batch(frame, far)
    assert agent.restarts == 0


def test_input_errors():
    agent = agent_with()
    obs = np.zeros((2, 65, 65), np.uint8)
    obs[0, 30, 30] = 255
    with pytest.raises(ValueError, match="goal must be one observation"):
        agent.act(obs, np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        agent.act_batch(obs[None], obs[None].astype(np.int64))
    with pytest.raises(ValueError, match="needs the goal"):
        agent.predict(obs)
    with pytest.raises(TypeError, match="encode"):
        JEPAAgent(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="replan_every"):
        JEPAAgent(TruePositionModel(), replan_every=-1)


def test_from_pretrained_rejects_a_checkpoint_that_is_not_a_world_model(tmp_path):
    pytest.importorskip("jepa_agent.world_model")
    path = tmp_path / "not_a_model.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError):
        JEPAAgent.from_pretrained(path)


def test_planner_defaults_beside_a_checkpoint_are_the_agents_starting_point(tmp_path):
    import json
    import shutil

    from jepa_agent.grad_planner import GradPlanner
    from jepa_agent.world_model import PROFILE_CHECKPOINT, load_world_model, planner_defaults_path

    ckpt = tmp_path / "model.pt"
    shutil.copy(PROFILE_CHECKPOINT, ckpt)
    assert (load_world_model(ckpt).default_planner, load_world_model(ckpt).planner_defaults) == (None, {})
    plain = JEPAAgent.from_pretrained(ckpt).planner  # no file beside it: MPPI with PlannerConfig's defaults
    assert isinstance(plain, MPPIPlanner) and plain.config == PlannerConfig()
    planner_defaults_path(ckpt).write_text(json.dumps({"_comment": "calibrated", "planner": "grad", "arrive_radius": 1.5,
                                                       "time_penalty": 0.03}))
    agent = JEPAAgent.from_pretrained(ckpt, time_penalty=0.05)
    assert isinstance(agent.planner, GradPlanner)
    assert (agent.planner.config.arrive_radius, agent.planner.config.time_penalty) == (1.5, 0.05)  # options win
    last = JEPAAgent.from_pretrained(ckpt, planner="mppi-last").planner  # a named planner wins too
    assert not isinstance(last, GradPlanner) and (last.config.cost, last.config.arrive_radius) == ("last", 1.5)
    for bad, match in (({"arrive_radiuss": 1.5}, "unknown planner option"), ({"planner": "nope"}, "unknown planner")):
        planner_defaults_path(ckpt).write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            load_world_model(ckpt)
