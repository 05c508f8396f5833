"""Convolutional GCBC: goal-conditioned behaviour cloning with a pixel CNN (the shipped ``gcbc.pt``).

A small CNN maps (observation, goal) pixels to an action, trained by regression with *hindsight*
goals: for a state t of a trajectory the goal is a later state t' > t of the same trajectory and
the target is the action a_t that the data took there (PLDM, OGBench, stable-worldmodel use the
same recipe)::

    loss = || pi(o_t, o_t') - a_t / 2.45 ||^2,   t' ~ U{t + 1, ..., min(t + max_gap, L - 1)}

Data: the "train" split of the trajectory file ``--data`` when given; without it (the default,
and how the shipped ``weights/gcbc.pt`` was trained) ``--n-trajectories`` walks freshly generated
by ``tworooms_env.random_walk`` with its default parameters. That is *not* the world model's
training data. For comparisons on the same dataset files use :mod:`eval.baselines.gcbc`
(``python -m eval.baselines.train --method gcbc --dataset F.npz``), which also carries the
dataset's tier and checksum.

Frames are rendered on the fly from the compact trajectories (positions and layouts), so the data
costs a few bytes per state and every batch sees fresh (state, goal) pairs.

Usage::

    python -m eval.baselines.gcbc_cnn --train --max-minutes 5 --checkpoint outputs/baselines/gcbc.pt
    agent = GCBCAgent.from_pretrained("outputs/baselines/gcbc.pt")
    action = agent.act(obs, goal_obs)   # float32 (2,), env units (pixels / 2.45)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jepa_agent.validation import check_frames, load_checkpoint_file, state_checksum, verify_state
from training.interrupt import atomic_save
from tworooms_env import core
from tworooms_env.cli import ConfigCLI, run_cli
from tworooms_env.random_walk import Trajectories, WalkConfig, generate_trajectories

FORMAT = "tworooms-jepa/gcbc"
FORMAT_VERSION = 1
OBS_SHAPE = (core.N_CHANNELS, core.IMG_SIZE, core.IMG_SIZE)


# ------------------------------------------------------------------------------------ configs
@dataclass
class GCBCConfig:
    """Architecture of the policy network (saved in every checkpoint)."""

    stem: int = 4  # first conv: stem x stem patches, stride stem (cheap on a CPU; the dot spans ~5 px)
    channels: tuple[int, ...] = (32, 64, 64)  # the stem's width, then one stride-2 3x3 conv each
    hidden: int = 256
    coord_channels: bool = True  # x/y maps as extra input: convs then know where the wall is

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels or min(self.channels) < 1 or self.hidden < 1 or not 1 <= self.stem <= 8:
            raise ValueError(
                f"need channels: non-empty tuple of positive ints, hidden > 0, stem in 1..8; "
                f"got {self.channels}, {self.hidden}, {self.stem}"
            )


@dataclass
class GCBCTrainConfig:
    """Data and optimisation of one training run (saved in every checkpoint)."""

    data: str | None = None  # a file of `python -m tworooms_env.collect` (its "train" split); None: generate
    n_trajectories: int = 20_000  # when generating
    walk: dict[str, Any] = field(default_factory=lambda: WalkConfig().to_dict())
    max_goal_gap: int | None = None  # None: any later state of the trajectory
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 1e-4
    steps: int = 20_000
    minutes: float | None = None  # wall-clock cap; whichever of steps/minutes comes first
    seed: int = 0
    log_every: int = 100
    val_trajectories: int = 500
    val_samples: int = 1024


# -------------------------------------------------------------------------------------- model
class GCBCPolicy(nn.Module):
    """pi(o, g): uint8/float [B, 2, 65, 65] twice -> action [B, 2] in env units (tanh, in [-1, 1])."""

    def __init__(self, config: GCBCConfig | None = None) -> None:
        super().__init__()
        self.config = config or GCBCConfig()
        in_ch = 2 * core.N_CHANNELS + (2 if self.config.coord_channels else 0)
        stem, (width, *rest) = self.config.stem, self.config.channels
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, stem, stride=stem), nn.GELU()]
        side, in_ch = (core.IMG_SIZE - stem) // stem + 1, width
        for out_ch in rest:
            layers += [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), nn.GELU()]
            side, in_ch = (side + 1) // 2, out_ch
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(in_ch * side * side, self.config.hidden), nn.GELU(),
            nn.Linear(self.config.hidden, 2), nn.Tanh(),
        )
        ramp = torch.linspace(-1.0, 1.0, core.IMG_SIZE)
        coords = torch.stack(torch.meshgrid(ramp, ramp, indexing="xy"))  # [2, H, W]: x then y
        self.register_buffer("coords", coords, persistent=False)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        if obs.shape[-3:] != OBS_SHAPE or goal.shape != obs.shape:
            raise ValueError(f"obs and goal must both be [B, 2, 65, 65], got {tuple(obs.shape)} and {tuple(goal.shape)}")
        x = torch.cat([obs, goal], dim=1)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.config.coord_channels:
            x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1)
        return self.head(self.conv(x))


# ----------------------------------------------------------------------------------- data
def sample_hindsight_indices(
    rng: np.random.Generator, n_trajectories: int, n_states: int, batch_size: int, max_gap: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trajectory i, state t, goal state t_goal), each [batch_size] int64, t < t_goal < n_states.

    t is uniform over the states that have an action; the gap t_goal - t is uniform in
    1 .. min(max_gap, n_states - 1 - t): the goal is always a later state of the same trajectory.
    """
    if n_trajectories < 1 or n_states < 2:
        raise ValueError(f"need >= 1 trajectory of >= 2 states, got {n_trajectories} of {n_states}")
    if max_gap is not None and max_gap < 1:
        raise ValueError(f"max_gap must be >= 1 or None, got {max_gap}")
    i = rng.integers(0, n_trajectories, batch_size)
    t = rng.integers(0, n_states - 1, batch_size)
    longest = n_states - 1 - t
    if max_gap is not None:
        longest = np.minimum(longest, max_gap)
    gap = 1 + np.floor(rng.random(batch_size) * longest).astype(np.int64)
    return i, t, t + gap


