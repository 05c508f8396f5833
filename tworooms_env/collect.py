"""Collect offline random-walk trajectories to a file: ``python -m tworooms_env.collect``.

Example::

    python -m tworooms_env.collect --num-trajectories 100000 --seed 0 --out data/tworooms.npz \\
        --plot outputs/trajectories.png

Trajectories are generated in chunks of ``--chunk-size``; chunk i draws from the generator seeded
``(seed, i)``, so the same arguments give the same bytes. The file is written atomically (see
:mod:`tworooms_env.dataset`); the shares of trajectories and of training windows that cross the
door or touch the centre wall are printed and stored in the metadata. Ctrl-C or SIGTERM during
generation saves the finished chunks to ``OUT.resume.npz`` (exit 130 / 143); the same command with
``--resume`` continues after them and gives the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tworooms_env.dataset import WindowIndex, load_trajectories, save_trajectories
from tworooms_env.random_walk import Trajectories, WalkConfig, generate_trajectories, trajectory_stats

GENERATOR_NAME = "tworooms_env.random_walk v1"


def collect(
    num_trajectories: int,
    config: WalkConfig,
    seed: int = 0,
    chunk_size: int = 10_000,
    progress: bool = True,
    done: Trajectories | None = None,
) -> Trajectories:
    """Generate ``num_trajectories`` trajectories, chunk by chunk, deterministically from ``seed``.

    ``done``: the first whole chunks of an interrupted run (generation continues after them). On
    KeyboardInterrupt (SIGINT / SIGTERM under ``raise_on_signals``) the chunks finished so far are
    attached to the exception as ``completed``."""
    if num_trajectories < 1:
        raise ValueError(f"num_trajectories must be >= 1, got {num_trajectories}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = [done] if done is not None and len(done) else []
    first = len(done) // chunk_size if parts else 0
    with tqdm(total=num_trajectories, initial=first * chunk_size, unit="traj", disable=not progress, desc="collect") as bar:
        try:
            for i, lo in enumerate(range(0, num_trajectories, chunk_size)):
                if i < first:
                    continue
                n = min(chunk_size, num_trajectories - lo)
                parts.append(generate_trajectories(np.random.default_rng([seed, i]), n, config))
                bar.update(n)
        except KeyboardInterrupt as e:
            e.completed = Trajectories.concatenate(parts) if parts else None
            raise
    return Trajectories.concatenate(parts)


def window_shares(traj: Trajectories, window: int = 17, num_windows: int = 100_000, seed: int = 0) -> dict:
    """Measured shares of uniformly drawn training windows with a door crossing / wall contact."""
    index = WindowIndex(traj, window)
    stats = index.stats(index.sample(np.random.default_rng(seed), num_windows))
    return {"window": window, **stats}


def build_parser() -> argparse.ArgumentParser:
    d = WalkConfig()
    p = argparse.ArgumentParser(prog="tworooms-collect", description=__doc__.split("\n")[0])
    p.add_argument("--num-trajectories", type=int, default=100_000)
    p.add_argument("--length", type=int, default=d.length, help="states per trajectory (actions: length - 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fixed-wall", action="store_true", help="one layout only (wall 32, door 18)")
    p.add_argument("--out", type=Path, default=Path("data/tworooms_trajectories.npz"))
    p.add_argument("--cross-wall-rate", type=float, default=d.cross_wall_rate)
    p.add_argument("--wall-bump-rate", type=float, default=d.wall_bump_rate)
    p.add_argument("--window", type=int, default=17, help="training window length for the reported shares")
    p.add_argument("--chunk-size", type=int, default=10_000)
    p.add_argument("--plot", type=Path, default=None, help="also draw sample trajectories to this PNG")
    p.add_argument("--minari-id", default=None, help="also export as this Minari dataset id (needs minari[hdf5])")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT's .resume.npz (same arguments, same bytes)")
    return p


def main(argv: list[str] | None = None) -> int:
    """The command line: user mistakes as one ``error:`` line (exit 2); SIGINT / SIGTERM remove any
    temporary file and exit 130 / 143 (same arguments give the same bytes, so a rerun completes it)."""
    from training.interrupt import Interrupted, raise_on_signals

    args = build_parser().parse_args(argv)
    try:
        with raise_on_signals():
            return _run(args)
    except (ValueError, FileNotFoundError, ImportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"{e}: stopped; nothing was written to {args.out} (no temporary file is left)", file=sys.stderr)
        return e.exit_code


def _run(args: argparse.Namespace) -> int:
    from training.interrupt import Interrupted

    if args.minari_id is not None:  # before collecting: a bad id or a missing minari fails now, not after
        from tworooms_env.minari_export import check_minari_id

        check_minari_id(args.minari_id)
    if args.out.suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {args.out}")
    try:
        config = WalkConfig(
            length=args.length,
            cross_wall_rate=args.cross_wall_rate,
            wall_bump_rate=args.wall_bump_rate,
            fixed_wall=args.fixed_wall,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    resume_file = args.out.with_name(args.out.stem + ".resume.npz")
    key = json.loads(json.dumps({"num_trajectories": args.num_trajectories, "seed": args.seed,
                                 "chunk_size": args.chunk_size, "generator_params": config.to_dict()}))
    done = None
    if args.resume:
        if not resume_file.is_file():
            raise FileNotFoundError(f"--resume: nothing to resume from (no {resume_file})")
        done, meta = load_trajectories(resume_file)
        if meta.get("resume_key") != key:
            raise ValueError(f"--resume: {resume_file} was written with other arguments ({meta.get('resume_key')}); "
                             f"rerun with those, or without --resume")
    t0 = time.perf_counter()
    try:
        traj = collect(args.num_trajectories, config, args.seed, args.chunk_size, progress=not args.no_progress,
                       done=done)
    except Interrupted as e:
        if getattr(e, "completed", None) is not None:  # whole chunks: a resumed run continues after them
            save_trajectories(resume_file, e.completed, {"resume_key": key})
            print(f"\n{len(e.completed)} of {args.num_trajectories} trajectories saved to {resume_file}; "
                  f"continue with the same arguments and --resume", file=sys.stderr)
        raise
    seconds = time.perf_counter() - t0
    stats = {"trajectories": trajectory_stats(traj)}
    if args.window <= args.length:
        stats["windows"] = window_shares(traj, args.window)
    metadata = {
        "generator": GENERATOR_NAME,
        "generator_params": config.to_dict(),
        "seed": args.seed,
        "chunk_size": args.chunk_size,
        "stats": stats,
    }
    path = save_trajectories(args.out, traj, metadata)
    resume_file.unlink(missing_ok=True)
    print(f"wrote {len(traj)} trajectories x {config.length} states to {path} "
          f"({path.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s")
    print(json.dumps(stats, indent=2))
    if args.minari_id is not None:
        from tworooms_env.minari_export import export_minari

        export_minari(traj, args.minari_id)
        print(f"exported Minari dataset {args.minari_id}")
    if args.plot is not None:
        from tworooms_env.plotting import plot_trajectories

        plot_trajectories(traj, args.plot, seed=args.seed)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
