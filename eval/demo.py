"""The main job (`make demo`): the shipped JEPA agent against the baselines, on the same tasks.

1. Runs every method of ``eval.compare`` that can run here (the shipped JEPA world model + MPPI,
   the shipped GCBC and SAC+HER baselines, the privileged scripted ones) on the same PROTOCOL tasks,
   prints the table and writes ``table.md``, ``results.json`` and ``success.png``.
2. Writes videos of JEPA episodes with the imagined plan drawn over them, and a grid picture.

Usage: ``python -m eval.demo [--episodes 50] [--seed 2026] [--out-dir outputs/demo]``
(``--episodes 200`` gives the full PROTOCOL evaluation; ~50 episodes keep the demo to minutes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tworooms_env.cli import ConfigCLI, run_cli

DEMO_METHODS = "jepa,gcbc,sb3-state,sb3-pixels,oracle,greedy,random"


@dataclass
class DemoConfig:
    """The options of ``tworooms-demo``."""

    episodes: int = 50  # tasks per method (200: the full protocol evaluation)
    seed: int = 2026  # evaluation seed (not used for tuning)
    methods: str = DEMO_METHODS  # comma-separated methods of eval.compare
    videos: int = 4  # JEPA episodes written as GIFs (+ a grid PNG)
    threads: int = 1  # torch CPU threads (small networks: one is as fast and never oversubscribes; 0: torch's default)
    out_dir: str = "outputs/demo"  # directory of the table, the chart and the videos

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.videos < 0 or self.threads < 0:
            raise ValueError("--episodes must be >= 1, --videos and --threads >= 0")


CLI = ConfigCLI(DemoConfig, prog="tworooms-demo", description=__doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``tworooms-demo``); a user mistake is one ``error:`` line, exit 2."""
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    from eval import compare, planning

    out = Path(args.out_dir)
    code = compare.main(["--episodes", str(args.episodes), "--seed", str(args.seed),
                         "--methods", args.methods, "--threads", str(args.threads), "--out-dir", str(out)])
    if code:
        return code
    if args.videos > 0 and "jepa" in args.methods.split(","):
        code = planning.main(["--agent", "jepa", "--episodes", str(args.videos), "--seed", str(args.seed),
                              "--videos", str(args.videos), "--video-dir", str(out / "videos"),
                              "--json", str(out / "jepa_videos.json"), "--threads", str(args.threads), "--no-progress"])
        if code:
            return code
    print(f"\ndemo outputs in {out}/: table.md, results.json, success.png, videos/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
