"""Where planning should win: unseen layouts, scarce data, poor data. One command per study.

    python -m eval.generalization --study layouts --seed 4000 --train-seeds 0,1,2 --out-dir outputs/generalization
    python -m eval.generalization --study size --sizes 1000,10000,100000 --seed 4001
    python -m eval.generalization --study quality --seed 4002

Studies and their points (every point is one dataset file of the ``random`` tier):

==========  ==========================================================  =========================
study       points (dataset)                                            tasks
==========  ==========================================================  =========================
layouts     ``--splits`` k1, k5, k10, k20, k40, all: ``tworooms-collect  ``heldout:SPLIT``: the
            --split NAME``, ``--num-trajectories`` each                 112 held-out layouts
size        ``--sizes`` 1000, 10000, 100000 trajectories, all layouts   PROTOCOL (every layout)
quality     ``random`` and ``no-door`` (``--no-door-crossings``), same  PROTOCOL (every layout)
            size
==========  ==========================================================  =========================

For every point, method (``--methods``: the JEPA agent and offline baselines; scripted agents such as
``oracle`` need no training) and training seed (``--train-seeds``), the model is taken from
``--checkpoint POINT:METHOD[:SEED]=PATH`` if given, else from ``OUT/STUDY/POINT/METHOD_sSEED/model.pt``
if it exists (its recorded dataset checksum must match the point's file), else trained there:
the world model with ``training.world_model`` (``--wm-preset``, ``--wm-max-minutes``, ``--wm-set``), a
baseline with ``eval.baselines.train`` (``--baseline-max-minutes``, ``--baseline-features``). With
``--no-train`` a missing model is a row saying so. Dataset files are collected into ``--data-dir``
when missing, or given with ``--dataset POINT=PATH`` (checked against the point).

Every model of a study runs on the same tasks (``--seed``, ``--episodes``). Writes ``OUT/STUDY/``
``results.json`` (every row and the aggregate), ``results.csv``, ``table.md`` (success per point and
method: mean over training seeds with min-max, or the 95 % Wilson interval for one seed) and
``success.png`` (success against k, against dataset size, or per data quality).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from eval.agents import AGENTS, Unavailable, make_agent
from eval.metrics import machine_description, summarize
from eval.planning import parse_options
from eval.runner import run_episodes
from jepa_agent.validation import run_cli
from tworooms_env.cli import ConfigCLI
from tworooms_env.splits import STUDY_SPLITS, layout_split, parse_split_name

STUDIES = ("layouts", "size", "quality")
LEARNED = ("jepa", "gcbc", "gciql", "gcivl", "hiql", "crl")  # trained per point; other AGENTS need no training


@dataclass(frozen=True)
class Point:
    """One point of a study: its dataset and the layouts its tasks come from."""

    name: str  # k10, n1000, random, no-door
    x: float  # plot position: k (1,013 for "all"), trajectories, or index
    num_trajectories: int
    split: str | None = None  # a named layout split (layouts study)
    door_crossings: bool = True
    eval_layouts: str | None = None  # None: every layout (PROTOCOL)

    def file_name(self, data_seed: int) -> str:
        parts = ["random", self.split or "", "" if self.door_crossings else "nodoor", f"n{self.num_trajectories}",
                 f"s{data_seed}"]
        return "_".join(p for p in parts if p) + ".npz"


def study_points(args: "GeneralizationConfig") -> list[Point]:
    if args.study == "layouts":
        out = []
        for name in args.splits.split(","):
            split = layout_split(name)  # validates the name
            k = split.k if split.k is not None else len(split.train)
            out.append(Point(split.name, k, args.num_trajectories, split=split.name,
                             eval_layouts=f"heldout:{split.name}"))
        return out
    if args.study == "size":
        return [Point(f"n{n}", n, n) for n in (int(v) for v in args.sizes.split(","))]
    return [Point("random", 0, args.num_trajectories), Point("no-door", 1, args.num_trajectories, door_crossings=False)]


# ------------------------------------------------------------------------------------ data
def check_dataset(path: Path, point: Point) -> dict:
    """The file's metadata if it can serve ``point`` (tier, split, variant, size); else ValueError."""
    from tworooms_env.dataset import read_metadata

    meta = read_metadata(path)
    problems = []
    if meta.get("tier", "random") != "random":
        problems.append(f"tier {meta.get('tier')!r} (the studies use the 'random' tier)")
    split = (meta.get("layout_split") or {}).get("name")
    if split != point.split and not (split is None and point.split == "all"):  # a full file's train split is "all"
        problems.append(f"layout split {split!r} (point {point.name} needs {point.split!r})")
    if (meta.get("generator_params") or {}).get("door_crossings", True) != point.door_crossings:
        problems.append("door crossings " + ("absent" if point.door_crossings else "present"))
    if meta.get("num_trajectories") != point.num_trajectories:
        problems.append(f"{meta.get('num_trajectories')} trajectories (point {point.name}: {point.num_trajectories})")
    if problems:
        raise ValueError(f"dataset {path} cannot serve point {point.name}: " + "; ".join(problems))
    return meta


