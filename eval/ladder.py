"""What the encoder, the data and the training time are worth: the world model's ladder.

    python -m eval.ladder --study tiers --seed 3500 --threads 1 \
        --checkpoint pixel:random=jepa_agent/checkpoints/world_model_cpu.pt
    python -m eval.ladder --study time --epochs 10,20,30 --seed 3500 --threads 1 \
        --checkpoint e30=jepa_agent/checkpoints/world_model_cpu.pt

Studies and their cells (every cell is one world model, evaluated on the same ``--episodes`` tasks of
``--seed`` with the checkpoint's planner, else MPPI with the stop cost):

=======  ====================================================================================
study    cells
=======  ====================================================================================
tiers    encoder x tier: ``--encoders`` pixel (the ``cpu`` preset, ``PixelEncoder`` learned from
         pixels), profile (the ``profile`` preset, hand-crafted position features: privileged) x
         ``--tiers`` random, contact, navigate (``data/tworooms_TIER.npz``, 100,000 trajectories,
         collection seed 0). One budget for every cell: ``--windows`` training windows (default
         2,304,000 = the ``cpu`` preset's 18,000 steps of 128 windows; the profile preset's batch of
         256 windows gives 9,000 steps).
time     the ``cpu`` preset on the ``random`` tier with ``--epochs`` E (schedules of E x 600 steps,
         warmup and cosine scaled with them; the preset is 30); the table and plot put each model's
         recorded training minutes on the x axis.
=======  ====================================================================================

A cell's model is ``--checkpoint CELL=PATH`` if given, else ``OUT/STUDY/CELL_sSEED/model.pt`` if it
exists (its recorded dataset checksum must be the cell's file), else trained there with
``training.world_model`` (``--no-train``: a missing model is a row saying so). The evaluation of a
model is cached (``OUT/evals/``, keyed by the checkpoint's sha256, planner, seed and episodes), so
cells can be trained and evaluated by several processes (``--cells``) and gathered by one last call.
Writes ``OUT/STUDY/`` ``table.md``, ``results.json``, ``results.csv`` and ``success.png``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eval.metrics import machine_description, markdown_table, write_json
from jepa_agent.validation import run_cli
from training.wm_config import make_config, tier_overrides
from tworooms_env.cli import ConfigCLI
from tworooms_env.tiers import TIERS

STUDIES = ("tiers", "time")
ENCODERS = {"pixel": "cpu", "profile": "profile"}  # encoder -> the preset of its recipe
STEPS_PER_EPOCH = 600


@dataclass(frozen=True)
class Cell:
    name: str  # pixel:random, e10
    encoder: str
    tier: str
    preset: str
    overrides: tuple[str, ...]  # training.world_model KEY=VALUE beyond the preset, dataset and seed

    @property
    def slug(self) -> str:
        return self.name.replace(":", "_")


def study_cells(args: "LadderConfig") -> list[Cell]:
    if args.study == "time":
        out = []
        for e in (int(v) for v in args.epochs.split(",")):
            if e < 1:
                raise ValueError(f"--epochs must be >= 1, got {e}")
            out.append(Cell(f"e{e}", "pixel", "random", "cpu", (f"epochs={e}",)))
        return out
    out = []
    for enc in args.encoders.split(","):
        if enc not in ENCODERS:
            raise ValueError(f"unknown encoder {enc!r}; expected some of {sorted(ENCODERS)}")
        batch = make_config(["--preset", ENCODERS[enc]]).batch_size
        steps = args.windows / batch
        epochs = int(round(steps / STEPS_PER_EPOCH))
        if epochs < 1 or abs(epochs * STEPS_PER_EPOCH - steps) > 0.5:
            raise ValueError(f"--windows {args.windows} is not a whole number of {STEPS_PER_EPOCH}-step epochs "
                             f"of {batch} windows (the {ENCODERS[enc]} preset's batch)")
        for tier in args.tiers.split(","):
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; expected some of {', '.join(TIERS)}")
            out.append(Cell(f"{enc}:{tier}", enc, tier, ENCODERS[enc], (f"epochs={epochs}",)))
    return out


def dataset_path(args: "LadderConfig", tier: str) -> Path:
    """``--data-dir``/tworooms_TIER.npz, collected (100,000 trajectories, seed 0) when missing."""
    from tworooms_env.collect import write_dataset
    from tworooms_env.dataset import read_metadata
    from tworooms_env.tiers import tier_config

    path = Path(args.data_dir) / f"tworooms_{tier}.npz"
    if not path.is_file():
        print(f"collecting {path} (tworooms-collect --tier {tier} --num-trajectories {args.num_trajectories} "
              f"--seed 0 --window 41) ...", file=sys.stderr)
        write_dataset(path, tier_config(tier), args.num_trajectories, seed=0, window=41)
    got = read_metadata(path).get("tier", "random")
    if got != tier:
        raise ValueError(f"{path} holds tier {got!r}, not {tier!r}")
    return path


def train_cell(args: "LadderConfig", cell: Cell, dataset: Path, seed: int, out_dir: Path) -> Path:
    from training import world_model as tw

    cfg = make_config(["--preset", cell.preset, f"dataset={dataset}", *tier_overrides(cell.tier), *cell.overrides,
                       f"seed={seed}", f"out_dir={out_dir}", f"threads={args.threads}",
                       f"max_minutes={args.max_minutes}", "tensorboard=false", *args.set])
    _, summary = tw.train(cfg, progress=args.progress)
    if summary["status"] not in ("finished", "stopped"):
        raise RuntimeError(f"training in {out_dir} ended {summary['status']}: no model.pt")
    return out_dir / "model.pt"


def train_command(args: "LadderConfig", cell: Cell, dataset: Path, seed: int, out_dir: Path) -> str:
    return " ".join(["python -m training.world_model --preset", cell.preset, f"dataset={dataset}",
                     *tier_overrides(cell.tier), *cell.overrides, f"seed={seed}", f"out_dir={out_dir}", *args.set])


def evaluate_cached(args: "LadderConfig", checkpoint: Path) -> dict[str, Any]:
    """Success of ``checkpoint`` on the study's tasks, read from ``OUT/evals/`` when it was computed
    for the same checkpoint bytes, planner (``--planner-option`` and the checkpoint's
    ``.planner.json``), seed and number of episodes."""
    from eval.agents import make_agent
    from eval.metrics import summarize
    from eval.planning import parse_options
    from eval.runner import run_episodes
    from jepa_agent.world_model import read_planner_defaults
    from tworooms_env.dataset import sha256_file

    sha = sha256_file(checkpoint)
    options = parse_options(args.planner_option)
    planner = {"options": options, "checkpoint_defaults": list(read_planner_defaults(checkpoint))}
    tag = hashlib.sha256(json.dumps(planner, sort_keys=True, default=str).encode()).hexdigest()[:8]
    cache = Path(args.out_dir) / "evals" / f"{checkpoint.parent.name}_{sha[:12]}_s{args.seed}_n{args.episodes}_{tag}.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("checkpoint_sha256") == sha:
            return cached
    policy = make_agent("jepa", checkpoint=str(checkpoint), seed=args.seed, planner_options=options)
    records = run_episodes(policy, args.seed, range(args.episodes), batch_size=args.batch_size,
                           progress=args.progress, desc=checkpoint.parent.name)
    out = {"checkpoint_sha256": sha, "planner_options": options, **summarize([r.as_dict() for r in records])}
    write_json(cache, out)
    return out


def checkpoint_record(path: Path) -> dict[str, Any]:
    """What the world-model checkpoint records: dataset, tier, steps, minutes, encoder, seed."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = ckpt.get("config") or {}
    data = ckpt.get("dataset") or {}
    minutes = float(ckpt["elapsed_s"]) / 60.0 if ckpt.get("elapsed_s") is not None else None
    return {"encoder_class": cfg.get("encoder"), "data_tier": ckpt.get("data_tier") or data.get("tier"),
            "dataset": data.get("name"), "dataset_sha256": data.get("sha256"), "train_seed": cfg.get("seed"),
            "steps": ckpt.get("step"), "batch_size": cfg.get("batch_size"), "train_minutes": minutes,
            "threads": cfg.get("threads")}


