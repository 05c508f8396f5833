"""Offline-data costs: rendering throughput, loading a training batch, collecting trajectories.

    python benchmarks/bench_data.py                        # full: collects 100,000 x 91 states
    python benchmarks/bench_data.py --num-trajectories 10000   # quicker

Prints the figures and writes them to outputs/bench_data.json. Targets (issue 3): one 64 x 17
batch loaded and rendered in <= 10 ms on one core; 100,000 trajectories of 91 states collected
in <= 2 minutes; rendering >= 200,000 frames/s on collection-style batches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tworooms_env import core  # noqa: E402
from tworooms_env.collect import collect, window_shares  # noqa: E402
from tworooms_env.dataset import save_trajectories  # noqa: E402
from tworooms_env.random_walk import WalkConfig  # noqa: E402
from training.data import TrajectoryWindows  # noqa: E402


def _median_seconds(fn, repeats: int, clock=time.perf_counter) -> float:
    fn()  # warm-up (caches, page faults)
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return float(np.median(times))


def _cpu_seconds(fn, repeats: int) -> float:
    """Mean CPU time of the process per call: less sensitive to other jobs than wall time."""
    fn()
    t = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - t) / repeats


def bench_render(rng: np.random.Generator, repeats: int) -> dict:
    out = {}
    # collection-style: whole trajectories (91 frames share a layout), 64 of them
    traj_layout = rng.integers([core.WALL_X_MIN, core.DOOR_Y_MIN], [core.WALL_X_MAX + 1, core.DOOR_Y_MAX + 1], (64, 2))
    cases = {
        "trajectories_64x91": (np.repeat(traj_layout, 91, axis=0), 64 * 91),
        "windows_64x17": (np.repeat(traj_layout, 17, axis=0), 64 * 17),
        "random_layouts_4096": (
            rng.integers([core.WALL_X_MIN, core.DOOR_Y_MIN], [core.WALL_X_MAX + 1, core.DOOR_Y_MAX + 1], (4096, 2)),
            4096,
        ),
    }
    for name, (layouts, n) in cases.items():
        pos = rng.uniform(5, 59, (n, 2))
        buf = np.empty((n, 2, core.IMG_SIZE, core.IMG_SIZE), dtype=np.uint8)
        fn = lambda: core.render_frames(pos, layouts[:, 0], layouts[:, 1], out=buf)  # noqa: E731
        s, cpu = _median_seconds(fn, repeats), _cpu_seconds(fn, repeats)
        out[name] = {"frames": n, "ms_wall": 1e3 * s, "frames_per_s_wall": n / s,
                     "ms_cpu": 1e3 * cpu, "frames_per_s_cpu": n / cpu}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-trajectories", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--out", type=Path, default=Path("outputs/bench_data.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    results: dict = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_avg_1min": os.getloadavg()[0], "torch_threads": torch.get_num_threads()},
    }
    results["render"] = bench_render(rng, args.repeats)

    t, t_cpu = time.perf_counter(), time.process_time()
    traj = collect(args.num_trajectories, WalkConfig(), seed=0)
    collect_s, collect_cpu = time.perf_counter() - t, time.process_time() - t_cpu
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.npz"
        t = time.perf_counter()
        save_trajectories(path, traj, {"seed": 0})
        save_s = time.perf_counter() - t
        size_mb = path.stat().st_size / 1e6
        t = time.perf_counter()
        ds = TrajectoryWindows.from_file(path, window=17)
        open_s = time.perf_counter() - t
    results["collect"] = {
        "trajectories": args.num_trajectories, "states": 91, "seconds": collect_s, "cpu_seconds": collect_cpu,
        "trajectories_per_s": args.num_trajectories / collect_s, "save_seconds": save_s,
        "file_mb": size_mb, "open_and_index_seconds": open_s,
    }
    batch_rng = np.random.default_rng(1)
    forced = TrajectoryWindows(ds.traj, 17, crossing_window_share=0.3, contact_window_share=0.3)
    uniform_fn = lambda: ds.sample_batch(64, batch_rng)  # noqa: E731
    forced_fn = lambda: forced.sample_batch(64, batch_rng)  # noqa: E731
    results["batch_64x17"] = {
        "ms_wall_uniform_windows": 1e3 * _median_seconds(uniform_fn, args.repeats),
        "ms_cpu_uniform_windows": 1e3 * _cpu_seconds(uniform_fn, args.repeats),
        "ms_wall_forced_shares": 1e3 * _median_seconds(forced_fn, args.repeats),
        "ms_cpu_forced_shares": 1e3 * _cpu_seconds(forced_fn, args.repeats),
    }
    results["window_shares"] = {
        "uniform": window_shares(traj, 17),
        "forced_crossing_0.3_contact_0.3": forced.window_stats(100_000),
    }
    results["machine"]["load_avg_1min_end"] = os.getloadavg()[0]

    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
