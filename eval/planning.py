"""Evaluate an agent on docs/protocol.md tasks of TwoRooms-v0: table, JSON, CSV, videos.

    python -m eval.planning --agent jepa --checkpoint PATH --planner mppi --episodes 200 --seed 7 \
        --json outputs/eval/jepa.json --csv outputs/eval/jepa.csv --videos 4

Options: ``tworooms-eval --help`` (every ``--key-name`` also reads as ``key_name=value``).
``--agent`` takes every name of ``eval.agents.AGENTS`` (jepa, jepa-true-dynamics, random,
greedy, oracle, gcbc, ...). Seconds per episode are amortised over a batch of ``--batch-size``
episodes run in lockstep; ``--batch-size 1`` measures single-episode wall time. ``--layouts heldout:SPLIT`` (or
``train:SPLIT``) draws the tasks from a layout split's held-out (train) layouts only: task i of seed
s is still drawn by its own generator (s, i), which picks the layout from that sorted list.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import torch

from eval.agents import AGENTS, Unavailable, make_agent
from eval.metrics import format_table, machine_description, summarize
from eval.runner import EpisodeRecord, check_counts, run_episodes
from jepa_agent.planner_config import PlannerConfig
from jepa_agent.validation import check_device, run_cli
from tworooms_env.cli import ConfigCLI, parse_pairs
from tworooms_env.splits import resolve_layouts


@dataclass
class EvalConfig:
    """The options of ``tworooms-eval``."""

    agent: str = field(default="jepa", metadata={"choices": tuple(sorted(AGENTS))})  # agent of eval.agents.AGENTS
    checkpoint: str | None = None  # world model (or learned agent) checkpoint (none: the shipped one)
    planner: str | None = None  # mppi | cem | grad | mppi-last | mppi-sum | cem-stop ... (none: the checkpoint's, else mppi)
    planner_option: list[str] = field(default_factory=list)  # override PlannerConfig fields, KEY=VALUE ..., e.g. num_samples=128
    replan_every: int | None = None  # actions executed per plan (none: the segment length)
    restart_when_stuck: bool | None = None  # JEPA agents: replan cold when pushing leaves the frame unchanged (none: the agent's)
    episodes: int = 200  # tasks to run
    first_index: int = 0  # first task index (any subset can be re-run)
    seed: int = 0  # evaluation seed (docs/protocol.md: task i of seed s is drawn from (s, i))
    layouts: str | None = None  # draw tasks from these layouts only: heldout:SPLIT, train:SPLIT (e.g. heldout:k10) or all
    batch_size: int = 50  # episodes run in parallel (1 measures single-episode wall time)
    terminate_on_success: bool = False  # end each episode at its first success (success@end is then success@any)
    device: str = "cpu"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads (0: torch's default)
    json: str = ""  # write the summary and every episode to this JSON file
    csv: str = ""  # write one row per episode to this CSV file
    videos: int = 0  # write this many episode videos (+ a grid PNG)
    video_dir: str = "outputs/videos"  # directory of the videos
    video_format: Literal["gif", "mp4"] = "gif"  # video file format
    video_every: int = 1  # draw every n-th step (smaller files)
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        check_counts(self, non_negative=("threads", "first_index", "videos", "seed"))
        if self.video_every < 1:
            raise ValueError(f"--video-every must be >= 1, got {self.video_every}")
        check_device(self.device)
        resolve_layouts(self.layouts)  # a bad set is an error line before any model loads


CLI = ConfigCLI(EvalConfig, prog="tworooms-eval", description=__doc__.split("\n\n")[0])


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``--planner-option`` pairs -> {field: typed value}; a key that is no PlannerConfig field is an error."""
    return parse_pairs(PlannerConfig, pairs, "--planner-option")


def agent_options(args: EvalConfig) -> dict[str, Any]:
    """The options ``make_agent`` takes, from the command line."""
    return dict(checkpoint=args.checkpoint, planner=args.planner, seed=args.seed, device=args.device,
                replan_every=args.replan_every, planner_options=parse_options(args.planner_option),
                restart_when_stuck=args.restart_when_stuck)


def evaluate(args: EvalConfig) -> tuple[dict[str, Any], list[EpisodeRecord]]:
    """Run one evaluation; returns (summary, episode records). Raises Unavailable."""
    if args.threads:
        torch.set_num_threads(args.threads)
    policy = make_agent(args.agent, **agent_options(args))
    indices = range(args.first_index, args.first_index + args.episodes)
    records = run_episodes(policy, args.seed, indices, batch_size=args.batch_size, progress=args.progress,
                           desc=args.agent, terminate_on_success=args.terminate_on_success, layouts=args.layouts)
    summary = summarize([r.as_dict() for r in records])
    planner = getattr(policy, "planner", None)
    summary.update({
        "method": args.agent, "seed": args.seed, "first_index": args.first_index, "batch_size": args.batch_size,
        "layouts": args.layouts or "all",
        "seconds_measured_as": "batch wall time / batch size (amortised)" if args.batch_size > 1 else "single-episode wall time",
        "machine": machine_description(), "checkpoint": args.checkpoint,
        "planner": getattr(planner, "name", None), "planner_config": planner.config.to_dict() if hasattr(planner, "config") else None,
        "replan_every": getattr(policy, "replan_every", None), "terminate_on_success": args.terminate_on_success,
        "restart_when_stuck": getattr(policy, "restart_when_stuck", None),
        "command": "python -m eval.planning " + " ".join(sys.argv[1:]),
    })
    return summary, records


def write_outputs(args, summary: dict[str, Any], records: list[EpisodeRecord]) -> None:
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**summary, "per_episode": [r.as_dict() for r in records]}, indent=2))
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [r.as_dict() for r in records]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def write_videos(args, records: list[EpisodeRecord]) -> list[Path]:
    """Re-run the first ``--videos`` episodes (successes and failures alike) with recording on."""
    from eval.videos import write_episode_video, write_grid

    chosen = [r.index for r in records[: args.videos]]
    policy = make_agent(args.agent, **agent_options(args))
    recorded = run_episodes(policy, args.seed, chosen, batch_size=len(chosen), record=True, progress=False,
                            layouts=args.layouts)
    out = Path(args.video_dir)
    paths = [write_episode_video(r, out / f"{args.agent}_seed{args.seed}_task{r.index}.{args.video_format}",
                                 every=args.video_every) for r in recorded]
    paths.append(write_grid(recorded, out / f"{args.agent}_seed{args.seed}_grid.png"))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; a user mistake (bad checkpoint, option or count) is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    try:
        summary, records = evaluate(args)
    except Unavailable as err:
        print(f"{args.agent}: not available: {err}", file=sys.stderr)
        return 2
    print(format_table([summary]))
    print(f"seed {args.seed}, tasks {args.first_index}..{args.first_index + args.episodes - 1}, layouts {summary['layouts']}; "
          f"seconds: {summary['seconds_measured_as']}; machine: {summary['machine']}")
    write_outputs(args, summary, records)
    if args.videos > 0:
        for path in write_videos(args, records):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
