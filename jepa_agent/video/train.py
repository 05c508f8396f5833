"""Train the video JEPA on Moving MNIST and score it by detection Average Precision per horizon.

    python -m jepa_agent.video.train --preset cpu                     # <= 45 min on 2 cores
    python -m jepa_agent.video.train --preset tiny iterations=50 lr=2e-3 --device cpu
    python -m jepa_agent.video.train --preset cpu --resume            # continue out_dir/checkpoint.pt
    python -m jepa_agent.video.train --preset cpu --ablate-steps 1,4 iterations=2400 max_minutes=0  # K ablation (Fig. 3b)
    torchrun --nproc_per_node 4 -m jepa_agent.video.train --preset reference   # DDP: 4 GPUs share each batch

Overrides are ``--key-name value`` (or ``key_name=value``) for any field of VideoJEPAConfig; unknown
keys are errors; ``--help`` lists them. Outputs in ``out_dir``: log.csv, eval.jsonl, results.json, checkpoint.pt, figure4.png/.gif.
Ctrl-C or SIGTERM saves checkpoint.pt after the current iteration and exits 130 / 143; ``--resume``
continues exactly (log rows past the checkpoint are dropped first). The evaluation (AP per horizon,
the Figure 4 grid) is ``jepa_agent.video.evaluate``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jepa_agent.optim import warmup_cosine_factor
from jepa_agent.precision import autocast, use_bf16
from jepa_agent.validation import load_checkpoint_file, run_cli, state_checksum, verify_state
from jepa_agent.video.evaluate import encoder_ap, evaluate, figure_rows, save_figure  # noqa: F401  (re-exported)
from jepa_agent.video.models import VideoJEPA, VideoModelConfig
from training.config_checks import VIDEO_RANGES, check_device, check_ranges
from training.distributed import resolve_device, setup_distributed
from training.interrupt import CsvLog, StopSignal, atomic_save, remove_if_empty, truncate_csv, truncate_jsonl
from jepa_agent.video.moving_mnist import DEFAULT_MNIST_DIR, detection_maps, generate_moving_mnist, load_mnist_images
from tworooms_env.cli import ConfigCLI

FORMAT_VERSION = 1
SEQ_FRAMES = 20  # each generated sequence is cut into SEQ_FRAMES // clip_frames consecutive clips


@dataclass
class VideoJEPAConfig:
    """Every setting of a run (the model's fields mirror VideoModelConfig; defaults = the cpu preset)."""

    # model (see jepa_agent.video.models.VideoModelConfig)
    enc_hidden: int = 32  # channels of the encoder's hidden convolutions
    dim: int = 32  # channels of the representation
    downsample: int = 8  # spatial downsampling of the representation (64 / downsample cells a side)
    pred_hidden: int = 64  # channels of the predictor's hidden convolutions
    pred_levels: int = 1  # resolution levels of the predictor
    context: int = 2  # context frames the predictor reads
    steps: int = 4  # K: frames predicted ahead during training
    projector: str = "32-64-64"  # widths of the projector's layers
    std_coeff: float = 10.0  # the reference's; 50 was best with target_grad=True (pilots in the README)
    cov_coeff: float = 100.0  # weight of the covariance term
    pred_space: Literal["representation", "projection"] = "representation"  # where predictions are compared (the reference: projection)
    pred_residual: bool = False  # the predictor adds its output to the last context frame's representation
    target_grad: bool = False  # the reference: True (pilots in the README)
    # data
    mnist_dir: str = str(DEFAULT_MNIST_DIR)  # folder of the MNIST digits (default: the copy shipped in the package)
    clip_frames: int = 10  # frames per training clip
    val_sequences: int = 1000  # x 2 clips, as the reference's 1000 held-out sequences
    val_digit_fraction: float = 0.1  # digits reserved for validation sequences (never seen in training)
    # optimisation
    iterations: int = 32000  # optimiser steps
    batch_size: int = 4  # clips per step, over all processes (the reference: 64; small batches learn more per clip here)
    lr: float = 1e-3  # Adam learning rate of the JEPA's parameters
    decoder_lr: float = 1e-3  # the pixel decoder is a probe for figures; the reference's 1e-4 is too slow for CPU budgets
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # constant (the reference) or linear warmup then cosine to 0 at iterations (JEPA parameters; the probes keep constant rates)
    warmup_iterations: int = 100  # cosine schedule only
    seed: int = 2025  # seed of the weights, the digits split and the clips
    max_minutes: float = 0.0  # stop training after this wall-clock time (0 = no limit)
    stop_after: int = 0  # pause after this many iterations, without the final evaluation (continue with --resume)
    # logging and evaluation
    log_every: int = 100  # iterations between rows of log.csv
    eval_every: int = 1000  # quick evaluation on eval_sequences_quick (0 = only at the end)
    eval_sequences_quick: int = 128  # validation sequences of the quick evaluation
    eval_batch: int = 64  # clips per evaluation batch
    out_dir: str = "outputs/video_jepa"  # directory of the checkpoint, the logs, results.json and the figures
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads (0 = torch's default); 1 is much faster on an oversubscribed CPU
    amp: Literal["auto", "bf16", "off"] = "auto"  # bf16 autocast: auto (CUDA, and CPUs with native bf16: ~1.5x faster steps) | bf16 | off

    def __post_init__(self) -> None:
        check_ranges(self, VIDEO_RANGES)  # lr > 0, iterations >= 1, max_minutes >= 0, ... (stated there)
        check_device(self.device)

    def model_config(self) -> VideoModelConfig:
        names = {f.name for f in fields(VideoModelConfig)}
        return VideoModelConfig(**{k: v for k, v in asdict(self).items() if k in names})


PRESETS: dict[str, dict] = {
    "tiny": dict(enc_hidden=8, dim=16, pred_hidden=16, pred_levels=1, projector="16-32-32", iterations=40,
                 lr_schedule="constant", batch_size=8, val_sequences=16, eval_every=0, eval_sequences_quick=8, log_every=5),
    "cpu": dict(max_minutes=42.0),
    "reference": dict(enc_hidden=32, dim=16, downsample=1, pred_hidden=32, pred_levels=3, projector="16-64-64", pred_space="projection",
                      target_grad=True, std_coeff=10.0, lr_schedule="constant", iterations=14100, batch_size=64, log_every=25, decoder_lr=1e-4, eval_every=282, eval_sequences_quick=1000),
}  # fmt: skip


@dataclass
class RunOptions:
    """Options of one invocation (not saved with the config)."""

    resume: bool = False  # continue from the checkpoint in --out-dir (out_dir/checkpoint.pt)
    ablate_steps: str = ""  # comma-separated K values to train and compare, e.g. 1,4 (Figure 3b)
    progress: bool = True  # show a progress bar


CLI = ConfigCLI(VideoJEPAConfig, prog="tworooms-video-jepa", description=__doc__.split("\n\n")[0], presets=PRESETS,
                default_preset="cpu", extra=RunOptions)


def make_config(preset: str = "cpu", overrides: dict[str, Any] | None = None) -> VideoJEPAConfig:
    """Preset values, then ``overrides`` ({key: value or its text}, as on the command line); unknown keys raise."""
    return CLI.parse(["--preset", preset, *(f"{k}={v}" for k, v in (overrides or {}).items())])


# ---------------------------------------------------------------- data
def digit_split(cfg: VideoJEPAConfig) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation digit pools: a seeded split, so validation videos show unseen digits."""
    digits = load_mnist_images(cfg.mnist_dir)
    perm = np.random.default_rng(cfg.seed).permutation(len(digits))
    n_val = max(1, int(round(cfg.val_digit_fraction * len(digits))))
    return digits[perm[n_val:]], digits[perm[:n_val]]


def make_clips(digits: np.ndarray, num_clips: int, rng: np.random.Generator, clip_frames: int):
    """Frames float [N, T, 1, 64, 64] in [0, 1] and detection maps float [N, T, 8, 8] (CPU tensors)."""
    per_seq = SEQ_FRAMES // clip_frames
    if per_seq < 1:
        raise ValueError(f"clip_frames must be <= {SEQ_FRAMES}, got {clip_frames}")
    seqs = generate_moving_mnist(digits, math.ceil(num_clips / per_seq), rng)
    frames = seqs.frames[:, : per_seq * clip_frames].reshape(-1, clip_frames, 64, 64)[:num_clips]
    maps = detection_maps(seqs.boxes)[:, : per_seq * clip_frames].reshape(-1, clip_frames, 8, 8)[:num_clips]
    return torch.from_numpy(frames).unsqueeze(2).float().div_(255), torch.from_numpy(maps).float()


def train_batch(digits: np.ndarray, cfg: VideoJEPAConfig, iteration: int):
    """The batch of one iteration depends only on (seed, iteration): resuming replays the same data."""
    return make_clips(digits, cfg.batch_size, np.random.default_rng([cfg.seed, iteration]), cfg.clip_frames)


def val_clips(digits: np.ndarray, cfg: VideoJEPAConfig, num_sequences: int):
    rng = np.random.default_rng([cfg.seed, 2**31])  # a stream no training iteration uses
    return make_clips(digits, num_sequences * (SEQ_FRAMES // cfg.clip_frames), rng, cfg.clip_frames)


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, model: VideoJEPA, opt: torch.optim.Optimizer, cfg: VideoJEPAConfig, iteration: int, elapsed: float) -> None:
    weights = model.state_dict()
    state = {"format_version": FORMAT_VERSION, "config": asdict(cfg), "iteration": iteration, "elapsed": elapsed,
             "model": weights, "checksum": state_checksum(weights), "optimizer": opt.state_dict()}  # fmt: skip
    atomic_save(state, path)  # never leave a half-written checkpoint (nor its temporary file)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[VideoJEPA, dict]:
    """Rebuild the model from a checkpoint (weights_only) -> (model in eval mode, raw state)."""
    state = read_checkpoint(path, device)
    cfg = VideoJEPAConfig(**state["config"])
    model = VideoJEPA(cfg.model_config()).to(device)
    model.load_state_dict(state["model"])
    return model.eval(), state


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """A video-JEPA checkpoint's raw state, checked: format version, checksum (when stored), finite weights."""
    state = load_checkpoint_file(path, "video-JEPA checkpoint", device)
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION or "model" not in state:
        got = state.get("format_version") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: not a video-JEPA checkpoint of format_version {FORMAT_VERSION} (got {got!r})")
    verify_state(state["model"], path, state.get("checksum"))
    return state


def make_optimizer(model: VideoJEPA, cfg: VideoJEPAConfig) -> torch.optim.Optimizer:
    """Adam with three groups: the JEPA (encoder, predictor, projector; the only one ``lr_schedule``
    acts on), the detection head and the pixel decoder (probes, at constant rates)."""
    probes = set(map(id, model.detector.parameters())) | set(map(id, model.decoder.parameters()))
    jepa = [p for p in model.parameters() if id(p) not in probes]
    # fused: one kernel for all parameters (CPU and CUDA); 3-5 % off a cpu-preset step on this CPU
    return torch.optim.Adam([
        {"params": jepa, "lr": cfg.lr, "scheduled": True},
        {"params": list(model.detector.parameters()), "lr": cfg.lr, "scheduled": False},
        {"params": list(model.decoder.parameters()), "lr": cfg.decoder_lr, "scheduled": False},
    ], fused=True)  # fmt: skip


def lr_factor(cfg: VideoJEPAConfig, iteration: int) -> float:
    """Multiplier of the JEPA group's base learning rate at ``iteration`` (0-based)."""
    if cfg.lr_schedule == "constant":
        return 1.0
    return warmup_cosine_factor(iteration, cfg.iterations, min(cfg.warmup_iterations, cfg.iterations))


# ---------------------------------------------------------------- training
def train(cfg: VideoJEPAConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train, evaluate at the end on the full validation set, write logs and figures; returns results.

    Under ``torchrun`` each of the W processes takes its 1/W share of every iteration's batch (DDP);
    process 0 logs, evaluates and checkpoints, and the others return an empty dict."""
    if cfg.lr_schedule not in ("constant", "cosine") or cfg.warmup_iterations < 1:
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine' with warmup_iterations >= 1, "
                         f"got {cfg.lr_schedule!r}, {cfg.warmup_iterations}")  # fmt: skip
    rank, world = setup_distributed()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} (clips per iteration over all processes) must be "
                         f"divisible by the number of processes, {world}")  # fmt: skip
    share = slice(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)
    device = resolve_device(cfg.device)
    bf16 = use_bf16(cfg.amp, device)  # also rejects an unknown amp, before any work
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    ckpt_path = out / "checkpoint.pt"
    if resume and not ckpt_path.is_file():
        raise FileNotFoundError(f"--resume: nothing to resume from (no checkpoint at {ckpt_path})")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = VideoJEPA(cfg.model_config()).to(device)
    opt = make_optimizer(model, cfg)
    base_lrs = [group["lr"] for group in opt.param_groups]  # before a resumed state overwrites them
    start, elapsed = 0, 0.0
    if resume:
        state = read_checkpoint(ckpt_path, device)
        model.load_state_dict(state["model"])
        if len(state["optimizer"]["param_groups"]) != len(opt.param_groups):
            raise ValueError(f"{ckpt_path}: its optimizer has {len(state['optimizer']['param_groups'])} parameter groups, this "
                             f"version uses {len(opt.param_groups)} (JEPA, detection head, decoder); start a new out_dir")  # fmt: skip
        opt.load_state_dict(state["optimizer"])
        start, elapsed = state["iteration"], state["elapsed"]
        if rank == 0:  # rows written after that checkpoint come again
            truncate_csv(out / "log.csv", start, key="iteration")
            truncate_jsonl(out / "eval.jsonl", start, key="iteration")
    train_model: nn.Module = model
    if world > 1:  # replicas start equal (same seed; DDP also broadcasts); BatchNorm statistics stay per process
        train_model = nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False)
    train_digits, val_digits = digit_split(cfg)
    if rank == 0:
        quick = val_clips(val_digits, cfg, cfg.eval_sequences_quick)
        (out / "config.json").write_text(json.dumps(asdict(cfg) | {"processes": world}, indent=2))
        log = CsvLog(out / "log.csv", append=bool(start))
    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, disable=not progress or rank != 0,
               desc="video-jepa")
    stop = StopSignal()  # SIGINT / SIGTERM: save a checkpoint after this iteration, exit 130 / 143
    t0, iteration, sums, signalled = time.perf_counter() - elapsed, start, {}, False
    window_t, window_n = time.perf_counter(), 0
    with stop:
        for iteration in bar:
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * lr_factor(cfg, iteration) if group["scheduled"] else base
            x, y = (t[share].to(device, non_blocking=True) for t in train_batch(train_digits, cfg, iteration))
            with autocast(device, bf16):
                losses = train_model(x, y)
            out_of_time = cfg.max_minutes > 0 and time.perf_counter() - t0 > 60 * cfg.max_minutes
            flags = torch.tensor([float(not torch.isfinite(losses["loss"])), float(out_of_time), float(stop.stop)],
                                 device=device)  # NCCL: on the GPU
            if world > 1:  # every process stops at the same iteration
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            if flags[0]:
                raise FloatingPointError(f"loss is not finite at iteration {iteration + 1} (terms "
                                         f"{ {k: float(v.detach()) for k, v in losses.items()} }); training stopped. The last good "
                                         f"checkpoint, if any, is {ckpt_path} (not overwritten). Try a lower lr.")  # fmt: skip
            out_of_time, signalled = bool(flags[1]), bool(flags[2])
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            done = iteration + 1
            if rank != 0:  # process 0 alone logs, evaluates and checkpoints
                if out_of_time or signalled or done == cfg.stop_after:
                    break
                continue
            for k, val in losses.items():
                sums[k] = sums.get(k, 0.0) + val.item()
            window_n += 1
            if done % cfg.log_every == 0 or done in (cfg.iterations, cfg.stop_after) or signalled:
                rate = window_n * cfg.batch_size / (time.perf_counter() - window_t)
                means = {k: s / window_n for k, s in sums.items()}
                log.write({"iteration": done, "clips": done * cfg.batch_size, "seconds": round(time.perf_counter() - t0, 1),
                           **{k: f"{means[k]:.5g}" for k in ("loss", "pred", "std", "cov", "det", "recon")},
                           "clips_per_s": f"{rate:.1f}"})  # fmt: skip
                bar.set_postfix(loss=f"{means['loss']:.3f}", pred=f"{means['pred']:.3f}", clips_s=f"{rate:.1f}")
                sums, window_t, window_n = {}, time.perf_counter(), 0
            if (cfg.eval_every and done % cfg.eval_every == 0) or out_of_time:
                quick_eval = evaluate(model, *quick, cfg.eval_batch, device, bf16) | {"iteration": done, "quick": True}
                with (out / "eval.jsonl").open("a") as f:
                    f.write(json.dumps(quick_eval) + "\n")
                save_checkpoint(ckpt_path, model, opt, cfg, done, time.perf_counter() - t0)
            if out_of_time or signalled or done == cfg.stop_after:
                break
    bar.close()
    if rank != 0:
        return {}
    done = iteration + 1 if cfg.iterations > start else start
    train_seconds = time.perf_counter() - t0
    save_checkpoint(ckpt_path, model, opt, cfg, done, train_seconds)
    if signalled and done < cfg.iterations:  # SIGINT / SIGTERM (here or on another process): resumes exactly here
        print(f"{stop.signame or 'signal'} at iteration {done}: {ckpt_path} saved; continue with --resume")
        return {"paused_at": done, "train_seconds": round(train_seconds, 1), "exit_code": stop.exit_code or 130}
    if done == cfg.stop_after and done < cfg.iterations:
        return {"paused_at": done, "train_seconds": round(train_seconds, 1)}
    frames, maps = val_clips(val_digits, cfg, cfg.val_sequences)
    results = evaluate(model, frames, maps, cfg.eval_batch, device, bf16)
    results |= {"iteration": done, "train_clips": done * cfg.batch_size, "train_seconds": round(train_seconds, 1),
                "device": str(device), "threads": torch.get_num_threads(), "processes": world, "steps": cfg.steps}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=2))
    save_figure(model, frames[:1], out / "figure4", device)
    return results


# ---------------------------------------------------------------- K ablation and CLI
def ablate_steps(cfg: VideoJEPAConfig, step_values: list[int], progress: bool = True) -> dict:
    """Train one model per K (same seed, data and budget) and tabulate AP per horizon."""
    table = {}
    for k in step_values:
        run = dataclasses.replace(cfg, steps=k, out_dir=str(Path(cfg.out_dir) / f"K{k}"))
        table[k] = train(run, progress=progress)
    if not all(table.values()):  # a process other than 0 under torchrun: no results to tabulate
        return {}
    summary = {f"K={k}": {"AP": r["AP"], "mAP": r["mAP"], "mAP_ref": r["mAP_ref"]} for k, r in table.items()}
    (Path(cfg.out_dir) / "ablation.json").write_text(json.dumps(summary, indent=2))
    print("AP per horizon (rows: training steps K)")
    for name, r in summary.items():
        print(f"{name:>5}: " + " ".join(f"{a:.3f}" for a in r["AP"]) + f" | mAP {r['mAP']:.3f}  mAP_ref {r['mAP_ref']:.3f}")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Train (or run the K ablation) per the command line; returns the exit code."""
    preset, given, extra = CLI.parse_given(argv)
    run = RunOptions(**extra)
    cfg = CLI.build(preset, given)
    if run.resume and (Path(cfg.out_dir) / "checkpoint.pt").exists():  # the saved settings, then the flags given
        saved = read_checkpoint(Path(cfg.out_dir) / "checkpoint.pt")["config"]
        cfg = VideoJEPAConfig(**{**saved, **given})
    code = 0
    if run.ablate_steps:
        ablate_steps(cfg, [int(k) for k in run.ablate_steps.split(",")], progress=run.progress)
    else:
        created = not Path(cfg.out_dir).exists()
        try:
            results = train(cfg, resume=run.resume, progress=run.progress)
        except Exception:
            remove_if_empty(cfg.out_dir, created)  # a run that failed before writing leaves no empty out_dir
            raise
        report(results)
        code = results.get("exit_code", 0)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return code


def cli(argv: list[str] | None = None) -> int:
    """The command line (``tworooms-video-jepa``): 0 when done, 2 for a user mistake (one ``error:``
    line), 1 for a diverged run, 130 / 143 after a signal."""
    return run_cli(main, argv)


def report(results: dict) -> None:
    if not results:  # a process other than 0 under torchrun
        return
    if "paused_at" in results:
        print(f"paused after {results['paused_at']} iterations; continue with --resume")
        return
    print(json.dumps({k: results[k] for k in ("AP", "mAP", "mAP_ref", "AP_encoder", "iteration", "train_seconds")}))


if __name__ == "__main__":
    sys.exit(cli())