def ensure_dataset(args: "GeneralizationConfig", point: Point) -> Path:
    """The point's dataset file: given (``--dataset``), found in ``--data-dir``, or collected there."""
    from tworooms_env.collect import write_dataset
    from tworooms_env.tiers import tier_config

    given = args.datasets.get(point.name)
    path = Path(given) if given else Path(args.data_dir) / point.file_name(args.data_seed)
    if not path.is_file():
        if given:
            raise FileNotFoundError(f"--dataset {point.name}={given}: no such file")
        config = tier_config("random", **({} if point.door_crossings else {"door_crossings": False, "cross_wall_rate": 0.0}))
        print(f"collecting {path} ({point.num_trajectories:,} trajectories) ...", file=sys.stderr)
        write_dataset(path, config, point.num_trajectories, seed=args.data_seed, progress=False,
                      split=point.split)
    check_dataset(path, point)
    return path


# ---------------------------------------------------------------------------------- models
def recorded_dataset(path: Path) -> dict:
    """What a world-model or offline-baseline checkpoint records of its dataset (and budget)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    info = dict(ckpt.get("dataset") or {})
    minutes = (ckpt.get("stats") or {}).get("train_minutes")
    if minutes is None and ckpt.get("elapsed_s") is not None:
        minutes = float(ckpt["elapsed_s"]) / 60.0
    return {"dataset": info.get("name"), "dataset_sha256": info.get("sha256"), "train_minutes": minutes}


def world_model_config(args: "GeneralizationConfig", dataset: Path, seed: int, out_dir: Path):
    from training.wm_config import make_config

    return make_config(["--preset", args.wm_preset, f"dataset={dataset}", "data_tier=random", f"seed={seed}",
                        f"out_dir={out_dir}", f"max_minutes={args.wm_max_minutes}", f"threads={args.threads}", *args.wm_set])


def check_found_world_model(args: "GeneralizationConfig", path: Path, dataset: Path, seed: int) -> None:
    """A found world model must have been trained with every ``--wm-set`` override of this study."""
    want = world_model_config(args, dataset, seed, path.parent)
    recorded = torch.load(path, map_location="cpu", weights_only=True).get("config") or {}
    for pair in args.wm_set:
        key = pair.split("=", 1)[0].strip().replace("-", "_")
        if key in recorded and recorded[key] != getattr(want, key):
            raise ValueError(f"{path} was trained with {key}={recorded[key]!r}, not the --wm-set {key}={getattr(want, key)!r} "
                             "of this study; delete it or move it away to retrain")


def train_world_model(args: "GeneralizationConfig", dataset: Path, seed: int, out_dir: Path) -> Path:
    from training import world_model as tw

    cfg = world_model_config(args, dataset, seed, out_dir)
    _, summary = tw.train(cfg, progress=args.progress)
    if summary["status"] not in ("finished", "stopped"):
        raise RuntimeError(f"world-model training in {out_dir} ended {summary['status']}: no model.pt")
    return out_dir / "model.pt"


def train_baseline(args: "GeneralizationConfig", method: str, dataset: Path, seed: int, out_dir: Path) -> Path:
    from eval.baselines import train as baseline_train

    argv = ["--method", method, "--dataset", str(dataset), "--features", args.baseline_features,
            "--max-minutes", str(args.baseline_max_minutes), "--seed", str(seed), "--out-dir", str(out_dir),
            "--curve-tasks", "0", "--threads", str(args.threads)]
    argv += ["--steps", str(args.baseline_steps)] if args.baseline_steps else []
    argv += [] if args.progress else ["--no-progress"]
    for pair in args.baseline_set:
        argv += ["--set", pair]
    baseline_train.train(baseline_train.CLI.parse(argv))
    return out_dir / "model.pt"


def ensure_model(args: "GeneralizationConfig", point: Point, method: str, seed: int, dataset: Path,
                 sha256: str) -> tuple[Path | None, str]:
    """(checkpoint, how it was obtained: given | found | trained | missing)."""
    key = f"{point.name}:{method}"
    given = args.checkpoints.get(f"{key}:{seed}") or (args.checkpoints.get(key) if seed == args.seeds[0] else None)
    if given:
        return Path(given), "given"
    out_dir = Path(args.out_dir) / args.study / point.name / f"{method}_s{seed}"
    path = out_dir / "model.pt"
    if path.is_file():
        recorded = recorded_dataset(path)["dataset_sha256"]
        if recorded != sha256:
            raise ValueError(f"{path} was trained on another dataset (sha256 {recorded}, point {point.name}'s file "
                             f"{dataset} has {sha256}); delete it or move it away to retrain")
        if method == "jepa":
            check_found_world_model(args, path, dataset, seed)
        return path, "found"
    if not args.train:
        return None, "missing"
    print(f"training {method} seed {seed} for point {point.name} in {out_dir} ...", file=sys.stderr)
    if method == "jepa":
        return train_world_model(args, dataset, seed, out_dir), "trained"
    return train_baseline(args, method, dataset, seed, out_dir), "trained"


def evaluate(args: "GeneralizationConfig", method: str, checkpoint: Path | None, layouts: str | None) -> dict[str, Any]:
    policy = make_agent(method, checkpoint=str(checkpoint) if checkpoint else None, planner=args.planner,
                        seed=args.seed, planner_options=args.planner_options)
    t0 = time.perf_counter()
    records = run_episodes(policy, args.seed, range(args.episodes), batch_size=args.batch_size,
                           progress=args.progress, desc=method, layouts=layouts)
    summary = summarize([r.as_dict() for r in records])
    summary["eval_seconds"] = time.perf_counter() - t0
    return summary


# -------------------------------------------------------------------------------- outputs
def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (point, method): success over training seeds (mean, min, max, each)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        a = out.setdefault((r["point"], r["method"]), {"point": r["point"], "x": r["x"], "method": r["method"],
                                                       "rates": [], "ci": None, "missing": []})
        if r.get("success_rate") is None:
            a["missing"].append(r.get("status"))
        else:
            a["rates"].append(r["success_rate"])
            a["ci"] = r["success_ci"]
    for a in out.values():
        rates = a["rates"]
        a.update(seeds=len(rates), mean=float(np.mean(rates)) if rates else None,
                 min=min(rates) if rates else None, max=max(rates) if rates else None)
    return list(out.values())


def _cell(a: dict[str, Any] | None) -> str:
    if a is None or a["mean"] is None:
        return "n/a" + (f" ({a['missing'][0]})" if a and a["missing"] else "")
    if a["seeds"] == 1:
        lo, hi = a["ci"]
        return f"{100 * a['mean']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{100 * a['mean']:.1f} % ({100 * a['min']:.1f}-{100 * a['max']:.1f}, {a['seeds']} seeds)"


def markdown(agg: list[dict[str, Any]], points: list[Point], methods: list[str]) -> str:
    by = {(a["point"], a["method"]): a for a in agg}
    lines = ["| point | trajectories | tasks | " + " | ".join(methods) + " |", "|---" * (3 + len(methods)) + "|"]
    for p in points:
        cells = [_cell(by.get((p.name, m))) for m in methods]
        lines.append(f"| {p.name} | {p.num_trajectories:,} | {p.eval_layouts or 'all layouts'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(agg: list[dict[str, Any]], points: list[Point], methods: list[str], study: str, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    by = {(a["point"], a["method"]): a for a in agg}
    width = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        got = [(p, by[(p.name, m)]) for p in points if by.get((p.name, m)) and by[(p.name, m)]["mean"] is not None]
        if not got:
            continue
        y = np.array([100 * a["mean"] for _, a in got])
        err = np.array([[100 * (a["mean"] - a["min"]), 100 * (a["max"] - a["mean"])] for _, a in got]).T
        if study == "quality":
            xs = np.array([points.index(p) for p, _ in got]) + (j - (len(methods) - 1) / 2) * width
            ax.bar(xs, y, width, yerr=err, capsize=3, label=m)
        else:
            ax.errorbar([p.x for p, _ in got], y, yerr=err, marker="o", capsize=3, label=m)
    if study == "quality":
        ax.set_xticks(range(len(points)), [p.name for p in points])
    else:
        ax.set_xscale("log")
        ax.set_xticks([p.x for p in points], [p.name if study == "layouts" else f"{p.x:,.0f}" for p in points])
        ax.minorticks_off()
        ax.set_xlabel("train layouts (k)" if study == "layouts" else "trajectories in the dataset")
    ax.set_ylim(0, 105)
    ax.set_ylabel("success@end (%), min-max over seeds")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(args, rows, points, methods) -> Path:
    out = Path(args.out_dir) / args.study
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(rows)
    title = (f"TwoRooms-v0, {args.study} study, seed {args.seed}, {args.episodes} tasks per point; "
             f"{machine_description()}")
    table = markdown(agg, points, methods)
    budget = (f"Budgets: world model preset {args.wm_preset!r}, max {args.wm_max_minutes:g} min"
              + (f" ({' '.join(args.wm_set)})" if args.wm_set else "")
              + f"; baselines {args.baseline_max_minutes:g} min, {args.baseline_features} features"
              + (f", <= {args.baseline_steps} steps" if args.baseline_steps else "") + f"; {args.threads} torch thread(s) "
              "(models trained by this command; found or given ones keep their recorded train_minutes, see results.json).")
    (out / "table.md").write_text(f"{title}\n\n{table}\n\n{budget}\n\nCommand: `{args.command}`\n")
    (out / "results.json").write_text(json.dumps({"study": args.study, "title": title, "budget": budget,
                                                  "command": args.command, "rows": rows, "aggregate": agg}, indent=2))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows([{k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()} for r in rows])
    plot(agg, points, methods, args.study, out / "success.png", title)
    print(f"{title}\n\n{table}\n\n{budget}\n\nwrote {out / 'table.md'}, results.json, results.csv, success.png")
    return out


# ------------------------------------------------------------------------------------ main
@dataclass
class GeneralizationConfig:
    """The options of ``tworooms-generalization``."""

    study: str = field(default="", metadata={"choices": STUDIES})  # layouts | size | quality (required)
    methods: str = "jepa,gcbc,gciql,hiql,crl"  # comma-separated names of eval.agents.AGENTS
    splits: str = ",".join(STUDY_SPLITS)  # layouts study: the split names (points)
    sizes: str = "1000,10000,100000"  # size study: trajectories per dataset (points)
    num_trajectories: int = 100_000  # layouts and quality studies: dataset size
    data_dir: str = "data/generalization"  # where missing dataset files are collected
    data_seed: int = 0  # collection seed of the dataset files
    dataset: list[str] = field(default_factory=list)  # use these files for points, POINT=PATH ...
    checkpoint: list[str] = field(default_factory=list)  # use these models for points (no training), POINT:METHOD[:SEED]=PATH ...
    train_seeds: str = "0"  # comma-separated training seeds
    train: bool = True  # train missing models (--no-train: only read existing ones; a missing one is a row saying so)
    wm_preset: str = "cpu"  # world-model preset (the pixel recipe: cpu)
    wm_max_minutes: float = 60.0  # world-model wall-clock budget (its max_minutes)
    wm_set: list[str] = field(default_factory=list)  # world-model config overrides KEY=VALUE ...
    baseline_max_minutes: float = 10.0  # offline baselines' training budget (their --max-minutes)
    baseline_features: Literal["pixels", "profile"] = "pixels"  # offline baselines' observation features
    baseline_steps: int | None = None  # cap on a baseline's gradient steps (none: the budget alone)
    baseline_set: list[str] = field(default_factory=list)  # baseline config overrides KEY=JSON ...
    seed: int = 0  # evaluation seed (protocol tasks of (seed, i))
    episodes: int = 200  # tasks per evaluation
    batch_size: int = 50  # episodes run in parallel
    planner: str | None = None  # planner of the JEPA rows (none: the checkpoint's, else mppi)
    planner_option: list[str] = field(default_factory=list)  # override PlannerConfig fields, KEY=VALUE ...
    threads: int = 1  # torch CPU threads for training and evaluation
    out_dir: str = "outputs/generalization"  # directory of the models, table.md, results.json / .csv and success.png
    progress: bool = True  # show progress bars

    def __post_init__(self) -> None:
        if not self.study:
            raise ValueError(f"--study is required (one of {', '.join(STUDIES)})")
        if self.episodes < 1 or self.batch_size < 1 or self.num_trajectories < 1 or self.threads < 1:
            raise ValueError("--episodes, --batch-size, --num-trajectories and --threads must be >= 1")


CLI = ConfigCLI(GeneralizationConfig, prog="tworooms-generalization", description=__doc__.split("\n\n")[0],
                aliases={"wm_minutes": "wm_max_minutes", "baseline_minutes": "baseline_max_minutes"})


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{flag} expects KEY=PATH, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; a user mistake (bad split, method, file) is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    args.command = "python -m eval.generalization " + " ".join(sys.argv[1:] if argv is None else argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(AGENTS))
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {sorted(AGENTS)}")
    args.seeds = [int(s) for s in args.train_seeds.split(",")]
    args.datasets, args.checkpoints = _pairs(args.dataset, "--dataset"), _pairs(args.checkpoint, "--checkpoint")
    args.planner_options = parse_options(args.planner_option)
    if args.study == "layouts":
        for name in args.splits.split(","):
            parse_split_name(name)
    points = study_points(args)
    names = {p.name for p in points}
    for key in list(args.datasets) + [k.split(":")[0] for k in args.checkpoints]:
        if key not in names:
            raise ValueError(f"unknown point {key!r} in --dataset / --checkpoint; this study's points: {sorted(names)}")
    torch.set_num_threads(args.threads)
    from tworooms_env.dataset import sha256_file

    rows: list[dict[str, Any]] = []
    for point in points:
        dataset = ensure_dataset(args, point)
        sha = sha256_file(dataset)
        for method in methods:
            for seed in (args.seeds if method in LEARNED else [None]):
                row: dict[str, Any] = {"study": args.study, "point": point.name, "x": point.x, "method": method,
                                       "train_seed": seed, "dataset_file": str(dataset), "dataset_sha256": sha,
                                       "trajectories": point.num_trajectories, "tasks": point.eval_layouts or "all",
                                       "eval_seed": args.seed, "episodes": args.episodes}
                ckpt, status = ensure_model(args, point, method, seed, dataset, sha) if seed is not None else (None, "untrained")
                row.update(status=status, checkpoint=str(ckpt) if ckpt else None)
                if ckpt is not None:
                    row.update(recorded_dataset(ckpt))
                if status != "missing":
                    try:
                        row.update(evaluate(args, method, ckpt, point.eval_layouts))
                    except Unavailable as err:
                        row["status"] = f"unavailable: {err}"
                rows.append(row)
    write_outputs(args, rows, points, methods)
    return 0


if __name__ == "__main__":
    sys.exit(main())
