"""Train the action-conditioned JEPA world model.

    python -m training.world_model                              # the cpu preset (<= 30 min, 2 cores)
    python -m training.world_model --preset tiny out_dir=/tmp/wm
    python -m training.world_model --preset reference --device cuda
    torchrun --nproc_per_node 2 -m training.world_model --preset cpu   # DDP (gloo on CPU)

Every ``--key value`` / ``key=value`` overrides a field of ``training.wm_config.TrainConfig``.
Outputs in ``out_dir``: ``last.pt`` (full training state, saved every epoch, on Ctrl-C or SIGTERM
(then exit 130 / 143) and at the end; resume with ``resume=auto``), ``model.pt`` (weights + config only, for
``load_world_model``), ``log.csv`` (every ``log_every`` steps), ``gates.csv`` (diagnostic gates per
epoch), TensorBoard events (if installed).

Data: each step's batch is drawn from a generator seeded with (seed, rank, step), so a resumed
run sees exactly the batches the uninterrupted run would have seen (exact resume). Windows are
fresh random-walk trajectories of ``window`` states (``tworooms_env.random_walk``), rendered per
batch by ``training.data.render_windows``; or windows of a stored dataset (``dataset=path``).
"""

from __future__ import annotations

import csv
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jepa_agent.precision import autocast as amp_autocast
from jepa_agent.precision import use_bf16
from jepa_agent.regularizers import effective_rank
from jepa_agent.validation import load_checkpoint_file
from jepa_agent.world_model import WorldModel, check_checkpoint, checkpoint_dict
from training.data import TrajectoryWindows, render_windows
from training.diagnostics import collapse_warning, run_gates
from training.distributed import resolve_device, setup_distributed
from training.interrupt import Interrupted, StopSignal, atomic_save, remove_if_empty, truncate_csv
from training.wm_config import STREAM_KEYS, TrainConfig, make_config
from tworooms_env import core
from tworooms_env.collect import write_dataset
from tworooms_env.dataset import read_metadata, sha256_file
from tworooms_env.families import segment_trajectories
from tworooms_env.random_walk import Trajectories, WalkConfig, generate_trajectories


# ------------------------------------------------------------------------------------ data
@lru_cache(maxsize=1)
def _wall_profile_table() -> tuple[np.ndarray, np.ndarray]:
    """Row and column sums of the wall channel of every layout: int32 [25, 45, 65] each."""
    wx = np.arange(core.WALL_X_MIN, core.WALL_X_MAX + 1)
    dy = np.arange(core.DOOR_Y_MIN, core.DOOR_Y_MAX + 1)
    walls = np.stack([np.stack([core.render_walls(w, d) for d in dy]) for w in wx])  # [25, 45, 65, 65]
    return walls.sum(axis=3, dtype=np.int32), walls.sum(axis=2, dtype=np.int32)


def profiles_from_positions(positions: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray):
    """The raw profiles of ``core.render_frames(positions, wall_x, door_y)`` without rendering.

    Returns (rows, cols) int32 [N, 2, 65] each, equal to the row and column sums of the rendered
    uint8 frames (``ProfileEncoder.raw_profiles``): the dot's 9 x 9 patch is summed where it
    lands and the walls' sums are read from a per-layout table. ~100x cheaper than rendering.
    """
    patch, row0, col0 = core.dot_patches(positions)
    n, k = patch.shape[0], patch.shape[1]
    rows = np.zeros((n, 2, core.IMG_SIZE), dtype=np.int32)
    cols = np.zeros((n, 2, core.IMG_SIZE), dtype=np.int32)
    idx = np.arange(n)[:, None]
    rows[idx, 0, row0[:, None] + np.arange(k)] = patch.sum(axis=2, dtype=np.int32)
    cols[idx, 0, col0[:, None] + np.arange(k)] = patch.sum(axis=1, dtype=np.int32)
    wall_rows, wall_cols = _wall_profile_table()
    wi, di = np.asarray(wall_x) - core.WALL_X_MIN, np.asarray(door_y) - core.DOOR_Y_MIN
    rows[:, 1], cols[:, 1] = wall_rows[wi, di], wall_cols[wi, di]
    return rows, cols


