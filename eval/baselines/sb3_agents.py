"""Model-free goal-conditioned RL baselines: stable-baselines3 SAC (or TD3) with HER.

Two observation kinds, both through the dict-goal interface that ``HerReplayBuffer`` needs:

- ``pixels``: the agent sees what the JEPA agent sees. ``observation`` is the uint8 frame
  [2, 65, 65]; ``desired_goal`` is the dot channel of the goal frame [1, 65, 65] (the walls are
  already in the observation) and ``achieved_goal`` the dot channel of the current frame. HER's
  relabelled rewards decode the dot's position from these images (:func:`dot_centroids`). A small
  CNN (:class:`GoalPixelExtractor`) reads the frame and the goal stacked as channels.
- ``state``: privileged low-dimensional state [x, y, wall_x, door_y] with 2-D position goals
  (``tworooms_env.wrappers.GoalDictObservation``): the upper reference, never a pixel agent.

Reward: the env's sparse reward (0 within 4.5 px of the goal, -1 otherwise), 200-step episodes.

Usage::

    python -m eval.baselines.sb3_agents --train --obs state --timesteps 50000
    agent = SB3Agent.from_pretrained("outputs/baselines/sac_her_state.zip")
    action = agent.act(obs, goal_obs, info)   # float32 (2,), env units
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import SAC, TD3, HerReplayBuffer
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from tqdm import tqdm

import tworooms_env  # noqa: F401  (registers TwoRooms-v0)
from tworooms_env import core
from tworooms_env.cli import ConfigCLI, run_cli
from tworooms_env.wrappers import GoalDictObservation, to_unit

ALGOS: dict[str, type[BaseAlgorithm]] = {"sac": SAC, "td3": TD3}
OBS_KINDS = ("pixels", "state")
_GRID = np.arange(core.IMG_SIZE, dtype=np.float64)


# ---------------------------------------------------------------------------- pixel goals
def dot_centroids(dot_images: np.ndarray) -> np.ndarray:
    """Dot positions (x, y) in pixels from dot-channel images uint8 [..., (1,) 65, 65] -> [..., 2].

    The intensity-weighted centroid of the rendered Gaussian: within ~0.05 px of the true
    position away from the image edge (the dot never comes closer than 4 px), vectorised.
    """
    img = np.asarray(dot_images, dtype=np.float64)
    if img.shape[-2:] != (core.IMG_SIZE, core.IMG_SIZE):
        raise ValueError(f"dot images must end in ({core.IMG_SIZE}, {core.IMG_SIZE}), got {img.shape}")
    total = np.maximum(img.sum(axis=(-2, -1)), 1e-9)
    x = (img.sum(axis=-2) * _GRID).sum(axis=-1) / total
    y = (img.sum(axis=-1) * _GRID).sum(axis=-1) / total
    out = np.stack([x, y], axis=-1)
    return out[..., 0, :] if img.ndim >= 3 and img.shape[-3] == 1 else out


class PixelGoalObservation(gym.ObservationWrapper):
    """Dict observations with image goals for HER from pixels (see the module docstring)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        frame = env.observation_space
        if not (isinstance(frame, spaces.Box) and frame.shape == (core.N_CHANNELS, core.IMG_SIZE, core.IMG_SIZE)):
            raise ValueError(f"expected a TwoRooms env with uint8 [2, 65, 65] frames, got {frame}")
        dot = spaces.Box(0, 255, (1, core.IMG_SIZE, core.IMG_SIZE), np.uint8)
        self.observation_space = spaces.Dict({"observation": frame, "achieved_goal": dot, "desired_goal": dot})
        self._goal_dot: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._goal_dot = np.array(info["goal_obs"][:1])
        return self.observation(obs), info

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"observation": observation, "achieved_goal": observation[:1].copy(), "desired_goal": self._goal_dot}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None) -> np.ndarray:
        """Vectorised sparse reward from dot images [..., 1, 65, 65]: 0 on success, -1 otherwise."""
        distance = np.linalg.norm(dot_centroids(achieved_goal) - dot_centroids(desired_goal), axis=-1)
        return -(distance >= core.SUCCESS_RADIUS).astype(np.float32)


