"""Train the action-conditioned JEPA world model.

    python -m training.world_model                              # the cpu preset (<= 30 min, 2 cores)
    python -m training.world_model --preset tiny --out-dir /tmp/wm      # or: tworooms-train ...
    python -m training.world_model --preset reference --device cuda
    torchrun --nproc_per_node 2 -m training.world_model --preset cpu   # DDP (gloo on CPU)

Every ``--key-name value`` (or ``key_name=value``) overrides a field of
``training.wm_config.TrainConfig``; ``--help`` lists them with the preset's defaults.
Outputs in ``out_dir``: ``last.pt`` (full training state, saved every epoch, on Ctrl-C or SIGTERM
(then exit 130 / 143) and at the end; resume with ``--resume``), ``model.pt`` (weights + config only, for
``load_world_model``), ``log.csv`` (every ``log_every`` steps), ``gates.csv`` (diagnostic gates per
epoch), TensorBoard events (if installed).

Data: each step's batch is drawn from a generator seeded with (seed, rank, step), so a resumed
run sees exactly the batches the uninterrupted run would have seen (exact resume). Windows are
fresh random-walk trajectories of ``window`` states (``tworooms_env.random_walk``), rendered per
batch by ``training.data.WindowSource``; or windows of a stored dataset (``dataset=path``).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from jepa_agent.optim import WarmupCosine
from jepa_agent.precision import autocast as amp_autocast
from jepa_agent.precision import use_bf16
from jepa_agent.regularizers import effective_rank
from jepa_agent.validation import load_checkpoint_file
from jepa_agent.world_model import WorldModel, check_checkpoint, checkpoint_dict
from training.data import WindowSource
from training.diagnostics import collapse_warning, run_gates
from training.distributed import resolve_device, setup_distributed
from training.interrupt import CsvLog, Interrupted, StopSignal, atomic_save, remove_if_empty, truncate_csv
from training.wm_config import CLI, TrainConfig, make_config  # noqa: F401 (CLI: the flags)


# ---------------------------------------------------------------------------- infrastructure
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
    scheduler = WarmupCosine(optimiser, total, max(1, int(cfg.warmup_frac * total)), cfg.min_lr / cfg.lr)
    start_step, elapsed_before = 0, 0.0
    last_path = out_dir / "last.pt"
    resume = last_path if cfg.resume == "auto" and last_path.is_file() else (Path(cfg.resume) if cfg.resume not in ("", "auto") else None)
    if cfg.resume == "auto" and resume is None and rank == 0:
        print(f"--resume: nothing to resume from (no {last_path}); starting a fresh run", file=sys.stderr)
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
    """The command line (``tworooms-train``): 0 when done, 2 for a user mistake, 1 for a failed run."""
    try:
        cfg = make_config(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
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
