"""The main job (`make demo`): the shipped JEPA agent against the baselines, on the same tasks.

1. Runs every method of ``eval.compare`` that can run here (the shipped JEPA world model + MPPI,
   the shipped GCBC and SAC+HER baselines, the privileged scripted ones) on the same PROTOCOL tasks,
   prints the table and writes ``table.md``, ``results.json`` and ``success.png``.
2. Writes videos of JEPA episodes with the imagined plan drawn over them, and a grid picture.

Usage: ``python -m eval.demo [--episodes 50] [--seed 2026] [--out outputs/demo]``
(``--episodes 200`` gives the full PROTOCOL evaluation; ~50 episodes keep the demo to minutes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

DEMO_METHODS = "jepa,gcbc,sb3-state,sb3-pixels,oracle,greedy,random"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=2026, help="evaluation seed (not used for tuning)")
    p.add_argument("--methods", default=DEMO_METHODS)
    p.add_argument("--videos", type=int, default=4, help="JEPA episodes written as GIFs (+ a grid PNG)")
    p.add_argument("--out", default="outputs/demo")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # small networks: one thread is as fast and never oversubscribes

    from eval import compare, planning

    out = Path(args.out)
    compare.main(["--episodes", str(args.episodes), "--seed", str(args.seed),
                  "--methods", args.methods, "--out", str(out)])
    if args.videos > 0 and "jepa" in args.methods.split(","):
        planning.main(["--agent", "jepa", "--episodes", str(args.videos), "--seed", str(args.seed),
                       "--videos", str(args.videos), "--video-dir", str(out / "videos"),
                       "--json", str(out / "jepa_videos.json"), "--no-progress"])
    print(f"\ndemo outputs in {out}/: table.md, results.json, success.png, videos/")
    return 0


if __name__ == "__main__":
    from jepa_agent.validation import run_cli

    sys.exit(run_cli(main))
