"""Rendering: RGB pictures, the human window (dummy SDL driver) and episode videos."""

from __future__ import annotations

import gymnasium as gym
import imageio.v2 as iio
import imageio.v3 as iio3
import numpy as np
import pytest

import tworooms_env  # noqa: F401  (registers the ids)
from tworooms_env import rendering
from tworooms_env.env import TwoRoomsEnv

OPTIONS = {"wall_x": 32, "door_y": 40, "start": [15.0, 15.0], "goal": [50.0, 50.0]}


def test_rgb_array_is_a_readable_picture():
    env = gym.make("TwoRooms-v0", render_mode="rgb_array")
    env.reset(options=OPTIONS)
    frame = env.render()
    assert frame.shape == (520, 520, 3) and frame.dtype == np.uint8
    s = 8  # default scale: environment pixel p is centred on canvas pixel (p + 0.5) * 8
    np.testing.assert_allclose(frame[int(15.5 * s), int(15.5 * s)], rendering.DOT, atol=3)  # dot centre
    assert tuple(frame[int(50.5 * s), int(50.5 * s)]) == tuple(rendering.GOAL.astype(np.uint8))  # goal cross
    assert tuple(frame[int(10.5 * s), int(32.5 * s)]) == tuple(rendering.WALL.astype(np.uint8))  # wall
    assert tuple(frame[int(40.5 * s), int(32.5 * s)]) == tuple(rendering.ARENA.astype(np.uint8))  # door
    for _ in range(5):
        env.step(np.array([1.0, 0.0], np.float32))
    trail = env.render()[int(15.5 * s), int(20.5 * s)]
    assert trail[0] > 180 and trail[1] > 130 and trail[2] < 80  # the orange trail, where the dot was


def test_render_scale_and_no_trail():
    env = TwoRoomsEnv(render_mode="rgb_array", render_scale=3, render_trail=False)
    env.reset(seed=0)
    env.step(np.ones(2, np.float32))
    assert env.render().shape == (195, 195, 3)


def test_human_mode_opens_a_window_and_closes():
    env = gym.make("TwoRooms-v0", render_mode="human")
    env.unwrapped.metadata = {**env.unwrapped.metadata, "render_fps": 1000}  # do not wait in tests
    env.reset(seed=0)
    for _ in range(3):
        assert env.step(env.action_space.sample())[0].shape == (2, 65, 65)
    assert env.render() is None
    env.close()


def test_render_without_mode_warns_and_returns_none():
    env = TwoRoomsEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_recorded_episode_video_reads_back(tmp_path, suffix):
    env = gym.make("TwoRooms-v0", render_mode="rgb_array", render_scale=2, max_episode_steps=12)
    # A free straight run: every frame differs (a GIF merges identical consecutive frames).
    options = {"wall_x": 44, "door_y": 30, "start": [8.0, 30.0], "goal": [55.0, 30.0]}
    episode = rendering.record_episode(
        env, lambda obs, info: np.array([1.0, 0.0], np.float32), tmp_path / f"ep{suffix}", options=options
    )
    assert episode["steps"] == 12 and episode["frames"].shape == (13, 130, 130, 3)
    assert episode["positions"].shape == (13, 2)
    if suffix == ".mp4":
        with iio.get_reader(episode["path"]) as reader:  # len() is inf: iterate, do not list()
            frames = np.stack([frame for frame in reader])
    else:
        frames = iio3.imread(episode["path"], index=None)[..., :3]
    assert frames.shape == episode["frames"].shape
    assert np.abs(frames.astype(int) - episode["frames"]).mean() < 8  # lossy codecs


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        rendering.write_video(np.zeros((2, 8, 8, 3), np.float32), tmp_path / "a.mp4")
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        rendering.write_video(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "a.avi")