def prepare_dataset(cfg: TrainConfig, rank: int = 0) -> dict:
    """The dataset ``cfg.dataset`` names, collected on first use; checked against the config.

    Returns what a checkpoint records of it: path, name, tier, trajectories, length, sha256.
    Raises ValueError when the file's tier or generator parameters differ from the config's
    (a dataset cannot honour rates it was not written with). A file of a named layout split
    (``tworooms-collect --split``) or of the no-door-crossing variant is accepted under its tier:
    the former holds train layouts only, the latter has no crossings whatever ``cross_wall_rate``
    says; both are recorded (``layout_split``, ``door_crossings``).
    """
    path = Path(cfg.dataset)
    if not path.is_file():
        if rank != 0 or os.environ.get("WORLD_SIZE", "1") != "1":
            raise FileNotFoundError(f"dataset file {path} not found; write it first with `tworooms-collect --tier "
                                    f"{cfg.data_tier} --out {path}` (DDP runs do not collect)")
        tier = cfg.tier_config()
        print(f"dataset {path} not found: collecting {cfg.dataset_size:,} trajectories of tier {tier.tier!r} "
              f"(tworooms-collect --tier {tier.tier} --num-trajectories {cfg.dataset_size} --out {path}) ...",
              file=sys.stderr)
        write_dataset(path, tier, cfg.dataset_size, seed=0, window=cfg.window)
    meta = read_metadata(path)
    tier = meta.get("tier", "random" if meta.get("generator", "").startswith("tworooms_env.random_walk") else None)
    if tier != cfg.data_tier:
        raise ValueError(f"dataset {path} holds tier {tier!r} but data_tier={cfg.data_tier!r}; set data_tier to the "
                         "file's tier or point dataset= at a file of that tier")
    params = meta.get("generator_params", {})
    # The no-door-crossing variant of a tier drops its crossings whatever rate the config asks for.
    exempt = {"cross_wall_rate"} if params.get("door_crossings") is False else set()
    wrong = {k: (getattr(cfg, k), params[k]) for k in STREAM_KEYS
             if k in params and k not in exempt and not math.isclose(float(getattr(cfg, k)), float(params[k]), abs_tol=1e-9)}
    if wrong:
        text = ", ".join(f"{k}={mine!r} (file: {theirs!r})" for k, (mine, theirs) in wrong.items())
        raise ValueError(f"dataset {path} cannot honour {text}: collect a dataset with these rates, set them to "
                         "the file's values, or stream fresh windows with dataset=''")
    if meta.get("length", 0) < cfg.window:
        raise ValueError(f"dataset {path} holds trajectories of {meta.get('length')} states, shorter than "
                         f"window={cfg.window}")
    return {"path": str(path), "name": path.name, "tier": tier, "trajectories": int(meta["num_trajectories"]),
            "length": int(meta["length"]), "sha256": sha256_file(path),
            "layout_split": (meta.get("layout_split") or {}).get("name"), "door_crossings": params.get("door_crossings", True)}