def model_dir(args: "LadderConfig", cell: Cell, seed: int) -> Path:
    """Where a cell's model of training seed ``seed`` is trained (and looked for)."""
    return Path(args.out_dir) / args.study / f"{cell.slug}_s{seed}"


def ensure_model(args: "LadderConfig", cell: Cell, seed: int, dataset: Path, sha: str) -> tuple[Path | None, str]:
    given = args.checkpoints.get(f"{cell.name}:{seed}") or (args.checkpoints.get(cell.name) if seed == args.seeds[0] else None)
    path = Path(given) if given else model_dir(args, cell, seed) / "model.pt"
    if path.is_file():
        recorded = checkpoint_record(path)["dataset_sha256"]
        if recorded != sha:
            raise ValueError(f"{path} was trained on another dataset (sha256 {recorded}); cell {cell.name} reads "
                             f"{dataset} (sha256 {sha})")
        return path, "given" if given else "found"
    if given:
        raise FileNotFoundError(f"--checkpoint {cell.name}={given}: no such file")
    if not args.train:
        return None, "missing"
    print(f"training cell {cell.name} seed {seed} in {path.parent}:\n  {train_command(args, cell, dataset, seed, path.parent)}",
          file=sys.stderr)
    return train_cell(args, cell, dataset, seed, path.parent), "trained"


