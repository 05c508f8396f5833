"""Play TwoRooms with the keyboard in a pygame window.

Arrow keys or WASD move the dot (diagonals combine), R starts a new episode, Esc or closing the
window quits. Usage: ``python -m tworooms_env.manual_control [--env-id TwoRooms-v0] [--seed 0]``
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence

import gymnasium as gym
import numpy as np

import tworooms_env  # noqa: F401  (registers the ids)
from tworooms_env.cli import ConfigCLI, run_cli


@dataclass
class PlayConfig:
    """The options of ``tworooms-play``."""

    env_id: str = "TwoRooms-v0"  # Gymnasium id of the environment
    seed: int | None = None  # seed of the first episode (none: random)


CLI = ConfigCLI(PlayConfig, prog="tworooms-play", description=__doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``tworooms-play``): 0 when the window is closed."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)

    import pygame

    env = gym.make(args.env_id, render_mode="human")
    env.reset(seed=args.seed)  # opens the window
    keys_x = {pygame.K_LEFT: -1.0, pygame.K_a: -1.0, pygame.K_RIGHT: 1.0, pygame.K_d: 1.0}
    keys_y = {pygame.K_UP: -1.0, pygame.K_w: -1.0, pygame.K_DOWN: 1.0, pygame.K_s: 1.0}  # rows grow downwards
    running = True
    while running:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                running = False
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                env.reset()
        if not running:
            break
        pressed = pygame.key.get_pressed()
        action = np.array(
            [sum(v for k, v in keys_x.items() if pressed[k]), sum(v for k, v in keys_y.items() if pressed[k])],
            dtype=np.float32,
        )
        _, reward, terminated, truncated, info = env.step(np.clip(action, -1.0, 1.0))
        if terminated or truncated:
            print(f"episode over: success={info['is_success']}, distance={info['distance']:.2f} px")
            env.reset()
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
