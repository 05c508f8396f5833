"""TwoRooms-v0: Gymnasium contract, seeding, options, input checks, reward, observations."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

import tworooms_env
from tworooms_env import core
from tworooms_env.env import TwoRoomsEnv

TWO_ROOMS_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("TwoRooms"))


def test_ids_registered():
    assert set(tworooms_env.ENV_IDS) <= set(TWO_ROOMS_IDS)
    for env_id in tworooms_env.ENV_IDS:
        assert gym.spec(env_id).max_episode_steps == 200


def test_make_with_module_prefix_needs_no_import():
    code = (
        "import gymnasium as gym; env = gym.make('tworooms_env:TwoRooms-v0'); "
        "obs, info = env.reset(seed=0); assert obs.shape == (2, 65, 65)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("env_id", TWO_ROOMS_IDS)
def test_gymnasium_check_env_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from gymnasium.utils.env_checker import check_env

        env = gym.make(env_id)
        check_env(env.unwrapped)  # also renders in every declared mode (human: dummy SDL driver)
        env.close()


@pytest.mark.parametrize("env_id", TWO_ROOMS_IDS)
def test_sb3_check_env_without_warnings(env_id):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id).unwrapped)


def test_spaces_and_fixed_wall():
    env = gym.make("TwoRoomsFixedWall-v0")
    assert env.observation_space == gym.spaces.Box(0, 255, (2, 65, 65), np.uint8)
    assert env.action_space == gym.spaces.Box(-1, 1, (2,), np.float32)
    for seed in range(5):
        _, info = env.reset(seed=seed)
        assert (info["wall_x"], info["door_y"]) == (32, 18)


def test_truncates_after_200_steps():
    env = gym.make("TwoRooms-v0")
    env.reset(seed=0)
    zero = np.zeros(2, np.float32)
    for t in range(200):
        _, reward, terminated, truncated, _ = env.step(zero)
        assert isinstance(reward, float) and not terminated
        assert truncated == (t == 199)


def _rollout(env: gym.Env, seed: int, steps: int = 200):
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [(obs, 0.0, info)]
    for _ in range(steps):
        drift = np.array([0.4, 0.2])  # a drifting walk: it is sure to meet walls
        obs, reward, _, _, info = env.step((rng.uniform(-1, 1, 2) + drift).astype(np.float32))
        out.append((obs, reward, info))
    return out


def _assert_same_rollout(a, b):
    for (obs_a, r_a, info_a), (obs_b, r_b, info_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert r_a == r_b and info_a.keys() == info_b.keys()
        for key in info_a:
            np.testing.assert_array_equal(info_a[key], info_b[key])


def test_same_seed_same_trajectory():
    run_a = _rollout(gym.make("TwoRooms-v0"), seed=7)
    run_b = _rollout(gym.make("TwoRooms-v0"), seed=7)
    _assert_same_rollout(run_a, run_b)
    assert any(info["blocked"] for _, _, info in run_a)  # the random walk met a wall
    other = _rollout(gym.make("TwoRooms-v0"), seed=8, steps=0)
    assert not np.array_equal(other[0][2]["position"], run_a[0][2]["position"])


def test_env_pickles_mid_episode():
    env = gym.make("TwoRooms-v0", render_mode="rgb_array")
    env.reset(seed=3)
    for _ in range(10):
        env.step(np.array([0.5, -0.3], np.float32))
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(20):
        action = env.unwrapped.np_random.uniform(-1, 1, 2).astype(np.float32)
        clone.unwrapped.np_random.uniform(-1, 1, 2)  # keep the generators in step
        out_a, out_b = env.step(action), clone.step(action)
        np.testing.assert_array_equal(out_a[0], out_b[0])
        np.testing.assert_array_equal(out_a[4]["position"], out_b[4]["position"])
    np.testing.assert_array_equal(env.render(), clone.render())


def test_observation_and_info_match_core():
    env = TwoRoomsEnv()
    obs, info = env.reset(seed=11)
    for _ in range(30):
        np.testing.assert_array_equal(obs, core.render_frames(info["position"][None], info["wall_x"], info["door_y"])[0])
        np.testing.assert_array_equal(info["goal_obs"], core.render_frames(info["goal"][None], info["wall_x"], info["door_y"])[0])
        assert info["distance"] == pytest.approx(np.linalg.norm(info["position"] - info["goal"]))
        obs, reward, _, _, info = env.step(np.array([0.9, 0.2], np.float32))
        assert reward == (0.0 if info["distance"] < core.SUCCESS_RADIUS else -1.0)
        assert info["is_success"] == (info["distance"] < core.SUCCESS_RADIUS)


def test_reset_seed_is_the_shared_task_sampler():
    env = TwoRoomsEnv()
    for seed in range(20):
        _, info = env.reset(seed=seed)
        task = core.sample_tasks(np.random.default_rng(seed), 1)
        assert (info["wall_x"], info["door_y"]) == (task["wall_x"][0], task["door_y"][0])
        np.testing.assert_array_equal(info["position"], task["start"][0])
        np.testing.assert_array_equal(info["goal"], task["goal"][0])


def test_protocol_task_option():
    env = TwoRoomsEnv()
    for index in range(5):
        _, info = env.reset(seed=123, options={"task_seed": 42, "task_index": index})
        task = core.sample_tasks(core.task_rng(42, index), 1)
        assert (info["wall_x"], info["door_y"]) == (task["wall_x"][0], task["door_y"][0])
        np.testing.assert_array_equal(info["position"], task["start"][0])
        np.testing.assert_array_equal(info["goal"], task["goal"][0])


def test_reset_options_fix_parts_of_the_task():
    env = TwoRoomsEnv()
    _, info = env.reset(seed=0, options={"wall_x": 25, "door_y": 40})
    assert (info["wall_x"], info["door_y"]) == (25, 40)
    assert core.room_of(info["position"], 25) != core.room_of(info["goal"], 25)
    assert core.is_free(np.stack([info["position"], info["goal"]]), 25, 40, core.START_GOAL_MARGIN - 1e-9).all()
    _, info = env.reset(seed=0, options={"wall_x": 30, "door_y": 30, "start": [10.0, 50.0]})
    np.testing.assert_array_equal(info["position"], [10.0, 50.0])
    assert core.room_of(info["goal"], 30) == 1
    _, info = env.reset(seed=0, options={"wall_x": 30, "door_y": 30, "goal": (10, 50)})
    assert core.room_of(info["position"], 30) == 1
    _, info = env.reset(options={"wall_x": 32, "door_y": 18, "start": [10, 10], "goal": [50, 50]})
    np.testing.assert_array_equal(info["goal"], [50.0, 50.0])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"bogus": 1}, "unknown reset option"),
        ({"wall_x": 45}, "wall_x"),
        ({"door_y": 9}, "door_y"),
        ({"wall_x": 30.5}, "integer"),
        ({"wall_x": 32, "door_y": 18, "start": [32.0, 40.0]}, "inside the wall"),
        ({"wall_x": 32, "door_y": 18, "start": [3.0, 40.0]}, "outside the arena"),
        ({"wall_x": 32, "door_y": 18, "start": [10.0, 40.0], "goal": [20.0, 40.0]}, "opposite rooms"),
        ({"start": [np.nan, 10.0]}, "finite"),
        ({"goal": [1.0, 2.0, 3.0]}, "finite"),
        ({"task_seed": 1}, "together"),
        ({"task_seed": -1, "task_index": 0}, "non-negative"),
    ],
)
def test_invalid_reset_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        TwoRoomsEnv().reset(seed=0, options=options)


def test_step_before_reset_raises():
    with pytest.raises(ResetNeeded):
        TwoRoomsEnv().step(np.zeros(2, np.float32))


@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([np.nan, 0.0], np.float32), "finite"),
        (np.array([0.0, np.inf]), "finite"),
        (np.zeros(3, np.float32), "shape"),
        (np.zeros((1, 2), np.float32), "shape"),
        (np.array(["a", "b"]), "numeric"),
        ([0.1], "shape"),
        ("left", "numeric"),
        (None, "shape"),
    ],
)
def test_bad_actions_raise_value_error(action, match):
    env = TwoRoomsEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_large_finite_actions_are_clipped_not_rejected():
    env = TwoRoomsEnv()
    env.reset(options={"wall_x": 40, "door_y": 30, "start": [20.0, 30.0], "goal": [50.0, 30.0]})
    _, _, _, _, info = env.step(np.array([7.0, 0.0]))  # 7 x 2.45 px asked, 2.45 px given
    np.testing.assert_allclose(info["position"], [20.0 + core.MAX_STEP_NORM, 30.0])
    _, _, _, _, info = env.step([1, 1])  # a list of ints is fine; diagonal of the box -> norm 2.45
    assert np.linalg.norm(info["position"] - [22.45, 30.0]) == pytest.approx(core.MAX_STEP_NORM)


def test_reward_and_terminate_on_success():
    options = {"wall_x": 32, "door_y": 30, "start": [29.5, 30.0], "goal": [34.5, 30.0]}
    for terminate in (False, True):
        env = TwoRoomsEnv(terminate_on_success=terminate)
        _, info = env.reset(options=options)
        assert not info["is_success"] and info["distance"] == pytest.approx(5.0)
        _, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], np.float32))
        assert reward == 0.0 and info["is_success"] and terminated == terminate and not truncated
        _, reward, *_ = env.step(np.array([1.0, 0.0], np.float32))
        assert reward == 0.0  # another 2.45 px: 0.1 px from the goal


def test_wall_blocks_and_door_passes_in_the_env():
    env = TwoRoomsEnv()
    env.reset(options={"wall_x": 32, "door_y": 50, "start": [29.0, 20.0], "goal": [40.0, 20.0]})
    _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert info["blocked"] and info["position"][0] == 32 - 1 - core.CONTACT_MARGIN
    env.reset(options={"wall_x": 32, "door_y": 50, "start": [29.0, 50.0], "goal": [40.0, 20.0]})
    for _ in range(3):
        _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
        assert not info["blocked"]
    assert core.room_of(info["position"], 32) == 1


def test_vector_env_stacks_observations_and_infos():
    envs = gym.make_vec("TwoRooms-v0", num_envs=3, vectorization_mode="sync")
    obs, info = envs.reset(seed=0)
    assert obs.shape == (3, 2, 65, 65) and info["goal_obs"].shape == (3, 2, 65, 65)
    obs, reward, _, _, info = envs.step(np.zeros((3, 2), np.float32))
    assert reward.shape == (3,) and info["position"].shape == (3, 2)
    envs.close()