class WindowSource:
    """Batches of windows as a pure function of (seed, rank, step): exact resume for free.

    From the dataset file ``cfg.dataset`` (windows drawn uniformly over every stored trajectory and
    start), or streamed fresh from the generator when ``cfg.dataset`` is empty.
    """

    def __init__(self, cfg: TrainConfig, rank: int = 0, dataset_info: dict | None = None):
        self.cfg, self.rank = cfg, rank
        # A profile encoder only reads row / column sums: stream those instead of frames.
        self.profiles = cfg.encoder == "profile" and cfg.fast_profiles and not cfg.dataset
        self.dataset = None
        self.info = {"tier": cfg.data_tier, "stream": True}
        if cfg.dataset:
            self.info = dataset_info or prepare_dataset(cfg, rank)
            self.dataset = TrajectoryWindows.from_file(cfg.dataset, window=cfg.window, split="train")
        else:
            self.walk = WalkConfig(length=cfg.window, cross_wall_rate=cfg.cross_wall_rate,
                                   wall_bump_rate=cfg.wall_bump_rate, fixed_wall=cfg.fixed_wall,
                                   step_mean=cfg.step_mean, step_std=cfg.step_std, step_max=cfg.step_max)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, self.rank, step])
        if self.dataset is not None:
            return self.dataset.sample_batch(self.cfg.batch_size, rng, self.cfg.frame_stride)
        n, t_len = self.cfg.batch_size, self.cfg.window
        n_seg = int(round(self.cfg.segment_rate * n))
        traj = generate_trajectories(rng, n - n_seg, self.walk)  # one window per trajectory
        if n_seg:
            traj = Trajectories.concatenate([traj, segment_trajectories(rng, n_seg, t_len, self.walk, self.cfg.parallel_rate,
                                                                           self.cfg.door_aim_rate, self.cfg.push_rate,
                                                                           self.cfg.detour_rate)])
        if not self.profiles:
            return render_windows(traj, np.arange(n), np.zeros(n, dtype=np.int64), t_len, self.cfg.frame_stride)
        rows, cols = profiles_from_positions(traj.positions.reshape(-1, 2), np.repeat(traj.wall_x, t_len),
                                             np.repeat(traj.door_y, t_len))
        return {
            "profiles": (torch.from_numpy(rows.reshape(n, t_len, 2, -1)), torch.from_numpy(cols.reshape(n, t_len, 2, -1))),
            "actions": torch.from_numpy(traj.actions),
            "positions": torch.from_numpy(traj.positions),
            "wall_x": torch.from_numpy(traj.wall_x.astype(np.int64)),
            "door_y": torch.from_numpy(traj.door_y.astype(np.int64)),
        }


