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

from jepa_agent.regularizers import effective_rank
from jepa_agent.validation import load_checkpoint_file
from jepa_agent.world_model import WorldModel, check_checkpoint, checkpoint_dict
from training.data import TrajectoryWindows, render_windows
from training.diagnostics import collapse_warning, run_gates
from training.distributed import resolve_device, setup_distributed
from training.interrupt import Interrupted, StopSignal, atomic_save, remove_if_empty, truncate_csv
from training.wm_config import TrainConfig, make_config
from tworooms_env import core
from tworooms_env import random_walk as rw
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


def detour_trajectories(rng: np.random.Generator, n: int, length: int, walk: WalkConfig) -> Trajectories:
    """Goal-directed door detours, as a plan that works makes them: noisy closed-loop runs of the
    door route (``core.door_route_waypoint``) to a goal in the other room.

    Per window: the goal uniform in the other room; the start uniform in its room (half) or 0-4 px
    from the centre wall (half: where a stalled agent must turn round); waypoints 2-8 px in front
    of and behind the door, aimed 0-2.5 px off its centre line, lined up within 1-3 px. The action is
    recomputed every 1-5 steps (held in between, as plan segments are), at 1.0-2.45 px per step
    with +-12 degrees of heading noise, so that some runs graze the door's edges.
    """
    wall_x, door_y = core.sample_layouts(rng, n, walk.fixed_wall)
    start, goal = core.sample_start_goal(rng, wall_x, door_y)
    near = rng.random(n) < 0.5
    if near.any():
        face = core.WALL_HALF_WIDTH + core.CONTACT_MARGIN
        side = np.where(goal[near, 0] > wall_x[near], -1.0, 1.0)  # the start room
        pts = np.stack([wall_x[near] + side * (face + rng.uniform(0.0, 4.0, near.sum())),
                        rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, near.sum())], axis=1)
        start[near] = rw.clip_to_free(rng, pts, wall_x[near], door_y[near])  # (a rare redraw may share the goal's room)
    standoff = rng.uniform(2.0, 8.0, n)
    align = rng.uniform(1.0, 3.0, n)
    offset = rng.uniform(-2.5, 2.5, n)
    n_act = length - 1
    hold = rng.integers(1, 6, size=(n, n_act))
    renew = (np.arange(n_act)[None, :] % hold) == 0  # recompute the action at these steps
    speed = rng.uniform(1.0, core.MAX_STEP_NORM, (n, n_act))
    noise = rng.normal(0.0, np.radians(12.0), (n, n_act))
    positions = np.empty((n, length, 2), dtype=np.float32)
    actions = np.empty((n, n_act, 2), dtype=np.float32)
    blocked = np.empty((n, n_act), dtype=bool)
    positions[:, 0] = start
    act = np.zeros((n, 2))
    for t in range(n_act):  # closed loop: sequential in time, vectorised over windows
        pos = positions[:, t].astype(np.float64)
        delta = core.door_route_waypoint(pos, goal, wall_x, door_y, standoff, align, door_offset=offset) - pos
        dist = np.linalg.norm(delta, axis=1)
        heading = np.arctan2(delta[:, 1], delta[:, 0]) + noise[:, t]
        step = np.minimum(speed[:, t], dist)
        new = np.stack([step * np.cos(heading), step * np.sin(heading)], axis=1)
        act = np.where(renew[:, t, None], new, act)  # renew[:, 0] is always True
        p_next, a_t, b_t = rw.simulate(positions[:, t], act[:, None], wall_x, door_y)
        positions[:, t + 1], actions[:, t], blocked[:, t] = p_next[:, 1], a_t[:, 0], b_t[:, 0]
    return Trajectories(positions=positions, actions=actions, blocked=blocked, wall_x=wall_x.astype(np.int16),
                        door_y=door_y.astype(np.int16), kind=np.full(n, -1, dtype=np.int8))


