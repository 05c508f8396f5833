"""Unroll evaluation: how far the imagined rollout drifts from the true trajectory
(docs/reference.md#unroll-evaluation).

    python -m eval.unroll [--checkpoint PATH] [--out-dir DIR] [--n 16] [--horizon 16] [--seed 0]   # or tworooms-unroll

From each trajectory's first frame the model unrolls the true actions; the position probe decodes
every imagined latent. Printed and saved (``unroll_eval.json``): per time step, the mean decoded
position error (px) and the latent MSE against the encoded true frames; ``unroll_error.png``
plots them; ``unroll.gif`` shows true frames beside frames drawn (``core.render_frames``) at the
positions decoded from the imagined latents, for a few trajectories side by side.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tworooms_env import core
from tworooms_env import random_walk as rw
from tworooms_env.cli import REMOVAL, ConfigCLI, deprecated, run_cli

_GIF_SCALE = 3


def _rgb(frames: np.ndarray) -> np.ndarray:
    """uint8 [..., 2, 65, 65] -> RGB [..., 65, 65, 3]: dot red, walls green (docs/reference.md#frames)."""
    out = np.zeros((*frames.shape[:-3], core.IMG_SIZE, core.IMG_SIZE, 3), dtype=np.uint8)
    out[..., 0] = frames[..., 0, :, :]
    out[..., 1] = frames[..., 1, :, :] // 2
    return out


@torch.no_grad()
def unroll_eval(model, out_dir: str | Path, n: int = 16, horizon: int = 16, seed: int = 0,
                gif_trajectories: int = 4) -> dict:
    """Run the evaluation on ``n`` fresh trajectories; write JSON, PNG and GIF into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    k = getattr(model, "action_chunk", 1)
    horizon -= horizon % k
    device = next(model.parameters()).device
    traj = rw.generate_trajectories(np.random.default_rng([seed, 47]), n, rw.WalkConfig(length=horizon + 1))
    t_len = horizon + 1
    frames = core.render_frames(traj.positions.reshape(-1, 2), np.repeat(traj.wall_x, t_len),
                                np.repeat(traj.door_y, t_len)).reshape(n, t_len, 2, 65, 65)
    z_true = model.encode(torch.from_numpy(frames).to(device))[:, ::k]  # [n, H/k + 1, D]
    z_hat = model.unroll(z_true[:, 0], torch.from_numpy(traj.actions).to(device))
    xy = model.probe(z_hat).cpu().numpy()
    steps = np.arange(0, t_len, k)
    pos_err = np.linalg.norm(xy - traj.positions[:, steps], axis=-1)  # [n, H/k + 1]
    latent_mse = (z_hat - z_true).pow(2).mean(dim=-1).cpu().numpy()
    model.train(was_training)
    result = {
        "steps": steps.tolist(),
        "pos_err": pos_err.mean(axis=0).tolist(),
        "pos_err_std": pos_err.std(axis=0).tolist(),
        "latent_mse": latent_mse.mean(axis=0).tolist(),
        "trajectories": n,
    }
    print(" t  pos_err_px  latent_mse")
    for t, e, m in zip(steps, result["pos_err"], result["latent_mse"]):
        print(f"{t:2d}  {e:10.2f}  {m:10.4f}")
    (out_dir / "unroll_eval.json").write_text(json.dumps(result, indent=1))
    _plot(result, out_dir / "unroll_error.png")
    _gif(frames[:gif_trajectories, steps], xy[:gif_trajectories], traj, out_dir / "unroll.gif")
    return result


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].errorbar(result["steps"], result["pos_err"], yerr=result["pos_err_std"], marker="o", capsize=2)
    ax[0].set(xlabel="rollout step", ylabel="decoded position error (px)", title="imagined vs true position")
    ax[1].plot(result["steps"], result["latent_mse"], marker="o")
    ax[1].set(xlabel="rollout step", ylabel="latent MSE", title="imagined vs encoded latent")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _gif(true_frames: np.ndarray, decoded_xy: np.ndarray, traj, path: Path) -> None:
    """Per frame: for each trajectory, the true frame (top) over the frame drawn at the decoded
    imagined position (bottom)."""
    import imageio.v2 as imageio

    m, t_len = decoded_xy.shape[:2]
    xy = np.clip(decoded_xy, core.BORDER_LO + 0.5, core.BORDER_HI - 0.5).reshape(-1, 2)
    drawn = core.render_frames(xy, np.repeat(traj.wall_x[:m], t_len), np.repeat(traj.door_y[:m], t_len))
    drawn = drawn.reshape(m, t_len, 2, 65, 65)
    pictures = []
    for t in range(t_len):
        cols = [np.concatenate([_rgb(true_frames[i, t]), _rgb(drawn[i, t])], axis=0) for i in range(m)]
        pic = np.concatenate(cols, axis=1)
        pictures.append(np.repeat(np.repeat(pic, _GIF_SCALE, 0), _GIF_SCALE, 1))
    imageio.mimsave(path, pictures, duration=0.25, loop=0)


@dataclass
class UnrollConfig:
    """The options of ``tworooms-unroll``."""

    checkpoint: str | None = None  # world-model checkpoint (none: the shipped one)
    out_dir: str = "outputs/unroll_eval"  # directory of unroll_eval.json, unroll_error.png and unroll.gif
    n: int = 16  # trajectories
    horizon: int = 16  # environment steps unrolled
    seed: int = 0  # seed of the trajectories
    threads: int = 0  # torch CPU threads (0: torch's default)

    def __post_init__(self) -> None:
        if self.n < 1 or self.horizon < 1 or self.threads < 0:
            raise ValueError("--n and --horizon must be >= 1, --threads >= 0")


CLI = ConfigCLI(UnrollConfig, prog="tworooms-unroll", description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    """The command line (``tworooms-unroll``); a user mistake is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    from jepa_agent.world_model import load_world_model

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and "=" not in argv[0]:  # the checkpoint as a positional (0.2)
        deprecated(f"tworooms-unroll: a checkpoint as the first argument is deprecated and will be removed in "
                   f"{REMOVAL}; use --checkpoint {argv[0]}")
        argv = ["--checkpoint", *argv]
    args = CLI.parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    unroll_eval(load_world_model(args.checkpoint), args.out_dir, args.n, args.horizon, args.seed)
    print(f"wrote {args.out_dir}/unroll_eval.json, unroll_error.png, unroll.gif")
    return 0


if __name__ == "__main__":
    sys.exit(main())
