"""Evaluate an agent on docs/protocol.md tasks of TwoRooms-v0: table, JSON, CSV, videos.

    python -m eval.planning --agent jepa --checkpoint PATH --planner mppi --episodes 200 --seed 7 \
        --json outputs/eval/jepa.json --csv outputs/eval/jepa.csv --videos 4

``--agent`` takes every name of ``eval.agents.AGENTS`` (jepa, jepa-true-dynamics, random,
greedy, oracle, gcbc, ...). Seconds per episode are amortised over a batch of ``--batch-size``
episodes run in lockstep; ``--batch-size 1`` measures single-episode wall time. ``--layouts heldout:SPLIT`` (or
``train:SPLIT``) draws the tasks from a layout split's held-out (train) layouts only: task i of seed
s is still drawn by its own generator (s, i), which picks the layout from that sorted list.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

import torch

from eval.agents import AGENTS, Unavailable, make_agent
from eval.metrics import format_table, machine_description, summarize
from eval.runner import EpisodeRecord, run_episodes
from jepa_agent.planner_config import PlannerConfig
from jepa_agent.validation import check_device, run_cli


def parse_value(text: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, 'none' -> None, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``--planner-option`` pairs -> {field: value}; a key that is no PlannerConfig field is an error."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--planner-option expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    known = {f.name for f in fields(PlannerConfig)}
    unknown = sorted(set(out) - known)
    if unknown:
        raise ValueError(f"unknown planner option(s) {unknown}; known: {sorted(known)}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", default="jepa", choices=sorted(AGENTS))
    p.add_argument("--checkpoint", default=None, help="world model checkpoint (default: the shipped one)")
    p.add_argument("--planner", default="mppi", help="mppi | cem | grad | mppi-last (previous default) | mppi-sum | cem-stop ...")
    p.add_argument("--planner-option", action="append", default=[], metavar="KEY=VALUE",
                   help="override a PlannerConfig field, e.g. num_samples=128 (repeatable)")
    p.add_argument("--replan-every", type=int, default=None, help="actions executed per plan (default: segment length)")
    p.add_argument("--restart-when-stuck", action=argparse.BooleanOptionalAction, default=None,
                   help="JEPA agents: replan cold when pushing leaves the frame unchanged (default: the agent's)")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--first-index", type=int, default=0, help="first task index (any subset can be re-run)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (PROTOCOL: tasks of (seed, i))")
    p.add_argument("--layouts", default=None, metavar="SET",
                   help="draw tasks from these layouts only: heldout:SPLIT, train:SPLIT (e.g. heldout:k10) or all")
    p.add_argument("--batch-size", type=int, default=50, help="episodes run in parallel")
    p.add_argument("--terminate-on-success", action="store_true",
                   help="end each episode at its first success (success@end is then success@any)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", default=None, help="write the summary and every episode here")
    p.add_argument("--csv", default=None, help="write one row per episode here")
    p.add_argument("--videos", type=int, default=0, help="write this many episode videos (+ a grid PNG)")
    p.add_argument("--video-dir", default="outputs/videos")
    p.add_argument("--video-format", default="gif", choices=["gif", "mp4"])
    p.add_argument("--video-every", type=int, default=1, help="draw every n-th step (smaller files)")
    p.add_argument("--no-progress", action="store_true")
    return p


def agent_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``make_agent`` takes, from the command line."""
    return dict(checkpoint=args.checkpoint, planner=args.planner, seed=args.seed, device=args.device,
                replan_every=args.replan_every, planner_options=parse_options(args.planner_option),
                restart_when_stuck=args.restart_when_stuck)


def evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], list[EpisodeRecord]]:
    """Run one evaluation; returns (summary, episode records). Raises Unavailable."""
    if args.threads:
        torch.set_num_threads(args.threads)
    policy = make_agent(args.agent, **agent_options(args))
    indices = range(args.first_index, args.first_index + args.episodes)
    records = run_episodes(policy, args.seed, indices, batch_size=args.batch_size, progress=not args.no_progress,
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
    args = build_parser().parse_args(argv)
    if args.episodes < 1 or args.batch_size < 1:
        raise ValueError("--episodes and --batch-size must be >= 1")
    if args.threads is not None and args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    check_device(args.device)
    from tworooms_env.splits import resolve_layouts

    resolve_layouts(args.layouts)  # a bad set is an error line before any model loads
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