def segment_trajectories(rng: np.random.Generator, n: int, length: int, walk: WalkConfig,
                         parallel_share: float = 0.0, door_share: float = 0.0,
                         push_share: float = 0.0, detour_share: float = 0.0) -> Trajectories:
    """Planner-like trajectories: piecewise-constant actions (segments of 2-10 steps, speed up to
    2.45 px), in five families:

    - ``door_share``: start 2-12 px in front of the door (+-8 px of its centre), the first 8 steps aimed
      at a point 3-15 px behind it (the door's edges included): fast straight crossings, as plans make;
    - ``parallel_share``: start 0-5 px from a wall face heading along it (+-15 degrees), three
      quarters along the centre wall (past the door and its edges), a quarter along the border;
    - ``push_share``: start 0-12 px from a face of the centre wall; 60 % of the segments head into it
      (within +-85 degrees of its normal, so mostly diagonal pushes), the others anywhere. The env
      cancels a whole step that would enter the wall, so a diagonal push from contact goes nowhere;
      plans that rely on sliding through the wall are what the planner finds when the model gets
      this wrong (the agent then stalls across the wall from the goal);
    - the rest: half start 2-8 px from the centre wall with the first segment heading into it,
      half anywhere with uniform headings.

    and, drawn apart, ``detour_share`` goal-directed door detours (``detour_trajectories``).

    ``tworooms_env.random_walk`` makes smooth random walks of at most ``step_max`` px per step;
    plans are piecewise constant, run along walls and push into them at full speed, so the model
    must see that (a model trained without the first two families mispredicts sliding along the
    wall by 4 px after 8 steps, and its plans stall at the wall).
    """
    n_detour = int(round(detour_share * n))
    if n_detour:
        return Trajectories.concatenate([
            segment_trajectories(rng, n - n_detour, length, walk, parallel_share, door_share, push_share),
            detour_trajectories(rng, n_detour, length, walk)])
    wall_x, door_y = core.sample_layouts(rng, n, walk.fixed_wall)
    n_act = length - 1
    u = rng.random(n)
    door = u < door_share
    parallel = (u >= door_share) & (u < door_share + parallel_share)
    push = (u >= door_share + parallel_share) & (u < door_share + parallel_share + push_share)
    rest = ~(door | parallel | push)
    start = rw.sample_free_starts(rng, wall_x, door_y)
    near = rest & (rng.random(n) < 0.5)
    if near.any():
        start[near] = rw.bump_starts_actions(rng, wall_x[near], door_y[near], 1, walk)[0]
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    first = rng.uniform(0.0, 2.0 * np.pi, n)
    first = np.where(near, np.where(start[:, 0] < wall_x, 0.0, np.pi) + rng.uniform(-np.pi / 3, np.pi / 3, n), first)
    face = core.WALL_HALF_WIDTH + core.CONTACT_MARGIN
    if door.any():
        d = np.flatnonzero(door)
        before = np.stack([wall_x[d] + side[d] * (face + rng.uniform(2, 12, d.size)),
                           door_y[d] + rng.uniform(-8, 8, d.size)], axis=1)
        start[d] = rw.clip_to_free(rng, before, wall_x[d], door_y[d])
        aim = np.stack([wall_x[d] - side[d] * (face + rng.uniform(3, 15, d.size)),
                        door_y[d] + rng.uniform(-core.DOOR_HALF_HEIGHT, core.DOOR_HALF_HEIGHT, d.size)], axis=1)
        first[d] = np.arctan2(aim[:, 1] - start[d, 1], aim[:, 0] - start[d, 0])
    if parallel.any():
        p_idx = np.flatnonzero(parallel)
        along_border = rng.random(p_idx.size) < 0.25
        gap = rng.uniform(0.0, 5.0, p_idx.size)
        y = rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, p_idx.size)
        pts = np.stack([wall_x[p_idx] + side[p_idx] * (face + gap), y], axis=1)
        up = rng.random(p_idx.size) < 0.5
        heading = np.where(up, np.pi / 2, -np.pi / 2)
        if along_border.any():  # a horizontal run near the top or bottom border
            b = np.flatnonzero(along_border)
            top = rng.random(b.size) < 0.5
            pts[b, 0] = rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, b.size)
            pts[b, 1] = np.where(top, core.BORDER_LO + core.CONTACT_MARGIN + gap[b],
                                 core.BORDER_HI - core.CONTACT_MARGIN - gap[b])
            heading[b] = np.where(rng.random(b.size) < 0.5, 0.0, np.pi)
        start[p_idx] = rw.clip_to_free(rng, pts, wall_x[p_idx], door_y[p_idx])
        first[p_idx] = heading + rng.uniform(-np.pi / 12, np.pi / 12, p_idx.size)
    into = np.where(side < 0, 0.0, np.pi)  # heading into the centre wall from each window's side
    if push.any():
        q = np.flatnonzero(push)
        pts = np.stack([wall_x[q] + side[q] * (face + rng.uniform(0.0, 12.0, q.size)),
                        rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, q.size)], axis=1)
        start[q] = rw.clip_to_free(rng, pts, wall_x[q], door_y[q])
        side[q] = np.where(start[q, 0] < wall_x[q], -1.0, 1.0)  # a redrawn start may sit on the other side
        into[q] = np.where(side[q] < 0, 0.0, np.pi)
        first[q] = into[q] + rng.uniform(-np.radians(85), np.radians(85), q.size)
    ends = np.cumsum(rng.integers(2, 11, size=(n, n_act)), axis=1)  # segment end steps
    seg_id = (np.arange(n_act)[None, :, None] >= ends[:, None, :]).sum(axis=-1)  # [n, n_act]
    theta = rng.uniform(0.0, 2.0 * np.pi, (n, n_act))
    theta[:, 0] = first
    keep = parallel[:, None] & (rng.random((n, n_act)) < 0.7)  # parallel runs mostly keep going along
    theta = np.where(keep, first[:, None] + rng.uniform(-np.pi / 12, np.pi / 12, (n, n_act)), theta)
    pushing = push[:, None] & (rng.random((n, n_act)) < 0.6)
    theta = np.where(pushing, into[:, None] + rng.uniform(-np.radians(85), np.radians(85), (n, n_act)), theta)
    speed = rng.uniform(0.3, core.MAX_STEP_NORM, (n, n_act))
    th, sp = np.take_along_axis(theta, seg_id, 1), np.take_along_axis(speed, seg_id, 1)
    run = door[:, None] & (np.arange(n_act) < 8)[None, :]  # door windows: 8 straight steps at the aim
    th = np.where(run, first[:, None], th)
    sp = np.where(run, rng.uniform(1.2, core.MAX_STEP_NORM, n)[:, None], sp)
    positions, actions, blocked = rw.simulate(start, np.stack([sp * np.cos(th), sp * np.sin(th)], -1),
                                              wall_x, door_y)
    return Trajectories(positions=positions, actions=actions, blocked=blocked, wall_x=wall_x.astype(np.int16),
                        door_y=door_y.astype(np.int16), kind=np.full(n, -1, dtype=np.int8))


