"""SIGReg vs VICReg image JEPA in one run, against the raw-pixel and random-init floors.

    python -m benchmarks.bench_image                       # the cpu preset on Fashion-MNIST (~2 x 38 min, 2 bf16 cores)
    python -m benchmarks.bench_image epochs=2 train_limit=10000    # a few-minute smoke version
    python -m benchmarks.bench_image --regularisers ""             # the two floors only

Extra ``key=value`` arguments override the preset for both runs. Prints a markdown table and
writes ``<out>/bench_image.json``; each run keeps its own log and checkpoint under ``<out>/<reg>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from jepa_agent.image.augment import TwoViews
from jepa_agent.image.train import augment_config, floors, load_data, make_config, resolve_device, train


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--out", default="outputs/bench_image")
    parser.add_argument("--regularisers", default="sigreg,vicreg")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    out = Path(args.out)
    base = make_config(args.preset, args.overrides)
    if base.threads:
        torch.set_num_threads(base.threads)
    report = {"preset": args.preset, "overrides": args.overrides, "machine": platform.processor() or platform.machine(),
              "torch_threads": torch.get_num_threads(), "runs": {}}

    t0 = time.perf_counter()
    train_data, test_data = load_data(base)
    views = TwoViews(train_data.mean, train_data.std, augment_config(base))
    report["floors"] = floors(base, train_data, test_data, views, resolve_device(base.device))
    report["floors_seconds"] = time.perf_counter() - t0

    for reg in [r for r in args.regularisers.split(",") if r]:  # --regularisers "": the floors alone
        cfg = dataclasses.replace(base, regulariser=reg, floors=False, out_dir=str(out / reg))
        res = train(cfg)
        report["runs"][reg] = {"final": res["final"], "train_seconds": res["train_seconds"], "eval_seconds": res["eval_seconds"],
                               "images_per_s": sum(r["images_per_s"] for r in res["history"]) / len(res["history"]),
                               "online_probe_test_acc": res["history"][-1].get("online_probe_test_acc")}

    rows = [("raw pixels (floor)", report["floors"]["raw_pixels"]["linear_probe_test_acc"], None, None, None),
            ("random-init encoder (floor)", report["floors"]["random_init_encoder"]["linear_probe_test_acc"],
             report["floors"]["random_init_encoder"]["knn_test_acc"], None, None)]
    for reg, r in report["runs"].items():
        rows.append((reg, r["final"]["linear_probe_test_acc"], r["final"]["knn_test_acc"], r["train_seconds"] / 60, r["images_per_s"]))
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    lines = ["| features | linear probe test acc | k-NN test acc | train minutes | images/s |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {fmt(a and 100 * a, '.2f')} % | {fmt(k and 100 * k, '.2f')} | {fmt(m, '.1f')} | {fmt(s, '.0f')} |"
              for n, a, k, m, s in rows]
    report["table"] = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_image.json").write_text(json.dumps(report, indent=2))
    print(report["table"])
    return report


if __name__ == "__main__":
    main()
