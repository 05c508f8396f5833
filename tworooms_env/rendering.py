"""Pictures for people: an upscaled RGB frame, a pygame window and episode videos (MP4/GIF).

The agent never sees these; it sees ``core.render_frames``. Here the dot is drawn smoothly at the
display resolution, the goal is marked with its success disk (radius 4.5 px) and the path so far
can be traced, so that a video of an episode can be read at a glance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from tworooms_env import core

BACKGROUND = np.array([18, 22, 33], dtype=np.float64)
ARENA = np.array([30, 36, 52], dtype=np.float64)
WALL = np.array([205, 210, 220], dtype=np.float64)
DOT = np.array([255, 70, 60], dtype=np.float64)
GOAL = np.array([70, 220, 110], dtype=np.float64)
TRAIL = np.array([255, 190, 60], dtype=np.float64)


def render_rgb(
    position: np.ndarray,
    goal: np.ndarray | None,
    wall_x: int,
    door_y: int,
    path: np.ndarray | None = None,
    scale: int = 8,
) -> np.ndarray:
    """An RGB picture of one state: uint8 [65 * scale, 65 * scale, 3].

    Args:
        position: the dot (x, y) in pixels.
        goal: the goal (x, y) in pixels, drawn as a translucent success disk with a ring; or None.
        wall_x, door_y: the layout.
        path: [T, 2] positions visited so far, drawn as a line; or None.
        scale: canvas pixels per environment pixel (>= 1).
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    size = core.IMG_SIZE * scale
    # Environment coordinate of every canvas pixel centre: pixel i spans [i*s, (i+1)*s) on canvas.
    coord = (np.arange(size) + 0.5) / scale - 0.5
    inside = (coord > core.BORDER_LO) & (coord < core.BORDER_HI)
    img = np.where((inside[:, None] & inside[None, :])[..., None], ARENA, BACKGROUND)

    walls = np.repeat(np.repeat(core.render_walls(wall_x, door_y) > 0, scale, 0), scale, 1)
    img[walls] = WALL

    if goal is not None:
        d2 = (coord[None, :] - goal[0]) ** 2 + (coord[:, None] - goal[1]) ** 2
        disk = d2 < core.SUCCESS_RADIUS**2
        img[disk] = 0.65 * img[disk] + 0.35 * GOAL
        ring = np.abs(np.sqrt(d2) - core.SUCCESS_RADIUS) < 0.6 / scale + 0.12
        img[ring] = GOAL
        cross = (d2 < 1.0) & ((np.abs(coord[None, :] - goal[0]) < 0.15) | (np.abs(coord[:, None] - goal[1]) < 0.15))
        img[cross] = GOAL

    if path is not None and len(path) > 1:
        img = draw_path(img, path, scale)

    d2 = (coord[None, :] - position[0]) ** 2 + (coord[:, None] - position[1]) ** 2
    alpha = np.exp(-d2 / (2.0 * core.DOT_STD**2))[..., None]
    img = (1.0 - alpha) * img + alpha * DOT
    return img.astype(np.uint8)


def draw_path(img: np.ndarray, path: np.ndarray, scale: int, colour: np.ndarray = TRAIL,
              opacity: float = 0.75) -> np.ndarray:
    """Trace a polyline through ``path`` [L, 2] (env pixels) on an RGB canvas, in place, with a 2 x 2
    brush, sampled densely enough (2 * scale points per segment) to look continuous at this scale.

    Each touched pixel becomes ``(1 - opacity) * pixel + opacity * colour``; points outside the
    canvas (an imagined plan may leave the arena) are skipped.
    """
    points = np.asarray(path, dtype=np.float64)
    if len(points) > 1:
        frac = np.arange(2 * scale) / (2 * scale)
        seg = points[:-1, None, :] + frac[None, :, None] * np.diff(points, axis=0)[:, None, :]
        points = np.concatenate([seg.reshape(-1, 2), points[-1:]])
    canvas = np.floor((points + 0.5) * scale).astype(np.int64)  # [P, 2] (col, row)
    canvas = canvas[np.all((canvas >= 0) & (canvas < img.shape[0] - 1), axis=1)]
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        r, c = canvas[:, 1] + dy, canvas[:, 0] + dx
        img[r, c] = ((1 - opacity) * img[r, c] + opacity * colour).astype(np.uint8)
    return img


