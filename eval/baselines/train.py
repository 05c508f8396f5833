"""Train an offline goal-conditioned RL baseline from a trajectory file, with a learning curve.

    python -m eval.baselines.train --method gciql --dataset F.npz --features profile --max-minutes 10 \
        --seed 0 --threads 1 --out-dir outputs/baselines/gciql_random

Methods: gcbc, gciql, hiql, crl (``eval.baselines.offline.METHODS``). The wall-clock budget
``--max-minutes`` counts training only; every ``--curve-every`` minutes of it the clock stops and the
policy runs on ``--curve-tasks`` PROTOCOL tasks of ``--curve-seed`` (keep it apart from the
evaluation seed). Writes to ``--out-dir``: ``model.pt`` (loadable with ``weights_only=True``, also
saved at every curve point), ``train_log.csv`` (losses), ``curve.csv`` and ``curve.png`` (success
against training minutes), ``summary.json``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from tqdm import tqdm

from eval.baselines.offline import FEATURES, METHODS, OfflineAgent, build_method, load_dataset, prepare_batch, sample_batch, save_checkpoint
from jepa_agent.precision import AMP_CHOICES, autocast, use_bf16
from jepa_agent.validation import check_device
from training.interrupt import CsvLog
from tworooms_env.cli import ConfigCLI, run_cli


def success_on_tasks(method, seed: int, n_tasks: int, device: torch.device, layouts: str | None = None) -> tuple[float, float]:
    """(success@end rate, median seconds per episode) on PROTOCOL tasks 0..n-1 of ``seed`` (on ``layouts``
    only when given: ``train:SPLIT``, ``heldout:SPLIT``)."""
    from eval.metrics import summarize
    from eval.runner import run_episodes

    was_training = method.training
    records = run_episodes(OfflineAgent(method, device=device), seed, range(n_tasks), progress=False, layouts=layouts)
    method.train(was_training)
    s = summarize([r.as_dict() for r in records])
    return s["success_rate"], s["median_episode_seconds"]


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    log = CsvLog(path, append=False)
    for row in rows:
        log.write(row)


def plot_curve(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([r["train_minutes"] for r in rows], [100 * r["success"] for r in rows], "o-")
    ax.set_xlabel("training minutes")
    ax.set_ylabel(f"success@end (%), {rows[0]['tasks']} tasks" if rows else "success@end (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(args: OfflineTrainConfig) -> dict[str, Any]:
    device = torch.device(args.device)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([args.seed, 21])
    data = load_dataset(args.dataset, args.split, args.max_trajectories)
    if args.features == "jepa":  # the frozen encoder's latents of every stored state, computed once (cached)
        from eval.baselines.offline import embed_dataset

        print(f"jepa latents: {embed_dataset(data, progress=args.progress)}", file=sys.stderr)
    method = build_method(args.method, features=args.features, **parse_set(args.set)).to(device).train()
    spec = method.batch_spec()
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=args.lr)
    bf16 = use_bf16(args.amp, device)
    budget = 60.0 * args.max_minutes if args.max_minutes else math.inf
    curve_every = 60.0 * (args.curve_every if args.curve_every else args.max_minutes / 5 or math.inf)
    train_info = {"method": args.method, "features": args.features, "minutes_budget": args.max_minutes, "seed": args.seed,
                  "batch_size": args.batch_size, "lr": args.lr, "split": args.split, "device": str(device), "bf16": bf16,
                  "torch_threads": torch.get_num_threads(), "batch_spec": {k: (v.to_dict() if hasattr(v, "to_dict") else v)
                                                                           for k, v in vars(spec).items()}}
    log_rows: list[dict[str, Any]] = []
    curve: list[dict[str, Any]] = []
    trained, step, next_curve, running = 0.0, 0, curve_every, []
    bar = tqdm(total=args.steps, desc=f"{args.method} {args.features}", disable=not args.progress, smoothing=0.05)

    def checkpoint() -> None:
        stats = {"steps": step, "train_minutes": trained / 60.0, "curve": curve}
        save_checkpoint(out / "model.pt", method, data.info, train_info, stats)

    def curve_point() -> None:
        rate, sec = success_on_tasks(method, args.curve_seed, args.curve_tasks, device, args.curve_layouts)
        curve.append({"step": step, "train_minutes": trained / 60.0, "success": rate, "tasks": args.curve_tasks,
                      "seed": args.curve_seed, "layouts": args.curve_layouts or "all", "median_episode_seconds": sec})
        bar.write(f"step {step}, {trained / 60:.1f} min: success {100 * rate:.1f} % on {args.curve_tasks} tasks")
        checkpoint()

    while trained < budget and (args.steps is None or step < args.steps):
        t0 = time.perf_counter()
        batch = prepare_batch(sample_batch(data, rng, args.batch_size, spec, args.features), args.features, device)
        with autocast(device, bf16):
            loss, metrics = method.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        method.after_step()
        trained += time.perf_counter() - t0
        step += 1
        running.append({"loss": loss.item(), **metrics})
        bar.update(1)
        if step % args.log_every == 0:
            row = {"step": step, "train_minutes": trained / 60.0, **{k: float(np.mean([r[k] for r in running])) for k in running[0]}}
            log_rows.append(row)
            running = []
            bar.set_postfix(loss=f"{row['loss']:.4f}", min=f"{trained / 60:.1f}")
        if trained >= next_curve and trained < budget:
            curve_point()
            next_curve += curve_every
    bar.close()
    if args.curve_tasks > 0:
        curve_point()
    else:
        checkpoint()
    _write_csv(out / "train_log.csv", log_rows)
    _write_csv(out / "curve.csv", curve)
    if curve:
        plot_curve(curve, out / "curve.png", f"{args.method} ({args.features}), {data.info['name']} ({data.info['tier']})")
    summary = {"method": args.method, "features": args.features, "steps": step, "train_minutes": trained / 60.0,
               "steps_per_second": step / max(trained, 1e-9), "dataset": data.info, "train": train_info,
               "curve": curve, "final_losses": log_rows[-1] if log_rows else None,
               "command": "python -m eval.baselines.train " + " ".join(sys.argv[1:])}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def parse_set(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=JSON`` pairs -> {key: value} (the method's config checks the keys)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects KEY=JSON, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--set {key.strip()}: {value!r} is not JSON (quote strings: '\"x\"')") from None
    return out


@dataclass
class OfflineTrainConfig:
    """The options of ``tworooms-train-baseline``."""

    method: str = field(default="", metadata={"choices": tuple(sorted(METHODS))})  # offline GCRL method (required)
    dataset: str = ""  # trajectory file of tworooms-collect (.npz; required)
    features: str = field(default="profile", metadata={"choices": tuple(FEATURES)})  # observation features of the networks
    split: Literal["train", "all"] = "train"  # layouts used (train: as the world model)
    max_trajectories: int | None = None  # only the split's first N trajectories (none: all of them)
    max_minutes: float = 10.0  # training wall-clock budget, curve evaluations excluded (0: none; then --steps bounds the run)
    steps: int | None = None  # cap on gradient steps (none: the time budget alone)
    batch_size: int = 256  # transitions per gradient step
    lr: float = 3e-4  # Adam learning rate
    set: list[str] = field(default_factory=list)  # method config overrides KEY=JSON ..., e.g. beta=10
    seed: int = 0  # seed of the weights and of the batches
    threads: int = 0  # torch CPU threads (0: torch's default)
    device: str = "cpu"  # auto | cpu | cuda | cuda:N
    amp: str = field(default="off", metadata={"choices": AMP_CHOICES})  # bf16 autocast of the hidden layers: auto (where the CPU has native bf16, or CUDA) | bf16 | off; output layers stay fp32
    out_dir: str = ""  # directory of model.pt, the logs, the curve and summary.json (required)
    curve_every: float | None = None  # training minutes between curve points (none: a fifth of the budget)
    curve_tasks: int = 100  # protocol tasks per curve point (0: no curve)
    curve_seed: int = 2001  # task seed of the curve (keep it apart from the evaluation seed)
    curve_layouts: str | None = None  # the curve's tasks on these layouts only: train:SPLIT, heldout:SPLIT (none: every layout)
    log_every: int = 100  # gradient steps between rows of train_log.csv
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        for name in ("method", "dataset", "out_dir"):
            if not getattr(self, name):
                raise ValueError(f"--{name.replace('_', '-')} is required")
        if self.max_minutes < 0 or (self.max_minutes == 0 and self.steps is None):
            raise ValueError(f"--max-minutes must be > 0, or 0 with --steps, got {self.max_minutes}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be >= 2, got {self.batch_size}")
        for name in ("threads", "curve_tasks", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.log_every < 1 or (self.steps is not None and self.steps < 1) or self.lr <= 0:
            raise ValueError("--log-every and --steps must be >= 1, --lr > 0")
        check_device(self.device)
        if self.curve_layouts is not None:
            from tworooms_env.splits import resolve_layouts

            resolve_layouts(self.curve_layouts)  # a bad set is an error line before any work


CLI = ConfigCLI(OfflineTrainConfig, prog="tworooms-train-baseline", description=__doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``tworooms-train-baseline``); a user mistake is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    parse_set(args.set)  # a malformed pair fails before any work
    if args.threads:
        torch.set_num_threads(args.threads)
    s = train(args)
    last = s["curve"][-1] if s["curve"] else None
    print(f"{args.method} ({args.features}): {s['steps']} steps in {s['train_minutes']:.1f} min "
          f"({s['steps_per_second']:.1f} steps/s); " + (f"success {100 * last['success']:.1f} % on {last['tasks']} tasks of seed "
                                                        f"{last['seed']}" if last else "no curve") + f"; wrote {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
