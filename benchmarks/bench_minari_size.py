"""Disk size of a Minari export against the ``.npz`` of the same trajectories (needs minari[hdf5]).

    python -m benchmarks.bench_minari_size [--trajectories 200] [--length 91]

Writes both into a temporary folder (``MINARI_DATASETS_PATH`` points there), checks that the
export recovers ``TwoRooms-v0`` (``recover_environment``), and prints the bytes of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trajectories", type=int, default=200)
    p.add_argument("--length", type=int, default=91, help="states per trajectory")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(tmp) / "minari")
        import minari

        from tworooms_env.dataset import save_trajectories
        from tworooms_env.minari_export import export_minari
        from tworooms_env.random_walk import WalkConfig, generate_trajectories

        traj = generate_trajectories(np.random.default_rng(0), args.trajectories, WalkConfig(length=args.length))
        npz = save_trajectories(Path(tmp) / "trajectories.npz", traj).stat().st_size
        export_minari(traj, "tworooms/size-v0")
        env = minari.load_dataset("tworooms/size-v0").recover_environment()
        hdf5 = folder_bytes(Path(tmp) / "minari")
    print(f"{args.trajectories} trajectories x {args.length} states: npz {npz:,} B, Minari (hdf5) {hdf5:,} B "
          f"= {hdf5 / npz:.1f}x the npz ({(hdf5 - npz) / args.trajectories / 1e3:.1f} kB more per episode); "
          f"recover_environment() -> {env.spec.id}")
    return 0


if __name__ == "__main__":
    from jepa_agent.validation import run_cli

    sys.exit(run_cli(main))