# -------------------------------------------------------------------------------- outputs
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def cell_text(rows: list[dict[str, Any]]) -> str:
    """One model: success [95 % CI]; several training seeds: the mean (each seed's rate)."""
    done = [r for r in rows if r.get("success_rate") is not None]
    if not done:
        return "n/a (" + ", ".join(sorted({r["status"] for r in rows})) + ")"
    if len(done) == 1:
        lo, hi = done[0]["success_ci"]
        return f"{_pct(done[0]['success_rate'])} [{100 * lo:.1f}, {100 * hi:.1f}]"
    rates = [r["success_rate"] for r in done]
    return f"{_pct(float(np.mean(rates)))} ({', '.join(_pct(r) for r in rates)})"


def details(rows: list[dict[str, Any]]) -> str:
    """One line per model: budget, minutes, success, steps against the oracle's, planning seconds."""
    def ratio(r: dict[str, Any]) -> str:
        med, p90 = r.get("oracle_ratio_median"), r.get("oracle_ratio_p90")
        return "-" if med is None else f"{med:.2f}x / {p90:.2f}x"

    out = [[r["cell"], r["train_seed"], "-" if r.get("steps") is None else f"{r['steps']:,} x {r['batch_size']}",
            "-" if r.get("train_minutes") is None else f"{r['train_minutes']:.1f}", cell_text([r]), ratio(r),
            "-" if r.get("median_episode_seconds") is None else f"{r['median_episode_seconds']:.2f}"] for r in rows]
    return markdown_table(["cell", "train seed", "steps x windows", "training minutes", "success@end [95 % CI]",
                           "vs oracle steps median / p90", "s/episode"], out)


