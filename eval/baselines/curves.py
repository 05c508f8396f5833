"""Learning curves of several offline GCRL runs in one PNG (and CSV): success against training minutes.

    python -m eval.baselines.curves outputs/bl/gcbc_random_60 outputs/bl/gcivl_random --out curves.png

Each argument is a run directory of ``eval.baselines.train`` (its ``summary.json``); the legend names
method, features, dataset file and training steps. The CSV beside the PNG holds every point.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from training.interrupt import CsvLog


def load_runs(dirs: Sequence[str | Path]) -> list[dict]:
    runs = []
    for d in dirs:
        path = Path(d) / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not a run directory of eval.baselines.train")
        runs.append(json.loads(path.read_text()))
    return runs


def plot(runs: list[dict], out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for r in runs:
        pts = r["curve"]
        label = f"{r['method']} ({r['features']}), {r['steps']:,} steps"
        ax.plot([p["train_minutes"] for p in pts], [100 * p["success"] for p in pts], "o-", label=label)
    tasks = {(p["tasks"], p["seed"]) for r in runs for p in r["curve"]}
    ax.set_xlabel("training minutes (one CPU thread)")
    ax.set_ylabel("success@end (%)" + (f", {next(iter(tasks))[0]} tasks of seed {next(iter(tasks))[1]}" if len(tasks) == 1 else ""))
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    names = sorted({r["dataset"]["name"] for r in runs})
    ax.set_title(title or f"offline GCRL on {', '.join(names)}", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    log = CsvLog(out.with_suffix(".csv"), append=False)
    for r in runs:
        for p in r["curve"]:
            log.write({"method": r["method"], "features": r["features"], "dataset": r["dataset"]["name"],
                       "dataset_sha256": r["dataset"]["sha256"], **{k: p[k] for k in ("step", "train_minutes", "success", "tasks", "seed")}})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.baselines.curves", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories of eval.baselines.train")
    p.add_argument("--out", required=True, help="PNG to write (a CSV of the points is written beside it)")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    try:
        path = plot(load_runs(args.runs), Path(args.out), args.title)
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