class GoalPixelExtractor(BaseFeaturesExtractor):
    """CNN on the frame and the goal's dot channel stacked (plus x/y maps) -> features [B, dim].

    SB3 hands in images already divided by 255. ``achieved_goal`` is ignored: it is the frame's
    own dot channel. Same shape of network as GCBC (a 4x4 patch stem, then stride-2 convs).
    """

    def __init__(self, observation_space: spaces.Dict, features_dim: int = 256, channels: tuple[int, ...] = (32, 64, 64)) -> None:
        super().__init__(observation_space, features_dim)
        in_ch = observation_space["observation"].shape[0] + observation_space["desired_goal"].shape[0] + 2
        layers: list[nn.Module] = [nn.Conv2d(in_ch, channels[0], 4, stride=4), nn.ReLU()]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        ramp = torch.linspace(-1.0, 1.0, core.IMG_SIZE)
        self.register_buffer("coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="xy")), persistent=False)
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, in_ch, core.IMG_SIZE, core.IMG_SIZE)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        frame, goal = observations["observation"], observations["desired_goal"]
        x = torch.cat([frame, goal, self.coords.expand(frame.shape[0], -1, -1, -1)], dim=1)
        return self.linear(self.cnn(x))


# ------------------------------------------------------------------------------ env + model
def make_env(obs_kind: str, fixed_wall: bool = False) -> gym.Env:
    """A TwoRooms env (200 steps, PROTOCOL tasks) in the dict-goal form of ``obs_kind``."""
    if obs_kind not in OBS_KINDS:
        raise ValueError(f"obs_kind must be one of {OBS_KINDS}, got {obs_kind!r}")
    env = gym.make("TwoRoomsFixedWall-v0" if fixed_wall else "TwoRooms-v0")
    return PixelGoalObservation(env) if obs_kind == "pixels" else GoalDictObservation(env, observation="state")


def default_hyperparameters(obs_kind: str) -> dict[str, Any]:
    """Hyper-parameters per observation kind (HER: 4 'future' goals per real transition).

    Both do one gradient step every few env steps with a modest batch: on a shared 2-core CPU a
    SAC update costs ~0.1 s at batch 256 (measured), which would not fit the budgets. Pixels go
    further, because every update runs the CNN several times (actor, critic, target).
    """
    common = {
        "replay_buffer_class": HerReplayBuffer,
        "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        "learning_starts": 1_000,
        "gamma": 0.98,
        "tau": 0.05,
        "learning_rate": 1e-3,
    }
    if obs_kind == "state":
        return common | {"batch_size": 128, "train_freq": 2, "gradient_steps": 1,
                         "policy_kwargs": {"net_arch": [256, 256]}}
    return common | {
        "batch_size": 64, "train_freq": 4, "gradient_steps": 1, "learning_rate": 3e-4,
        "policy_kwargs": {"net_arch": [256, 256], "features_extractor_class": GoalPixelExtractor,
                          "features_extractor_kwargs": {"features_dim": 256}, "normalize_images": True},
    }


class _Progress(BaseCallback):
    """A tqdm bar over environment steps, plus the running training success of finished episodes."""

    def __init__(self, total: int, enabled: bool = True, max_seconds: float | None = None) -> None:
        super().__init__()
        self.max_seconds = max_seconds
        self.start = time.perf_counter()
        self.bar = tqdm(total=total, desc="sb3", disable=not enabled, smoothing=0.05)
        self.successes: list[float] = []

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:
                self.successes.append(float(info.get("is_success", False)))
                self.bar.set_postfix(train_success=f"{np.mean(self.successes[-50:]):.2f}")
        return self.max_seconds is None or time.perf_counter() - self.start < self.max_seconds

    def _on_training_end(self) -> None:
        self.bar.close()