def markdown(args: "LadderConfig", rows: list[dict[str, Any]], cells: list[Cell]) -> str:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["cell"], []).append(r)
    if args.study == "tiers":
        tiers = list(dict.fromkeys(c.tier for c in cells))
        encs = list(dict.fromkeys(c.encoder for c in cells))
        label = {"pixel": "pixels, learned encoder (`cpu` preset)", "profile": "hand-crafted position features, privileged (`profile` preset)"}
        grid = markdown_table(["encoder"] + [f"`{t}` tier" for t in tiers],
                              [[label[e]] + [cell_text(by.get(f"{e}:{t}", [])) for t in tiers] for e in encs])
        return grid + "\n\n" + details(rows)
    out = []
    for c in cells:
        rs = by.get(c.name, [])
        minutes = [r["train_minutes"] for r in rs if r.get("train_minutes") is not None]
        ratio = [r["oracle_ratio_median"] for r in rs if r.get("oracle_ratio_median") is not None]
        steps = sorted({r["steps"] for r in rs if r.get("steps") is not None})
        out.append([c.name, ", ".join(f"{n:,}" for n in steps) or "-",
                    ", ".join(f"{m:.1f}" for m in minutes) or "-", cell_text(rs),
                    ", ".join(f"{x:.2f}x" for x in ratio) or "-"])
    return markdown_table(["schedule", "steps", "training minutes", "success@end", "vs oracle steps (median)"], out) + \
        "\n\n" + details(rows)


def plot(args: "LadderConfig", rows: list[dict[str, Any]], cells: list[Cell], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    done = [r for r in rows if r.get("success_rate") is not None]
    if args.study == "tiers":
        tiers = list(dict.fromkeys(c.tier for c in cells))
        encs = list(dict.fromkeys(c.encoder for c in cells))
        width = 0.8 / len(encs)
        for j, enc in enumerate(encs):
            ys = [[100 * r["success_rate"] for r in done if r["cell"] == f"{enc}:{t}"] for t in tiers]
            means = [float(np.mean(y)) if y else 0.0 for y in ys]
            xs = np.arange(len(tiers)) + (j - (len(encs) - 1) / 2) * width
            ax.bar(xs, means, width, label=enc + (" (privileged)" if enc == "profile" else ""))
        ax.set_xticks(range(len(tiers)), [f"{t} tier" for t in tiers])
    else:
        pts = sorted((r["train_minutes"], 100 * r["success_rate"]) for r in done if r.get("train_minutes") is not None)
        if pts:
            ax.plot(*zip(*pts), "o-", label="pixel encoder, random tier")
        ax.set_xlabel("training minutes (recorded)")
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"success@end (%), {args.episodes} tasks")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(args: "LadderConfig", rows: list[dict[str, Any]], cells: list[Cell]) -> Path:
    from training.interrupt import CsvLog

    out = Path(args.out_dir) / args.study
    out.mkdir(parents=True, exist_ok=True)
    title = f"TwoRooms-v0, ladder ({args.study}), seed {args.seed}, {args.episodes} tasks per cell; {machine_description()}"
    table = markdown(args, rows, cells)
    commands = "\n".join(f"- {r['cell']} seed {r['train_seed']}: `{r['train_command']}`" for r in rows)
    (out / "table.md").write_text(f"{title}\n\n{table}\n\nTraining commands:\n{commands}\n\nCommand: `{args.command}`\n")
    write_json(out / "results.json", {"study": args.study, "title": title, "command": args.command, "rows": rows})
    log = CsvLog(out / "results.csv", append=False)
    for r in rows:
        log.write({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()})
    plot(args, rows, cells, out / "success.png", title)
    print(f"{title}\n\n{table}\n\nwrote {out / 'table.md'}, results.json, results.csv, success.png")
    return out


