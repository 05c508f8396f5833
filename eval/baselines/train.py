"""Train an offline goal-conditioned RL baseline from a trajectory file, with a learning curve.

    python -m eval.baselines.train --method gciql --dataset F.npz --features profile --minutes 10 \
        --seed 0 --threads 1 --out-dir outputs/baselines/gciql_random

Methods: gcbc, gciql, hiql, crl (``eval.baselines.offline.METHODS``). The wall-clock budget
``--minutes`` counts training only; every ``--curve-every`` minutes of it the clock stops and the
policy runs on ``--curve-tasks`` PROTOCOL tasks of ``--curve-seed`` (keep it apart from the
evaluation seed). Writes to ``--out-dir``: ``model.pt`` (loadable with ``weights_only=True``, also
saved at every curve point), ``train_log.csv`` (losses), ``curve.csv`` and ``curve.png`` (success
against training minutes), ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from eval.baselines.offline import FEATURES, METHODS, OfflineAgent, build_method, load_dataset, prepare_batch, sample_batch, save_checkpoint
from training.interrupt import CsvLog


def success_on_tasks(method, seed: int, n_tasks: int, device: torch.device) -> tuple[float, float]:
    """(success@end rate, median seconds per episode) on PROTOCOL tasks 0..n-1 of ``seed``."""
    from eval.metrics import summarize
    from eval.runner import run_episodes

    was_training = method.training
    records = run_episodes(OfflineAgent(method, device=device), seed, range(n_tasks), progress=False)
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


def train(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([args.seed, 21])
    data = load_dataset(args.dataset, args.split)
    method = build_method(args.method, features=args.features, **args.set).to(device).train()
    spec = method.batch_spec()
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=args.lr)
    budget = 60.0 * args.minutes
    curve_every = 60.0 * (args.curve_every if args.curve_every else args.minutes / 5)
    train_info = {"method": args.method, "features": args.features, "minutes_budget": args.minutes, "seed": args.seed,
                  "batch_size": args.batch_size, "lr": args.lr, "split": args.split, "device": str(device),
                  "torch_threads": torch.get_num_threads(), "batch_spec": {k: (v.to_dict() if hasattr(v, "to_dict") else v)
                                                                           for k, v in vars(spec).items()}}
    log_rows: list[dict[str, Any]] = []
    curve: list[dict[str, Any]] = []
    trained, step, next_curve, running = 0.0, 0, curve_every, []
    bar = tqdm(total=args.steps, desc=f"{args.method} {args.features}", disable=args.no_progress, smoothing=0.05)

    def checkpoint() -> None:
        stats = {"steps": step, "train_minutes": trained / 60.0, "curve": curve}
        save_checkpoint(out / "model.pt", method, data.info, train_info, stats)

    def curve_point() -> None:
        rate, sec = success_on_tasks(method, args.curve_seed, args.curve_tasks, device)
        curve.append({"step": step, "train_minutes": trained / 60.0, "success": rate, "tasks": args.curve_tasks,
                      "seed": args.curve_seed, "median_episode_seconds": sec})
        bar.write(f"step {step}, {trained / 60:.1f} min: success {100 * rate:.1f} % on {args.curve_tasks} tasks")
        checkpoint()

    while trained < budget and (args.steps is None or step < args.steps):
        t0 = time.perf_counter()
        batch = prepare_batch(sample_batch(data, rng, args.batch_size, spec, args.features), args.features, device)
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
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = json.loads(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--dataset", required=True, help="trajectory file of tworooms-collect (.npz)")
    p.add_argument("--features", default="profile", choices=FEATURES)
    p.add_argument("--split", default="train", choices=("train", "all"), help="layouts used (train: as the world model)")
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget (curve evaluations excluded)")
    p.add_argument("--steps", type=int, default=None, help="optional cap on gradient steps")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="method config override, e.g. beta=10")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--curve-every", type=float, default=None, help="minutes between curve points (default: budget / 5)")
    p.add_argument("--curve-tasks", type=int, default=100)
    p.add_argument("--curve-seed", type=int, default=2001)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.set = parse_set(args.set)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.minutes <= 0 or args.batch_size < 2:
        raise SystemExit("--minutes must be > 0 and --batch-size >= 2")
    s = train(args)
    last = s["curve"][-1] if s["curve"] else None
    print(f"{args.method} ({args.features}): {s['steps']} steps in {s['train_minutes']:.1f} min "
          f"({s['steps_per_second']:.1f} steps/s); " + (f"success {100 * last['success']:.1f} % on {last['tasks']} tasks of seed "
                                                        f"{last['seed']}" if last else "no curve") + f"; wrote {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
