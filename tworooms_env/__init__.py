"""TwoRooms: a dot in two rooms split by a wall with a door (Gymnasium environment).

Importing the package registers ``TwoRooms-v0`` (a random wall and door every episode) and
``TwoRoomsFixedWall-v0`` (wall at x = 32, door at y = 18), both with 200 steps per episode::

    import gymnasium as gym
    import tworooms_env  # noqa: F401  (or gym.make("tworooms_env:TwoRooms-v0") with no import)

    env = gym.make("TwoRooms-v0", render_mode="rgb_array")
    obs, info = env.reset(seed=0)            # obs: uint8 [2, 65, 65], channel-first
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from gymnasium.envs.registration import register, registry

from tworooms_env.env import MAX_EPISODE_STEPS, TwoRoomsEnv

__all__ = ["TwoRoomsEnv", "MAX_EPISODE_STEPS", "ENV_IDS"]

ENV_IDS = ("TwoRooms-v0", "TwoRoomsFixedWall-v0")

for _env_id, _fixed in zip(ENV_IDS, (False, True)):
    if _env_id not in registry:  # re-imports (reload, spawned workers) must not warn
        register(
            id=_env_id,
            entry_point="tworooms_env.env:TwoRoomsEnv",
            max_episode_steps=MAX_EPISODE_STEPS,
            kwargs={"fixed_wall": _fixed},
        )