# ------------------------------------------------------------------------------------ main
@dataclass
class LadderConfig:
    """The options of ``tworooms-ladder`` (``python -m eval.ladder``)."""

    study: str = field(default="", metadata={"choices": STUDIES})  # tiers | time (required)
    encoders: str = "pixel,profile"  # tiers study: comma-separated encoders (pixel, profile)
    tiers: str = ",".join(TIERS)  # tiers study: comma-separated data tiers
    windows: int = 2_304_000  # tiers study: training windows per cell (steps x batch), the same for every cell
    epochs: str = "10,20,30"  # time study: schedules of the cpu preset, in 600-step epochs
    cells: str = ""  # only these cells (comma-separated names, e.g. pixel:contact or e10); "" = all
    data_dir: str = "data"  # where the tiers' files are (collected when missing)
    num_trajectories: int = 100_000  # size of a collected file
    checkpoint: list[str] = field(default_factory=list)  # use these models, CELL[:SEED]=PATH ...
    train_seeds: str = "0"  # comma-separated training seeds
    train: bool = True  # train missing models (--no-train: a missing model is a row saying so)
    max_minutes: float = 150.0  # wall-clock cap of one training run (its max_minutes)
    set: list[str] = field(default_factory=list)  # world-model overrides KEY=VALUE applied after the cell's (tests, pilots)
    seed: int = 0  # evaluation seed (protocol tasks of (seed, i))
    episodes: int = 200  # tasks per evaluation
    batch_size: int = 50  # episodes planned in one batch
    planner_option: list[str] = field(default_factory=list)  # override PlannerConfig fields, KEY=VALUE ... (part of the cache key)
    threads: int = 1  # torch CPU threads
    out_dir: str = "outputs/ladder"  # models, evaluation caches, table.md, results.json / .csv, success.png
    progress: bool = True  # show progress bars

    def __post_init__(self) -> None:
        if not self.study:
            raise ValueError(f"--study is required (one of {', '.join(STUDIES)})")
        if min(self.episodes, self.batch_size, self.threads, self.windows, self.num_trajectories) < 1:
            raise ValueError("--episodes, --batch-size, --threads, --windows and --num-trajectories must be >= 1")
        if self.max_minutes < 0:
            raise ValueError(f"--max-minutes must be >= 0, got {self.max_minutes}")


CLI = ConfigCLI(LadderConfig, prog="tworooms-ladder", description=__doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; a user mistake (unknown encoder, tier, cell, file) is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    import torch

    from tworooms_env.dataset import sha256_file

    args = CLI.parse(argv)
    args.command = "python -m eval.ladder " + " ".join(sys.argv[1:] if argv is None else argv)
    cells = study_cells(args)
    names = [c.name for c in cells]
    wanted = [c for c in args.cells.split(",") if c]
    if set(wanted) - set(names):
        raise ValueError(f"unknown cell(s) {sorted(set(wanted) - set(names))}; this study's cells: {names}")
    args.seeds = [int(s) for s in args.train_seeds.split(",")]
    args.checkpoints = {}
    for item in args.checkpoint:
        key, sep, value = item.partition("=")
        cell, _, seed = key.rpartition(":") if key not in names else (key, "", "")
        if not sep or not value or cell not in names or (seed and not seed.isdigit()):
            raise ValueError(f"--checkpoint expects CELL[:SEED]=PATH with a cell of {names}, got {item!r}")
        args.checkpoints[key] = value
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    cells = [c for c in cells if not wanted or c.name in wanted]
    for cell in cells:
        dataset = dataset_path(args, cell.tier)
        sha = sha256_file(dataset)
        for seed in args.seeds:
            row: dict[str, Any] = {"study": args.study, "cell": cell.name, "encoder": cell.encoder, "tier": cell.tier,
                                   "preset": cell.preset, "train_seed": seed, "dataset_file": str(dataset),
                                   "dataset_sha256": sha, "eval_seed": args.seed, "episodes": args.episodes,
                                   "train_command": train_command(args, cell, dataset, seed, model_dir(args, cell, seed))}
            ckpt, status = ensure_model(args, cell, seed, dataset, sha)
            row.update(status=status, checkpoint=str(ckpt) if ckpt else None)
            if ckpt is not None:
                row.update(checkpoint_record(ckpt))
                row.update(evaluate_cached(args, ckpt))
            rows.append(row)
    write_outputs(args, rows, cells)
    return 0


if __name__ == "__main__":
    sys.exit(main())