def train(
    obs_kind: str, timesteps: int, out: str | Path | None = None, algo: str = "sac", seed: int = 0,
    device: str = "auto", progress: bool = True, minutes: float | None = None, **overrides: Any,
) -> tuple[BaseAlgorithm, dict]:
    """Train SAC/TD3 + HER for ``timesteps`` env steps (or until ``minutes`` of wall time have
    passed, whichever comes first); save ``out`` (.zip) and a .json of stats beside it."""
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    hp = default_hyperparameters(obs_kind) | overrides
    # The whole run fits (rollouts overshoot by < train_freq steps): no episode is ever overwritten.
    hp.setdefault("buffer_size", timesteps + 1_000)
    env = make_env(obs_kind)
    model = ALGOS[algo]("MultiInputPolicy", env, seed=seed, device=device, verbose=0, **hp)
    callback = _Progress(timesteps, progress, None if minutes is None else 60.0 * minutes)
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, callback=callback)
    wall = time.perf_counter() - start
    stats = {
        "algo": algo, "obs": obs_kind, "timesteps": int(model.num_timesteps), "timesteps_requested": timesteps,
        "wall_seconds": wall, "steps_per_second": model.num_timesteps / max(wall, 1e-9), "seed": seed,
        "train_episodes": len(callback.successes),
        "train_success_last_50": float(np.mean(callback.successes[-50:])) if callback.successes else None,
        "hyperparameters": {k: repr(v) for k, v in hp.items()}, "torch_threads": torch.get_num_threads(),
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
        out.with_suffix(".json").write_text(json.dumps(stats, indent=2))
    return model, stats


# ------------------------------------------------------------------------------------ agent
class SB3Agent:
    """A trained SB3 goal-conditioned model behind the evaluation's policy interface.

    Pixel models need only the frame and the goal frame. State models are privileged: they also
    need the true positions and layout, read from the env's ``info`` (``position``, ``goal``,
    ``wall_x``, ``door_y``).
    """

    def __init__(self, model: BaseAlgorithm, name: str = "sb3") -> None:
        self.model = model
        self.name = name
        obs_space = model.observation_space["observation"]
        self.obs_kind = "pixels" if len(obs_space.shape) == 3 else "state"
        self.privileged = self.obs_kind == "state"

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "SB3Agent":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no SB3 model at {path} (train one with `python -m eval.baselines.sb3_agents --train`)")
        meta = path.with_suffix(".json")
        algo = json.loads(meta.read_text()).get("algo", "sac") if meta.is_file() else "sac"
        # HER needs an env to rebuild its buffer; acting needs no buffer: load with a 1-slot plain one.
        no_buffer = {"replay_buffer_class": DictReplayBuffer, "replay_buffer_kwargs": {}, "buffer_size": 1}
        model = ALGOS[algo].load(path, device=device, custom_objects=no_buffer)
        return cls(model, name=f"{algo}_her_{'pixels' if len(model.observation_space['observation'].shape) == 3 else 'state'}")

    def reset(self, n: int | None = None) -> None:
        """Memoryless policy: nothing to reset."""

    def dict_observation(self, obs: np.ndarray, goal: np.ndarray, info: dict | list[dict] | None = None) -> dict[str, np.ndarray]:
        """The model's batched dict input from frames [E, 2, 65, 65] (and infos for state models)."""
        obs, goal = np.asarray(obs), np.asarray(goal)
        if self.obs_kind == "pixels":
            return {"observation": obs, "achieved_goal": obs[:, :1], "desired_goal": goal[:, :1]}
        infos = [info] if isinstance(info, dict) else info
        if not infos or any(k not in infos[0] for k in ("position", "goal", "wall_x", "door_y")):
            raise ValueError("a state-based SB3 agent is privileged: it needs the env info dicts (position, goal, wall_x, door_y)")
        pos = np.stack([i["position"] for i in infos])
        tgt = np.stack([i["goal"] for i in infos])
        layout = np.array([[i["wall_x"], i["door_y"]] for i in infos], dtype=np.float64)
        return {
            "observation": to_unit(np.concatenate([pos, layout], axis=1)).astype(np.float32),
            "achieved_goal": to_unit(pos).astype(np.float32),
            "desired_goal": to_unit(tgt).astype(np.float32),
        }

    def act_batch(self, obs: np.ndarray, goal: np.ndarray, info: list[dict] | None = None) -> np.ndarray:
        """Frames [E, 2, 65, 65] and goal frames [E, 2, 65, 65] -> actions float32 [E, 2] (env units)."""
        action, _ = self.model.predict(self.dict_observation(obs, goal, info), deterministic=True)
        return np.asarray(action, dtype=np.float32).reshape(-1, 2)

    def act(self, obs: np.ndarray, goal: np.ndarray, info: dict | None = None) -> np.ndarray:
        """One frame and goal frame [2, 65, 65] -> action float32 (2,) in env units."""
        return self.act_batch(np.asarray(obs)[None], np.asarray(goal)[None], None if info is None else [info])[0]


def default_path(obs_kind: str, algo: str = "sac") -> Path:
    """Where ``--train`` saves a model by default: outputs/baselines/<algo>_her_<obs>.zip."""
    return Path("outputs/baselines") / f"{algo}_her_{obs_kind}.zip"


def load_policy(obs_kind: str, path: str | Path | None = None, device: str = "cpu") -> SB3Agent:
    """The evaluation registry's entry point: a trained agent of ``obs_kind`` ("pixels"/"state").

    ``path`` defaults to :func:`default_path`; FileNotFoundError if nothing is there, ValueError
    if the file holds the other observation kind.
    """
    if obs_kind not in OBS_KINDS:
        raise ValueError(f"obs_kind must be one of {OBS_KINDS}, got {obs_kind!r}")
    agent = SB3Agent.from_pretrained(path or default_path(obs_kind), device=device)
    if agent.obs_kind != obs_kind:
        raise ValueError(f"{path} holds a {agent.obs_kind} agent, not a {obs_kind} one")
    return agent


@dataclass
class SACTrainConfig:
    """The options of ``tworooms-train-sac``."""

    train: bool = False  # train an agent and save it to --checkpoint (required: nothing else to do)
    obs: str = field(default="state", metadata={"choices": OBS_KINDS})  # observations: pixels or the privileged state
    algo: str = field(default="sac", metadata={"choices": tuple(sorted(ALGOS))})  # off-policy algorithm
    timesteps: int = 50_000  # environment steps (the budget)
    max_minutes: float = 0.0  # wall-clock cap: stop early, keep what was learned (0: none)
    checkpoint: str = ""  # the .zip file to write ("": outputs/baselines/<algo>_her_<obs>.zip)
    seed: int = 0  # seed of the agent and of the environment
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads (0: torch's default)
    batch_size: int | None = None  # override the kind's default batch size
    train_freq: int | None = None  # env steps per gradient step (override)

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("nothing to do: pass --train (evaluate with `python -m eval.planning --agent sb3-state`)")
        if self.timesteps < 1 or self.max_minutes < 0 or self.threads < 0:
            raise ValueError("--timesteps must be >= 1, --max-minutes and --threads >= 0")


CLI = ConfigCLI(SACTrainConfig, prog="tworooms-train-sac", description="Train SAC/TD3 + HER on TwoRooms-v0 (pixels or privileged state).",
                aliases={"out": "checkpoint"})


def main(argv: list[str] | None = None) -> int:
    """The command line (``tworooms-train-sac``); a user mistake is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = CLI.parse(argv)
    overrides = {k: v for k, v in (("batch_size", args.batch_size), ("train_freq", args.train_freq)) if v is not None}
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.checkpoint or default_path(args.obs, args.algo)
    _, stats = train(args.obs, args.timesteps, out, algo=args.algo, seed=args.seed, device=args.device,
                     minutes=args.max_minutes or None, **overrides)
    print(f"saved {out}: {stats['timesteps']} steps in {stats['wall_seconds']:.0f} s ({stats['steps_per_second']:.1f} steps/s), "
          f"training success (last 50 episodes) {stats['train_success_last_50']}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