# ---------------------------------------------------------------------------- infrastructure
def warmup_cosine(total: int, warmup_frac: float, min_factor: float):
    """LR factor per step: linear warmup then cosine down to ``min_factor`` (SPEC 3.6)."""
    warmup = max(1, int(warmup_frac * total))

    def factor(step: int) -> float:
        if step < warmup:
            return max(1e-8, step / warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class CsvLog:
    """Append rows to a CSV file; the columns are fixed by the first row."""

    def __init__(self, path: Path):
        self.path, self.columns = path, None
        if path.is_file():
            with open(path) as f:
                header = f.readline().strip()
            self.columns = header.split(",") if header else None

    def write(self, row: dict) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def _tensorboard(out_dir: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional dependency
        return None
    return SummaryWriter(str(out_dir / "tb"))


def clip_groups(model: WorldModel) -> list[list[nn.Parameter]]:
    """Gradient-clipping groups as in the reference: encoder; predictor + action encoder (IDM and
    probes are not clipped)."""
    return [list(model.encoder.parameters()),
            list(model.predictor.parameters()) + list(model.action_encoder.parameters())]


def save_checkpoint(path: Path, model: WorldModel, cfg: TrainConfig, **state) -> None:
    atomic_save(checkpoint_dict(model, cfg.to_dict(), **state), path)  # a crash mid-save never destroys the last good one


def load_training_state(path: Path, cfg: TrainConfig) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
    ckpt = check_checkpoint(load_checkpoint_file(path, "world-model checkpoint"), path)
    if "optimizer" not in ckpt:
        raise ValueError(f"{path} holds weights only (no optimiser state): it cannot be resumed")
    if ckpt["model_config"] != cfg.model_config().__dict__:
        diff = {k: (v, cfg.model_config().__dict__.get(k)) for k, v in ckpt["model_config"].items()
                if cfg.model_config().__dict__.get(k) != v}
        raise ValueError(f"cannot resume {path}: its model config differs from this run's: {diff}")
    return ckpt


# ------------------------------------------------------------------------------------ train
def train(cfg: TrainConfig, stop_after: int = 0, progress: bool = True) -> tuple[WorldModel, dict]:
    """Train (or resume) per ``cfg``. ``stop_after`` > 0 stops after that many steps of this call
    (saving the full state, as on Ctrl-C). Returns (model, summary dict)."""
    rank, world = setup_distributed()
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = WorldModel(cfg.model_config()).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.total_steps()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, warmup_cosine(total, cfg.warmup_frac, cfg.min_lr / cfg.lr))
    start_step, elapsed_before = 0, 0.0
    last_path = out_dir / "last.pt"
    resume = last_path if cfg.resume == "auto" and last_path.is_file() else (Path(cfg.resume) if cfg.resume not in ("", "auto") else None)
    if cfg.resume == "auto" and resume is None and rank == 0:
        print(f"resume=auto: nothing to resume from (no {last_path}); starting a fresh run", file=sys.stderr)
    if resume is not None:
        ckpt = load_training_state(resume, cfg)
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        start_step, elapsed_before = int(ckpt["step"]), float(ckpt.get("elapsed_s", 0.0))
        if rank == 0:
            print(f"resumed from {resume} at step {start_step}")
            for name in ("log.csv", "gates.csv"):  # rows logged after that checkpoint come again
                truncate_csv(out_dir / name, start_step)
    train_model: nn.Module = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=cfg.idm_coeff == 0)
    if cfg.compile:
        if device.type == "cuda":
            train_model = torch.compile(train_model)
        elif rank == 0:
            print("compile=true ignored on CPU (torch.compile pays off on CUDA only)", file=sys.stderr)
    bf16 = use_bf16(cfg.amp, device)
    autocast = amp_autocast(device, bf16) if bf16 else nullcontext()
    source = WindowSource(cfg, rank)
    data = {"data_tier": source.info["tier"], "dataset": source.info}
    if rank == 0:
        where = "a fresh stream" if cfg.dataset == "" else f"{source.info['name']} ({source.info['trajectories']:,} trajectories)"
        print(f"data: tier {cfg.data_tier!r} from {where}; encoder {cfg.encoder!r}; bf16 autocast {'on' if bf16 else 'off'}")
    log = CsvLog(out_dir / "log.csv") if rank == 0 else None
    gate_log = CsvLog(out_dir / "gates.csv") if rank == 0 else None
    tb = _tensorboard(out_dir, cfg.tensorboard) if rank == 0 else None
    flag = StopSignal().install()  # SIGINT and SIGTERM: save last.pt after this step, then stop

    def state(step: int) -> dict:
        return dict(**data, optimizer=optimiser.state_dict(), scheduler=scheduler.state_dict(),
                    torch_rng=torch.get_rng_state(), step=step, epoch=step // cfg.steps_per_epoch,
                    elapsed_s=elapsed_before + time.perf_counter() - t0)

    summary: dict = {"status": "running", "start_step": start_step}
    t0 = time.perf_counter()
    t_window, windows = time.perf_counter(), 0
    bar = tqdm(range(start_step, total), initial=start_step, total=total, disable=not progress or rank != 0,
               desc="world model", dynamic_ncols=True)
    step = start_step
    try:
        for step in bar:
            batch = source.batch(step)
            obs = (tuple(p.to(device) for p in batch["profiles"]) if "profiles" in batch
                   else batch["frames"].to(device, non_blocking=True))
            layout = torch.stack([batch["wall_x"], batch["door_y"]], dim=1).to(device)
            with autocast:
                loss, terms = train_model(obs, batch["actions"].to(device), batch["positions"].to(device), layout)
            flags = torch.tensor([float(not torch.isfinite(loss)), float(flag.stop)], device=device)  # NCCL: on the GPU
            if world > 1:
                torch.distributed.all_reduce(flags)
            if flags[0] > 0:
                bad = {k: float(v.detach()) for k, v in terms.items()}
                raise FloatingPointError(
                    f"loss is not finite at step {step} (terms {bad}); training stopped. The last good "
                    f"checkpoint is {last_path} (not overwritten). Try a lower lr or grad_clip.")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                for group in clip_groups(model):
                    torch.nn.utils.clip_grad_norm_(group, cfg.grad_clip)
            optimiser.step()
            scheduler.step()
            windows += cfg.batch_size * world
            done = step + 1
            if rank == 0 and (done % cfg.log_every == 0 or done == total):
                row = _log_row(model, obs, terms, done, scheduler, windows / (time.perf_counter() - t_window),
                               elapsed_before + time.perf_counter() - t0)
                t_window, windows = time.perf_counter(), 0
                log.write(row)
                if tb is not None:
                    for k, v in row.items():
                        tb.add_scalar(f"train/{k}", v, done)
                bar.set_postfix(energy=f"{row['energy']:.3f}", pred=f"{row['pred']:.4f}",
                                probe=f"{row['probe_rmse_px']:.2f}px", wps=f"{row['windows_per_s']:.0f}")
                warning = collapse_warning(row["emb_std"], row["eff_rank"], cfg)
                if warning and done >= cfg.steps_per_epoch:
                    print(f"\nWARNING step {done}: {warning}", file=sys.stderr)
            epoch_end = done % cfg.steps_per_epoch == 0 or done == total
            stop = flags[1] > 0 or (stop_after and done - start_step >= stop_after) or (
                cfg.max_minutes and elapsed_before + time.perf_counter() - t0 >= 60 * cfg.max_minutes)
            if rank == 0 and (epoch_end or stop):
                save_checkpoint(last_path, model, cfg, **state(done))
            if rank == 0 and epoch_end and cfg.gate_samples:
                gates = {"step": done, "epoch": done // cfg.steps_per_epoch,
                         "elapsed_s": round(elapsed_before + time.perf_counter() - t0, 1),
                         **run_gates(model, cfg.gate_samples, seed=cfg.seed)}
                gate_log.write(gates)
                if tb is not None:
                    for k, v in gates.items():
                        tb.add_scalar(f"gates/{k}", v, done)
                tqdm.write("gates " + " ".join(f"{k}={v:.3g}" for k, v in gates.items()))
                summary["gates"] = gates
            if stop:
                summary["status"] = "interrupted" if flags[1] > 0 else "stopped"
                summary["exit_code"] = flag.exit_code or (130 if flags[1] > 0 else 0)  # 130: another rank's Ctrl-C
                break
        else:
            summary["status"] = "finished"
    finally:
        bar.close()
        flag.restore()
        if tb is not None:
            tb.close()
    summary.update(step=step + 1 if summary["status"] != "running" else step,
                   elapsed_s=elapsed_before + time.perf_counter() - t0, out_dir=str(out_dir))
    if rank == 0 and summary["status"] in ("finished", "stopped"):  # stopped: the time budget ran out
        atomic_save(checkpoint_dict(model, cfg.to_dict(), step=total, elapsed_s=summary["elapsed_s"],
                                    gates=summary.get("gates", {}), **data), out_dir / "model.pt")
    return model, summary


