"""Every method on the same PROTOCOL tasks: a Markdown table and a bar chart with 95 % intervals.

    python -m eval.compare --episodes 200 --seed 7 --out-dir outputs/compare [--checkpoint PATH] \
        [--dataset random|contact|navigate|F.npz] [--agent-checkpoint gciql=PATH ...]

``--dataset`` names the table's data tier (a tier, or a trajectory file whose metadata gives it):
a learned model whose recorded dataset tier differs is refused with an error before anything
runs; models that record no tier (the shipped convolutional GCBC, SAC+HER) run and say so. With a
trajectory file, every learned row (the JEPA's included) must have trained on that very file: a
model whose recorded sha256 differs is refused. Each row names its dataset file, size, features,
training minutes and training seeds; results.json and results.csv hold every column.
Methods that cannot run (no trained checkpoint, missing dependency) appear as rows that say why;
none is dropped silently. ``--layouts heldout:SPLIT`` draws every task from a layout split's held-out
layouts (same task seeds; see ``tworooms_env.splits``). Columns: method, data or budget used, success@end [95 % CI],
success@any, strict, mean final distance, steps to success (median / p90) and per task against the
oracle's, success within 50 / 100 / 200 steps, path length to success, seconds per episode.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from eval.agents import AGENTS, Unavailable, make_agent
from eval.metrics import format_table, machine_description, summarize
from eval.runner import check_counts, run_episodes
from jepa_agent.validation import run_cli
from tworooms_env.cli import ConfigCLI

# (name in eval.agents.AGENTS, what it uses)
METHODS = [
    ("jepa", "JEPA world model, pixels through a learned encoder, random-tier dataset + MPPI planning"),
    ("jepa-profile", "JEPA world model, hand-crafted position features (privileged), navigate-like stream + MPPI"),
    ("gcbc", "GCBC, behaviour cloning with hindsight goals (shipped: convolutional, 20k generated walks, 20 min, pixels; or a checkpoint trained from the dataset file)"),
    ("gciql", "GCIQL, offline GCRL from the dataset file (its checkpoint records tier and features)"),
    ("gcivl", "GCIVL, offline GCRL from the dataset file (its checkpoint records tier and features)"),
    ("hiql", "HIQL, offline GCRL from the dataset file (its checkpoint records tier and features)"),
    ("crl", "CRL, offline GCRL from the dataset file (its checkpoint records tier and features)"),
    ("sb3-pixels", "SAC + HER, online with reward (pixels), 12k env steps, 25 min CPU"),
    ("sb3-state", "SAC + HER, online with reward (privileged state), 99k env steps, 27 min CPU"),
    ("jepa-true-dynamics", "planner ceiling: MPPI on the true dynamics (privileged)"),
    ("oracle", "shortest path through the door (privileged)"),
    ("greedy", "straight to the goal (privileged)"),
    ("random", "uniform actions"),
]


class TierMismatch(ValueError):
    """A model trained on another data tier than the table's."""


def table_tier(dataset: str) -> str:
    """The tier named by ``--dataset``: a tier name, or the "tier" of a trajectory file's metadata."""
    from eval.baselines.offline import TIERS

    if dataset in TIERS:
        return dataset
    if dataset.endswith(".npz"):
        from tworooms_env.dataset import read_metadata

        return read_metadata(dataset).get("tier", "random")
    raise ValueError(f"--dataset must be one of {TIERS} or a trajectory file (.npz), got {dataset!r}")


def check_tier(name: str, policy: Any, tier: str | None) -> str | None:
    """The model's recorded tier; raises TierMismatch when it differs from the table's ``tier``."""
    model_tier = getattr(policy, "data_tier", None)
    if tier is not None and model_tier is not None and model_tier != tier:
        dataset = (getattr(policy, "meta", {}).get("dataset") or {}).get("name", "?")
        raise TierMismatch(f"refused: {name} was trained on data tier {model_tier!r} ({dataset}), "
                           f"but this table is for tier {tier!r}; train it on a {tier!r} dataset or drop it")
    return model_tier


def model_dataset(policy: Any) -> dict[str, Any]:
    """What a learned policy records of its training data and budget: dataset file (name, sha256,
    size), encoder features and training minutes; {} for policies that record nothing."""
    meta = getattr(policy, "meta", None) or {}
    if meta.get("dataset"):  # offline GCRL checkpoint
        d = meta["dataset"]
        return {"dataset": d.get("name"), "dataset_sha256": d.get("sha256"), "dataset_trajectories": d.get("num_trajectories"),
                "features": meta.get("config", {}).get("features"), "train_minutes": meta.get("stats", {}).get("train_minutes"),
                "training_seeds": 1}
    model = getattr(policy, "model", None)
    d = getattr(model, "dataset", None)
    if isinstance(d, dict):  # JEPA world model
        encoder = type(getattr(model, "encoder", None)).__name__
        features = "pixels (learned)" if encoder == "PixelEncoder" else f"{encoder} (hand-crafted, privileged)" if encoder == "ProfileEncoder" else encoder
        elapsed = getattr(model, "elapsed_s", None)
        return {"dataset": d.get("name"), "dataset_sha256": d.get("sha256"), "dataset_trajectories": d.get("trajectories"),
                "features": features, "train_minutes": elapsed / 60.0 if elapsed else None, "training_seeds": 1}
    return {}


