"""Environment demo (the main job until the agent exists): one TwoRooms-v0 episode on video.

A scripted policy that knows the true positions (privileged, like the "oracle" baseline of
PROTOCOL.md) walks to the door, through it, then to the goal. The episode is written to an MP4
and a GIF under ``outputs/demo/`` and summarised in ``outputs/demo/demo.json``.

Usage: ``python -m eval.demo [--seed 0] [--fixed-wall] [--out outputs/demo]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import tworooms_env  # noqa: F401  (registers the ids)
from tworooms_env import core
from tworooms_env.rendering import record_episode, write_video


def door_policy(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """Head for the goal; if it is in the other room, line up with the door first, then cross."""
    pos, goal = info["position"], info["goal"]
    wall_x, door_y = info["wall_x"], info["door_y"]
    side = 1.0 if goal[0] > wall_x else -1.0  # direction of the goal's room
    in_doorway = abs(pos[0] - wall_x) <= core.WALL_HALF_WIDTH + 1.5 and abs(pos[1] - door_y) <= core.DOOR_HALF_HEIGHT
    if in_doorway:  # leave the doorway straight: a diagonal move would stop on a door edge
        target = np.array([wall_x + side * 4.0, door_y])
    elif core.room_of(pos, wall_x) != core.room_of(goal, wall_x):
        if abs(pos[1] - door_y) <= 2.0:  # lined up with the door: go straight through
            target = np.array([wall_x + side * 4.0, door_y])
        else:
            target = np.array([wall_x - side * 4.0, door_y])
    else:
        target = goal
    # Normalised action; the env clips the displacement's norm to 2.45 px.
    return ((target - pos) / core.MAX_STEP_NORM).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="reset seed: layout, start and goal")
    parser.add_argument("--fixed-wall", action="store_true", help="use TwoRoomsFixedWall-v0")
    parser.add_argument("--out", default="outputs/demo", help="output folder")
    args = parser.parse_args()

    env_id = "TwoRoomsFixedWall-v0" if args.fixed_wall else "TwoRooms-v0"
    env = gym.make(env_id, render_mode="rgb_array")
    out = Path(args.out)
    episode = record_episode(env, door_policy, out / "episode.mp4", seed=args.seed)
    # The GIF at half the side length: small enough for a README.
    write_video(episode["frames"][:, ::2, ::2], out / "episode.gif", fps=env.metadata["render_fps"])
    summary = {
        "env_id": env_id,
        "seed": args.seed,
        "policy": "scripted door policy (privileged positions)",
        "steps": episode["steps"],
        "success_at_end": episode["success"],
        "final_distance_px": round(episode["distance"], 3),
        "return": episode["return"],
        "videos": [str(out / "episode.mp4"), str(out / "episode.gif")],
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