class HumanWindow:
    """A pygame window showing RGB frames at a fixed rate (``render_mode="human"``)."""

    def __init__(self, title: str, width: int, height: int) -> None:
        import pygame  # imported lazily: only people watching need it

        self._pygame = pygame
        pygame.display.init()  # display only: pygame.init() would also open audio devices
        self._screen = pygame.display.set_mode((width, height))
        pygame.display.set_caption(title)
        self._clock = pygame.time.Clock()

    def show(self, frame: np.ndarray, fps: float) -> None:
        pg = self._pygame
        pg.event.pump()  # keep the OS from declaring the window frozen
        surface = pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self._screen.blit(surface, (0, 0))
        pg.display.flip()
        self._clock.tick(fps)

    def close(self) -> None:
        self._pygame.display.quit()


def write_video(frames, path: str | Path, fps: float = 20) -> Path:
    """Write RGB frames (uint8 [T, H, W, 3] or a list) to ``.mp4`` (libx264) or ``.gif``.

    A GIF stores identical consecutive frames once (longer duration), so it may read back shorter.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty uint8 array [T, H, W, 3], got {frames.dtype} {frames.shape}")
    suffix = check_video_path(path).suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".mp4":
        import imageio.v2 as iio

        if frames.shape[1] % 2 or frames.shape[2] % 2:  # yuv420p needs even sides
            frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)))
        with iio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                            quality=8, macro_block_size=2, pixelformat="yuv420p") as writer:
            for frame in frames:
                writer.append_data(frame)
    elif suffix == ".gif":
        import imageio.v3 as iio3

        iio3.imwrite(path, frames, extension=".gif", duration=1000.0 / fps, loop=0)
    return path


def check_video_path(path: str | Path) -> Path:
    """``path`` as a Path if it ends in .mp4 or .gif (checked before any episode runs)."""
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"video path must end in .mp4 or .gif, got {path.name!r}")
    return path


def record_episode(
    env,
    policy: Callable[[np.ndarray, dict[str, Any]], np.ndarray],
    path: str | Path | None = None,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    fps: float | None = None,
    max_steps: int = 1000,
) -> dict[str, Any]:
    """Run one episode of ``policy(obs, info) -> action`` in an ``rgb_array`` env; optionally save it.

    The episode ends when the env terminates or truncates it, or after ``max_steps`` steps (an env
    without a time limit would otherwise run, and keep frames, forever).

    Returns {"frames": uint8 [T + 1, H, W, 3], "positions": [T + 1, 2], "return": float,
    "success": bool (at the last step), "distance": float (final), "steps": int, "path": Path | None}.
    """
    if env.render_mode != "rgb_array":
        raise ValueError(f"record_episode needs an env made with render_mode='rgb_array', got {env.render_mode!r}")
    if path is not None:
        check_video_path(path)
    if int(max_steps) < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    obs, info = env.reset(seed=seed, options=options)
    frames, positions, total = [env.render()], [info["position"]], 0.0
    terminated = truncated = False
    while not (terminated or truncated) and len(frames) <= max_steps:
        obs, reward, terminated, truncated, info = env.step(policy(obs, info))
        frames.append(env.render())
        positions.append(info["position"])
        total += float(reward)
    frames_arr = np.stack(frames)
    saved = None
    if path is not None:
        saved = write_video(frames_arr, path, fps or env.metadata.get("render_fps", 20))
    return {
        "frames": frames_arr, "positions": np.stack(positions), "return": total,
        "success": bool(info["is_success"]), "distance": float(info["distance"]),
        "steps": len(frames) - 1, "path": saved,
    }