class WindowSource:
    """Batches of windows as a pure function of (seed, rank, step): exact resume for free."""

    def __init__(self, cfg: TrainConfig, rank: int = 0):
        self.cfg, self.rank = cfg, rank
        # A profile encoder only reads row / column sums: stream those instead of frames.
        self.profiles = cfg.encoder == "profile" and cfg.fast_profiles and not cfg.dataset
        self.dataset = None
        if cfg.dataset:
            if not Path(cfg.dataset).is_file():
                raise FileNotFoundError(f"dataset file {cfg.dataset!r} not found; generate one with "
                                        "`tworooms-collect` or leave dataset empty to stream fresh data")
            self.dataset = TrajectoryWindows.from_file(cfg.dataset, window=cfg.window, split="train")
        else:
            self.walk = WalkConfig(length=cfg.window, cross_wall_rate=cfg.cross_wall_rate,
                                   wall_bump_rate=cfg.wall_bump_rate, fixed_wall=cfg.fixed_wall,
                                   step_mean=cfg.step_mean, step_std=cfg.step_std, step_max=cfg.step_max)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, self.rank, step])
        if self.dataset is not None:
            return self.dataset.sample_batch(self.cfg.batch_size, rng)
        n, t_len = self.cfg.batch_size, self.cfg.window
        n_seg = int(round(self.cfg.segment_rate * n))
        traj = generate_trajectories(rng, n - n_seg, self.walk)  # one window per trajectory
        if n_seg:
            traj = Trajectories.concatenate([traj, segment_trajectories(rng, n_seg, t_len, self.walk, self.cfg.parallel_rate,
                                                                           self.cfg.door_aim_rate, self.cfg.push_rate,
                                                                           self.cfg.detour_rate)])
        if not self.profiles:
            return render_windows(traj, np.arange(n), np.zeros(n, dtype=np.int64), t_len)
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
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.amp and device.type == "cuda" else nullcontext())
    source = WindowSource(cfg, rank)
    log = CsvLog(out_dir / "log.csv") if rank == 0 else None
    gate_log = CsvLog(out_dir / "gates.csv") if rank == 0 else None
    tb = _tensorboard(out_dir, cfg.tensorboard) if rank == 0 else None
    flag = StopSignal().install()  # SIGINT and SIGTERM: save last.pt after this step, then stop

    def state(step: int) -> dict:
        return dict(optimizer=optimiser.state_dict(), scheduler=scheduler.state_dict(),
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
                                    gates=summary.get("gates", {})), out_dir / "model.pt")
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