@torch.no_grad()
def _log_row(model, obs, terms, step, scheduler, windows_per_s, elapsed) -> dict:
    if isinstance(obs, tuple):
        z = model.encoder.encode_profiles(obs[0][:, 0].float(), obs[1][:, 0].float())
    else:
        z = model.encode(obs[:, 0])
    z = z[:, : model.agent_dim].float()  # first frames: a cheap spread check
    row = {"step": step, "lr": scheduler.get_last_lr()[0], "elapsed_s": round(elapsed, 2),
           "windows_per_s": windows_per_s}
    row.update({k: float(v) for k, v in terms.items()})
    row["probe_rmse_px"] = math.sqrt(row.get("probe", float("nan")))
    row["emb_std"] = float(z.std(dim=0).mean())
    row["eff_rank"] = effective_rank(z)
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print("config fields and cpu-preset defaults:")
        for k, v in TrainConfig().to_dict().items():
            print(f"  {k} = {v!r}")
        return 0
    try:
        cfg = make_config(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        print(f"training world model, preset {cfg.preset}, out_dir {cfg.out_dir}")
    created = not Path(cfg.out_dir).exists()
    try:
        _, summary = train(cfg)
    except (FloatingPointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        remove_if_empty(cfg.out_dir, created)
        return 1
    except Interrupted as e:  # a second signal: aborted without saving
        print(f"aborted by {e}", file=sys.stderr)
        return e.exit_code
    if rank == 0:
        print(f"{summary['status']} at step {summary['step']} after {summary['elapsed_s'] / 60:.1f} min; "
              f"checkpoints in {summary['out_dir']}")
        if "gates" in summary:
            print("final gates: " + " ".join(f"{k}={v:.3g}" for k, v in summary["gates"].items()))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return summary.get("exit_code", 0)


if __name__ == "__main__":
    sys.exit(main())
