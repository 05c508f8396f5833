"""Collect offline trajectories of one data tier to a file: ``python -m tworooms_env.collect``.

Example::

    python -m tworooms_env.collect --tier random --num-trajectories 100000 --seed 0 \\
        --dataset data/tworooms_random.npz --plot outputs/trajectories.png

``--tier`` is one of ``random`` (the paper's random walks and door crossings), ``contact`` (plus
goal-free families placed with the layout) and ``navigate`` (plus a noisy expert's door routes);
see :mod:`tworooms_env.tiers`. The other generator options override the tier's defaults; the tier
and every generator parameter are stored in the file's metadata.

``--split NAME`` (``random`` tier) draws layouts from the train layouts of a named layout split
(:mod:`tworooms_env.splits`, e.g. ``k10``) only and records the split (name, seed, train layouts)
under the metadata key ``layout_split``. ``--no-door-crossings`` writes the random tier's
low-quality variant: no forced crossings and no walk that changes room (``door_crossings: false``
in the generator parameters, ``variant: no-door-crossings``)::

    python -m tworooms_env.collect --tier random --split k10 --num-trajectories 10000 --dataset data/random_k10.npz
    python -m tworooms_env.collect --tier random --no-door-crossings --out data/random_nodoor.npz

Trajectories are generated in chunks of ``--chunk-size``; chunk i draws from the generator seeded
``(seed, i)``, so the same arguments give the same bytes. The file is written atomically (see
:mod:`tworooms_env.dataset`); the shares of trajectories and of training windows that cross the
door or touch the centre wall are printed and stored in the metadata. Ctrl-C or SIGTERM during
generation saves the finished chunks to ``OUT.resume.npz`` (exit 130 / 143); the same command with
``--resume`` continues after them and gives the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tworooms_env.cli import ConfigCLI
from tworooms_env.dataset import WindowIndex, load_trajectories, save_trajectories
from tworooms_env.random_walk import Trajectories, WalkConfig, generate_trajectories, trajectory_stats
from tworooms_env.tiers import GENERATOR_NAME, TIERS, TierConfig, generate_tier, tier_config


def collect(
    num_trajectories: int,
    config: TierConfig | WalkConfig,
    seed: int = 0,
    chunk_size: int = 10_000,
    progress: bool = True,
    done: Trajectories | None = None,
    layouts: np.ndarray | None = None,
) -> Trajectories:
    """Generate ``num_trajectories`` trajectories of a tier (or of a plain ``WalkConfig``), chunk by
    chunk, deterministically from ``seed``.

    ``done``: the first whole chunks of an interrupted run (generation continues after them).
    ``layouts`` [K, 2]: draw layouts from these only (a split's train layouts). On
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
                rng = np.random.default_rng([seed, i])
                parts.append(generate_tier(rng, n, config, layouts) if isinstance(config, TierConfig)
                             else generate_trajectories(rng, n, config, layouts))
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


# generator options of the CLI that override the tier's defaults (None: the tier's)
_TIER_FLAGS = ("length", "step_mean", "step_std", "step_max", "cross_wall_rate", "wall_bump_rate", "segment_rate",
               "parallel_rate", "door_aim_rate", "push_rate", "detour_rate")


@dataclass
class CollectConfig:
    """The options of ``tworooms-collect``."""

    tier: str = field(default="random", metadata={"choices": TIERS})  # data tier: random (walks + door crossings), contact (+ layout-aware families), navigate (+ noisy expert door routes)
    num_trajectories: int = 100_000  # trajectories to generate
    seed: int = 0  # chunk i of the file draws from the generator seeded (seed, i)
    dataset: str = "data/tworooms_random.npz"  # the .npz file to write (the trainers read it as dataset=PATH)
    fixed_wall: bool = False  # one layout only (wall 32, door 18)
    split: str | None = None  # random tier: only the train layouts of this layout split (k1, k5, k10, k20, k40, all, kN-sS)
    door_crossings: bool = True  # random tier: --no-door-crossings writes no trajectory that crosses the door (no forced crossings, crossing walks rejected)
    length: int | None = None  # override the tier's trajectory length in states (none: the tier's)
    step_mean: float | None = None  # override the tier's mean random-walk step (px)
    step_std: float | None = None  # override the tier's step standard deviation (px)
    step_max: float | None = None  # override the tier's largest step (px)
    cross_wall_rate: float | None = None  # override the tier's share of forced door crossings
    wall_bump_rate: float | None = None  # override the tier's share of walks into the centre wall
    segment_rate: float | None = None  # override the tier's share of piecewise-constant (planner-like) walks
    parallel_rate: float | None = None  # override: of the planner-like walks, the share along a wall face
    door_aim_rate: float | None = None  # override: of the planner-like walks, the share aimed through the door
    push_rate: float | None = None  # override: of the planner-like walks, the share pushing into the wall
    detour_rate: float | None = None  # override: of the planner-like walks, the share of noisy door detours
    window: int = 17  # training window length for the reported shares of door crossings and wall contacts
    chunk_size: int = 10_000  # trajectories per generator chunk
    plot: str = ""  # also draw sample trajectories to this PNG
    minari_id: str = ""  # also export as this Minari dataset id (needs minari[hdf5])
    progress: bool = True  # show a progress bar
    resume: bool = False  # continue an interrupted run from the dataset's .resume.npz (same options, same bytes)

    def __post_init__(self) -> None:
        for name in ("num_trajectories", "chunk_size", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.dataset.endswith(".npz"):
            raise ValueError(f"--dataset must end in .npz, got {self.dataset}")


CLI = ConfigCLI(CollectConfig, prog="tworooms-collect", description=__doc__.split("\n")[0], aliases={"out": "dataset"})


def write_dataset(
    path: str | Path,
    config: TierConfig,
    num_trajectories: int,
    seed: int = 0,
    chunk_size: int = 10_000,
    window: int = 17,
    progress: bool = True,
    done: Trajectories | None = None,
    split: str | None = None,
) -> tuple[Trajectories, Path, dict]:
    """Collect a tier's dataset and write it atomically with its metadata: (trajectories, path, stats).
    ``done``: the whole chunks of an interrupted run (see ``collect``); ``split``: a named layout
    split whose train layouts alone are drawn (recorded as metadata ``layout_split``)."""
    layout_split = None
    if split is not None:
        from tworooms_env.splits import layout_split as named_split

        if config.fixed_wall:
            raise ValueError("--split and --fixed-wall exclude each other (a split names its own layouts)")
        if config.segment_rate:
            raise ValueError(f"--split is implemented for the 'random' tier only (the families of tier "
                             f"{config.tier!r} draw their own layouts)")
        layout_split = named_split(split)
    layouts = None if layout_split is None else layout_split.train
    traj = collect(num_trajectories, config, seed, chunk_size, progress=progress, done=done, layouts=layouts)
    stats = {"trajectories": trajectory_stats(traj)}
    if window <= config.length:
        stats["windows"] = window_shares(traj, window)
    metadata = {
        "tier": config.tier,
        "generator": GENERATOR_NAME,
        "generator_params": config.to_dict(),
        "seed": seed,
        "chunk_size": chunk_size,
        "stats": stats,
    }
    if layout_split is not None:
        metadata["layout_split"] = layout_split.to_dict()
    if not config.door_crossings:
        metadata["variant"] = "no-door-crossings"
    return traj, save_trajectories(path, traj, metadata), stats


def main(argv: list[str] | None = None) -> int:
    """The command line: user mistakes as one ``error:`` line (exit 2); SIGINT / SIGTERM remove any
    temporary file and exit 130 / 143 (same arguments give the same bytes, so a rerun completes it)."""
    from tworooms_env.signals import Interrupted, raise_on_signals

    try:
        args = CLI.parse(argv)
        with raise_on_signals():
            return _run(args)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except (ValueError, FileNotFoundError, ImportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"{e}: stopped; nothing was written to {args.dataset} (no temporary file is left)", file=sys.stderr)
        return e.exit_code


def _run(args: CollectConfig) -> int:
    from tworooms_env.signals import Interrupted

    if args.minari_id:  # before collecting: a bad id or a missing minari fails now, not after
        from tworooms_env.minari_export import check_minari_id

        check_minari_id(args.minari_id)
    out = Path(args.dataset)
    overrides = {name: getattr(args, name) for name in _TIER_FLAGS if getattr(args, name) is not None}
    if args.fixed_wall:
        overrides["fixed_wall"] = True
    if not args.door_crossings:
        if overrides.get("cross_wall_rate"):
            raise ValueError("--no-door-crossings excludes --cross-wall-rate > 0")
        overrides.update(door_crossings=False, cross_wall_rate=0.0)
    config = tier_config(args.tier, **overrides)  # a ValueError is printed as one error line
    resume_file = out.with_name(out.stem + ".resume.npz")
    key = json.loads(json.dumps({"num_trajectories": args.num_trajectories, "seed": args.seed,
                                 "chunk_size": args.chunk_size, "generator_params": config.to_dict(),
                                 "split": args.split}))
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
        traj, path, stats = write_dataset(out, config, args.num_trajectories, args.seed, args.chunk_size,
                                          args.window, progress=args.progress, done=done, split=args.split)
    except Interrupted as e:
        if getattr(e, "completed", None) is not None:  # whole chunks: a resumed run continues after them
            save_trajectories(resume_file, e.completed, {"resume_key": key})
            print(f"\n{len(e.completed)} of {args.num_trajectories} trajectories saved to {resume_file}; "
                  f"continue with the same arguments and --resume", file=sys.stderr)
        raise
    seconds = time.perf_counter() - t0
    resume_file.unlink(missing_ok=True)
    what = "".join([f", split {args.split!r}" if args.split else "", ", no door crossings" if not args.door_crossings else ""])
    print(f"wrote {len(traj)} trajectories of tier {config.tier!r}{what} x {config.length} states to {path} "
          f"({path.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s")
    print(json.dumps(stats, indent=2))
    if args.minari_id:
        from tworooms_env.minari_export import export_minari

        export_minari(traj, args.minari_id)
        print(f"exported Minari dataset {args.minari_id}")
    if args.plot:
        from tworooms_env.plotting import plot_trajectories

        plot_trajectories(traj, args.plot, seed=args.seed)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