def hindsight_batch(
    traj: Trajectories, rng: np.random.Generator, batch_size: int, max_gap: int | None = None
) -> dict[str, np.ndarray]:
    """A training batch: obs, goal uint8 [B, 2, 65, 65]; action float32 [B, 2] in env units."""
    i, t, t_goal = sample_hindsight_indices(rng, len(traj), traj.positions.shape[1], batch_size, max_gap)
    wall_x, door_y = traj.wall_x[i], traj.door_y[i]
    return {
        "obs": core.render_frames(traj.positions[i, t], wall_x, door_y),
        "goal": core.render_frames(traj.positions[i, t_goal], wall_x, door_y),
        "action": (traj.actions[i, t] / core.MAX_STEP_NORM).astype(np.float32),
        "index": np.stack([i, t, t_goal], axis=1),
    }


def load_train_split(path: str | Path) -> Trajectories:
    """The "train" split (by layout, as the world model uses it) of a collected trajectory file."""
    from tworooms_env.dataset import load_trajectories
    from training.data import split_rows, subset

    traj, meta = load_trajectories(path)
    return subset(traj, split_rows(traj, meta, "train"))


# ------------------------------------------------------------------------------ checkpoints
def save_checkpoint(path: str | Path, policy: GCBCPolicy, train_config: GCBCTrainConfig, stats: dict) -> Path:
    """Save weights, both configs and training stats (loadable with ``weights_only=True``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in policy.state_dict().items()}
    return atomic_save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": asdict(policy.config) | {"channels": list(policy.config.channels)},
            "train_config": asdict(train_config),
            "stats": stats,
            "model": state,
            "checksum": state_checksum(state),
        },
        path,
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[GCBCPolicy, dict]:
    """(policy in eval mode, the checkpoint dict without weights); ValueError on a foreign file."""
    ckpt = load_checkpoint_file(path, "GCBC checkpoint", map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a GCBC checkpoint: expected format {FORMAT!r}, got {got!r}")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: GCBC format_version {ckpt.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    verify_state(ckpt["model"], path, ckpt.get("checksum"))
    policy = GCBCPolicy(GCBCConfig(**ckpt["config"]))
    policy.load_state_dict(ckpt["model"])
    policy.to(map_location).eval()
    return policy, {k: v for k, v in ckpt.items() if k != "model"}


# ------------------------------------------------------------------------------------ agent
class GCBCAgent:
    """A trained GCBC policy behind the evaluation's policy interface (pixels in, env action out)."""

    name = "gcbc"

    def __init__(self, policy: GCBCPolicy, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.policy = policy.to(self.device).eval()

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "GCBCAgent":
        policy, _ = load_checkpoint(path, map_location=device)
        return cls(policy, device)

    def reset(self, n: int | None = None) -> None:
        """GCBC is memoryless: nothing to reset."""

    def act_batch(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """obs, goal uint8 [E, 2, 65, 65] -> actions float32 [E, 2] in env units."""
        obs_t = torch.as_tensor(check_frames(np.asarray(obs), "obs"), device=self.device)
        goal_t = torch.as_tensor(check_frames(np.asarray(goal), "goal"), device=self.device)
        with torch.inference_mode(), _autocast(self.device):
            action = self.policy(obs_t, goal_t)
        return action.float().cpu().numpy().astype(np.float32)

    def act(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """One observation and goal [2, 65, 65] -> action float32 (2,) in env units."""
        obs, goal = np.asarray(obs), np.asarray(goal)
        if obs.shape != OBS_SHAPE or goal.shape != OBS_SHAPE:
            raise ValueError(f"act expects obs and goal of shape {OBS_SHAPE}, got {obs.shape} and {goal.shape}; use act_batch for batches")
        return self.act_batch(obs[None], goal[None])[0]


def _autocast(device: torch.device):
    """bf16 autocast on CUDA, a no-op elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


# --------------------------------------------------------------------------------- training
def train(
    train_config: GCBCTrainConfig | None = None,
    config: GCBCConfig | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
    trajectories: Trajectories | None = None,
    progress: bool = True,
    policy: GCBCPolicy | None = None,
) -> tuple[GCBCPolicy, dict]:
    """Train GCBC on random-walk trajectories; returns (policy, stats) and saves to ``out``.

    ``trajectories`` defaults to the "train" split of the file ``data`` (when given)
    or, without a file, ``n_trajectories`` walks of the same generator (``tworooms_env.random_walk``)
    drawn from ``seed``. Validation always uses an independent draw of the generator. Pass
    ``policy`` to continue training an existing network (``config`` is then ignored).
    """
    tc = train_config or GCBCTrainConfig()
    dev = torch.device(device)
    torch.manual_seed(tc.seed)
    rng = np.random.default_rng([tc.seed, 0])
    walk = WalkConfig.from_dict(tc.walk)
    if trajectories is None and tc.data is not None:
        trajectories = load_train_split(tc.data)
    if trajectories is None:
        trajectories = generate_trajectories(np.random.default_rng([tc.seed, 1]), tc.n_trajectories, walk)
    val_traj = generate_trajectories(np.random.default_rng([tc.seed, 2]), tc.val_trajectories, walk)
    val = hindsight_batch(val_traj, np.random.default_rng([tc.seed, 3]), tc.val_samples, tc.max_goal_gap)

    policy = (policy or GCBCPolicy(config)).to(dev).train()
    opt = torch.optim.AdamW(policy.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)

    def to_dev(batch: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        return tuple(torch.as_tensor(batch[k], device=dev) for k in ("obs", "goal", "action"))

    def val_loss() -> float:
        policy.eval()
        with torch.inference_mode(), _autocast(dev):
            o, g, a = to_dev(val)
            loss = ((policy(o, g).float() - a) ** 2).sum(-1).mean().item()
        policy.train()
        return loss

    history: list[dict[str, float]] = [{"step": 0, "val_loss": val_loss(), "seconds": 0.0}]
    start, running, step = time.perf_counter(), [], 0
    bar = tqdm(total=tc.steps, desc="gcbc", disable=not progress, smoothing=0.05)
    for step in range(1, tc.steps + 1):
        obs, goal, action = to_dev(hindsight_batch(trajectories, rng, tc.batch_size, tc.max_goal_gap))
        with _autocast(dev):
            loss = ((policy(obs, goal).float() - action) ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(loss.item())
        bar.update(1)
        elapsed = time.perf_counter() - start
        out_of_time = tc.minutes is not None and elapsed > 60.0 * tc.minutes
        if step % tc.log_every == 0 or step == tc.steps or out_of_time:
            row = {"step": step, "train_loss": float(np.mean(running)), "val_loss": val_loss(), "seconds": elapsed}
            history.append(row)
            running = []
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row['val_loss']:.4f}")
        if out_of_time:
            break
    bar.close()
    wall = time.perf_counter() - start
    stats = {
        "steps": step,
        "samples": step * tc.batch_size,
        "wall_seconds": wall,
        "samples_per_second": step * tc.batch_size / max(wall, 1e-9),
        "n_trajectories": len(trajectories),
        "states_per_trajectory": int(trajectories.positions.shape[1]),
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "history": history,
    }
    if out is not None:
        save_checkpoint(out, policy, tc, stats)
        Path(out).with_suffix(".json").write_text(json.dumps(stats, indent=2))
    return policy.eval(), stats


@dataclass
class GCBCCNNTrainConfig:
    """The options of ``tworooms-train-gcbc-cnn``."""

    train: bool = False  # train a policy and save it to --checkpoint (required: nothing else to do)
    checkpoint: str = "outputs/baselines/gcbc.pt"  # the checkpoint file to write
    steps: int = GCBCTrainConfig.steps  # gradient steps
    max_minutes: float = 0.0  # wall-clock cap on training (0: none)
    batch_size: int = GCBCTrainConfig.batch_size  # (observation, goal, action) triples per step
    lr: float = GCBCTrainConfig.lr  # Adam learning rate
    dataset: str = ""  # trajectory file of tworooms-collect ("": generate random walks)
    n_trajectories: int = GCBCTrainConfig.n_trajectories  # random walks to generate (without --dataset)
    max_goal_gap: int | None = None  # farthest hindsight goal, in steps (none: any later state)
    seed: int = 0  # seed of the weights, the data and the batches
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads (0: torch's default)

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("nothing to do: pass --train (evaluate with `python -m eval.planning --agent gcbc`)")
        if self.steps < 1 or self.batch_size < 1 or self.max_minutes < 0 or self.threads < 0:
            raise ValueError("--steps and --batch-size must be >= 1, --max-minutes and --threads >= 0")


CLI = ConfigCLI(GCBCCNNTrainConfig, prog="tworooms-train-gcbc-cnn",
                description="Train goal-conditioned behaviour cloning on random-walk data.",
                aliases={"out": "checkpoint", "data": "dataset"})


def main(argv: list[str] | None = None) -> int:
    """The command line (``tworooms-train-gcbc-cnn``); a user mistake is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = CLI.parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tc = GCBCTrainConfig(
        data=args.dataset or None, n_trajectories=args.n_trajectories, max_goal_gap=args.max_goal_gap,
        batch_size=args.batch_size, lr=args.lr, steps=args.steps, minutes=args.max_minutes or None, seed=args.seed,
    )
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    _, stats = train(tc, out=args.checkpoint, device=device)
    last = stats["history"][-1]
    print(
        f"saved {args.checkpoint}: {stats['steps']} steps, {stats['wall_seconds']:.0f} s, "
        f"{stats['samples_per_second']:.0f} samples/s, val loss {stats['history'][0]['val_loss']:.4f} -> {last['val_loss']:.4f}"
    )
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
