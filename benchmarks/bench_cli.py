"""Start-up cost of the command-line mechanism: ``tworooms_env.cli`` against ``tyro`` and ``simple-parsing``.

    python benchmarks/bench_cli.py --lib ours            # import + build the flags + parse, one process
    farm-bench -n 10 -- python benchmarks/bench_cli.py --lib tyro --vs 'python benchmarks/bench_cli.py --lib ours'

A synthetic dataclass of the world-model trainer's size (70 fields: int, float, str, bool and
Literal) is turned into flags and one command line is parsed. ``ours`` loads ``tworooms_env/cli.py``
by its file path, so that the package's own imports (gymnasium) are not counted; ``none`` is the
interpreter alone. The script prints the in-process seconds of import + parse; run it under
``farm-bench`` for the whole process. ``tyro`` and ``simple-parsing`` are not dependencies of the
project: install them into a scratch venv to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import time
from pathlib import Path
from typing import Literal

ARGV = ["--lr", "3e-4", "--batch-size", "16", "--no-compile", "--amp", "bf16", "--out-dir", "/tmp/x"]


def toy_config() -> type:
    """70 fields like TrainConfig's: 25 int, 25 float, 8 str, 8 bool, 4 Literal, each with a help string."""
    fields = [("lr", float, 1e-3), ("batch_size", int, 256), ("compile", bool, False), ("out_dir", str, "out"),
              ("amp", Literal["auto", "bf16", "off"], "auto")]
    fields += [(f"i{k}", int, k) for k in range(24)] + [(f"f{k}", float, 0.5) for k in range(24)]
    fields += [(f"s{k}", str, "x") for k in range(7)] + [(f"b{k}", bool, True) for k in range(7)]
    fields += [(f"c{k}", Literal["a", "b", "c"], "a") for k in range(3)]
    return dataclasses.make_dataclass("Toy", [(n, t, dataclasses.field(default=d, metadata={"help": f"help of {n}"}))
                                              for n, t, d in fields])


def parse(lib: str, cls: type):
    if lib == "ours":
        path = Path(__file__).resolve().parents[1] / "tworooms_env" / "cli.py"
        spec = importlib.util.spec_from_file_location("tworooms_cli", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["tworooms_cli"] = mod
        spec.loader.exec_module(mod)
        return mod.ConfigCLI(cls, prog="bench").parse(ARGV)
    if lib == "tyro":
        import tyro

        return tyro.cli(cls, args=ARGV)
    if lib == "simple-parsing":
        import simple_parsing

        argv = [a if a != "--no-compile" else "--compile=false" for a in ARGV]  # its bools take a value
        return simple_parsing.parse(cls, args=argv, add_option_string_dash_variants=simple_parsing.DashVariant.DASH)
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", choices=("ours", "tyro", "simple-parsing", "none"), default="ours")
    args = p.parse_args(argv)
    cls = toy_config()
    t0 = time.perf_counter()
    cfg = parse(args.lib, cls)
    seconds = time.perf_counter() - t0
    if cfg is not None:
        assert (cfg.lr, cfg.batch_size, cfg.compile, cfg.amp, cfg.out_dir) == (3e-4, 16, False, "bf16", "/tmp/x"), cfg
    print(f"{args.lib}: import + flags + parse of a 70-field config: {1000 * seconds:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
