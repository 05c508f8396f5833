"""The paper's Table 4 at CPU scale: planners (MPPI, CEM, MPPI-last) on a checkpoint, and the full
planner on ablated checkpoints (no variance, no covariance, no temporal similarity, no IDM).

    python -m eval.ablations --checkpoint PATH [--ablated no-variance=PATH no-idm=PATH ...] \
        --episodes 200 --seed 7 --out-dir outputs/ablations

Writes ``table.md`` (success@end with 95 % Wilson intervals, every row's command-line settings) and
``results.json``. ``--checkpoint true-dynamics`` runs the planner rows on the analytic model (the
planner's ceiling, no learned model involved).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from eval.agents import Unavailable, make_agent
from eval.metrics import format_table, machine_description, summarize
from eval.planning import parse_options
from eval.runner import check_counts, run_episodes
from jepa_agent.validation import run_cli
from tworooms_env.cli import ConfigCLI

# Table 4's planner rows: (row name, planner name, overrides). MPPI/CEM sum the cost over the
# horizon as in the paper's main rows; "MPPI-last" scores the last step only (the earlier default);
# "MPPI-stop" is the default planner (segment MPPI, cost "stop": arrive early, then stand still).
PLANNER_ROWS = [
    ("MPPI (sum)", "mppi", {"cost": "sum", "drop_segments": False}),
    ("CEM (sum)", "cem", {"cost": "sum", "drop_segments": False}),
    ("MPPI-last", "mppi", {"cost": "last", "drop_segments": False}),
    ("MPPI-stop", "mppi", {"cost": "stop"}),
]
ABLATIONS = ("no-variance", "no-covariance", "no-time-sim", "no-idm")
# Optional: the full recipe trained with the ablations' (shorter) budget, the fair reference row.
SAME_BUDGET = "full-same-budget"


def _row(name: str, agent: str, checkpoint: str | None, planner: str, overrides: dict, args) -> dict[str, Any]:
    try:
        policy = make_agent(agent, checkpoint=checkpoint, planner=planner, seed=args.seed,
                            replan_every=args.replan_every, planner_options={**parse_options(args.planner_option), **overrides})
    except Unavailable as err:
        return {"method": name, "unavailable": str(err)}
    records = run_episodes(policy, args.seed, range(args.episodes), batch_size=args.batch_size,
                           progress=args.progress, desc=name)
    summary = summarize([r.as_dict() for r in records])
    summary.update(method=name, checkpoint=checkpoint, planner=planner, planner_overrides=overrides)
    return summary


@dataclass
class AblationsConfig:
    """The options of ``tworooms-ablations``."""

    checkpoint: str | None = None  # full model checkpoint, or 'true-dynamics' (none: the shipped one)
    ablated: list[str] = field(default_factory=list)  # ablated checkpoints NAME=PATH ..., NAME in no-variance, no-covariance, no-time-sim, no-idm or full-same-budget (the full recipe trained with the ablations' budget)
    episodes: int = 200  # tasks per row
    seed: int = 0  # evaluation seed
    batch_size: int = 50  # episodes run in parallel
    replan_every: int | None = None  # actions executed per plan (none: the segment length)
    planner_option: list[str] = field(default_factory=list)  # override PlannerConfig fields in every row, KEY=VALUE ...
    rows: Literal["all", "planners", "ablations"] = "all"  # which rows to run (two processes can split the table over two cores)
    threads: int = 0  # torch CPU threads (0: torch's default; 1 when two evaluations share 2 cores)
    out_dir: str = "outputs/ablations"  # directory of table.md and results.json
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        check_counts(self)


CLI = ConfigCLI(AblationsConfig, prog="tworooms-ablations", description=__doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``tworooms-ablations``); a user mistake is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    ablated = {}
    for item in args.ablated:
        name, _, path = item.partition("=")
        if name not in (*ABLATIONS, SAME_BUDGET) or not path:
            raise ValueError(f"--ablated expects NAME=PATH with NAME in {(*ABLATIONS, SAME_BUDGET)}, got {item!r}")
        ablated[name] = path
    analytic = args.checkpoint == "true-dynamics"
    agent = "jepa-true-dynamics" if analytic else "jepa"
    ckpt = None if analytic else args.checkpoint
    rows = [] if args.rows == "ablations" else [
        _row(name, agent, ckpt, planner, over, args) for name, planner, over in PLANNER_ROWS]
    if args.rows == "planners":
        ablated = None
    elif SAME_BUDGET in ablated:
        rows.append(_row(f"{SAME_BUDGET} (MPPI)", "jepa", ablated[SAME_BUDGET], "mppi", {}, args))
    for name in ABLATIONS if ablated is not None else ():  # never drop a row: a missing checkpoint says so
        if name in ablated:
            rows.append(_row(f"{name} (MPPI)", "jepa", ablated[name], "mppi", {}, args))
        else:
            rows.append({"method": f"{name} (MPPI)", "unavailable": "no ablated checkpoint given (--ablated NAME=PATH)"})

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"Table 4 at CPU scale: seed {args.seed}, {args.episodes} PROTOCOL tasks, model "
              f"{'analytic true dynamics' if analytic else args.checkpoint or 'shipped checkpoint'}; "
              f"machine {machine_description()}\n\n")
    table = format_table(rows)
    (out / "table.md").write_text(header + table + "\n\n`python -m eval.ablations " + " ".join(sys.argv[1:] if argv is None else argv) + "`\n")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