def check_same_file(name: str, recorded: dict[str, Any], sha256: str | None, path: str) -> None:
    """With ``--dataset FILE``: every learned row must have trained on that very file (same sha256)."""
    if sha256 is None or not recorded.get("dataset_sha256"):
        return
    if recorded["dataset_sha256"] != sha256:
        raise TierMismatch(f"refused: {name} was trained on {recorded.get('dataset')} (sha256 {recorded['dataset_sha256'][:12]}...), "
                           f"not on {path} (sha256 {sha256[:12]}...); every row of a table trains on the same dataset file")


def parse_checkpoints(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--agent-checkpoint expects NAME=PATH, got {pair!r}")
        name, path = pair.split("=", 1)
        out[name.strip()] = path.strip()
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    return format_table(rows, "method", second=("data / budget", "uses"), p90=False)


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """One line per method: every scalar of its row (intervals become "lo;hi"), one header for all."""
    from training.interrupt import CsvLog

    log = CsvLog(path, append=False)
    for r in rows:
        log.write({k: ";".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in r.items() if not isinstance(v, dict)})
    return path


def bar_chart(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["method"] for r in rows]
    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 2, 3.6))
    for i, r in enumerate(rows):
        if r.get("unavailable"):
            ax.text(i, 2, "n/a", ha="center", va="bottom", fontsize=8, color="grey", rotation=90)
            continue
        rate, (lo, hi) = 100 * r["success_rate"], r["success_ci"]
        ax.bar(i, rate, color="#4c72b0")
        ax.errorbar(i, rate, yerr=[[max(rate - 100 * lo, 0.0)], [max(100 * hi - rate, 0.0)]], color="black", capsize=4)
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success@end (%), 95 % Wilson CI")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class CompareConfig:
    """The options of ``tworooms-compare``."""

    episodes: int = 200  # tasks per method
    seed: int = 0  # evaluation seed (the same tasks for every method)
    batch_size: int = 50  # episodes run in parallel
    layouts: str | None = None  # draw tasks from these layouts only: heldout:SPLIT, train:SPLIT (e.g. heldout:k10) or all
    checkpoint: str | None = None  # world model of the jepa row (none: the shipped one)
    planner: str | None = None  # planner of the JEPA rows (none: the checkpoint's, else mppi)
    methods: str = ",".join(m for m, _ in METHODS)  # comma-separated subset of the methods
    dataset: str = ""  # the table's data tier: random | contact | navigate | F.npz ("": any)
    agent_checkpoint: list[str] = field(default_factory=list)  # checkpoints of learned baselines, NAME=PATH ..., e.g. gciql=outputs/baselines/gciql_random/model.pt
    threads: int = 0  # torch CPU threads (0: torch's default)
    out_dir: str = "outputs/compare"  # directory of table.md, results.json and success.png
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        check_counts(self)
        unknown = sorted(set(self.methods.split(",")) - set(AGENTS))
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; expected some of {sorted(AGENTS)}")
        from tworooms_env.splits import resolve_layouts

        resolve_layouts(self.layouts)  # a bad set is an error line before any model loads


CLI = ConfigCLI(CompareConfig, prog="tworooms-compare", description=__doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; a user mistake (bad checkpoint, method or count) is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tier = table_tier(args.dataset) if args.dataset else None
    file_sha = None
    if args.dataset.endswith(".npz"):
        from tworooms_env.dataset import sha256_file

        file_sha = sha256_file(args.dataset)
    checkpoints = parse_checkpoints(args.agent_checkpoint)
    uses = dict(METHODS)
    policies, rows = {}, []
    for name in args.methods.split(","):  # build (and check) every model before running any
        row: dict[str, Any] = {"method": name, "uses": uses.get(name, "")}
        ckpt = args.checkpoint if name == "jepa" else checkpoints.get(name)
        try:
            policy = make_agent(name, checkpoint=ckpt, planner=args.planner, seed=args.seed)
        except Unavailable as err:
            rows.append({**row, "unavailable": str(err)})
            continue
        recorded = model_dataset(policy)
        try:
            row["data_tier"] = check_tier(name, policy, tier)
            check_same_file(name, recorded, file_sha, args.dataset)
        except TierMismatch as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        row.update(recorded)
        policies[name] = policy
        rows.append(row)
    for row in rows:
        if row.get("unavailable"):
            continue
        name, policy = row["method"], policies[row["method"]]
        records = run_episodes(policy, args.seed, range(args.episodes), batch_size=args.batch_size,
                               progress=args.progress, desc=name, layouts=args.layouts)
        row.update(summarize([r.as_dict() for r in records]))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"TwoRooms-v0, seed {args.seed}, {args.episodes} PROTOCOL tasks; {machine_description()}"
    if tier is not None:
        title += f"; data tier {tier!r}"
    if args.layouts not in (None, "all"):
        title += f"; layouts {args.layouts}"
    table = markdown(rows)
    (out / "table.md").write_text(f"{title}\n\n{table}\n")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    write_csv(rows, out / "results.csv")
    bar_chart(rows, out / "success.png", title)
    print(title + "\n\n" + table + f"\n\nwrote {out / 'table.md'}, {out / 'results.json'}, {out / 'results.csv'}, {out / 'success.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
