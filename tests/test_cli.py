"""The command-line mechanism (tworooms_env.cli) and every console script of pyproject.toml: ``--help``
exits 0, a tiny run exits 0, shared keys are spelled and typed alike, unknown keys and old spellings."""

from __future__ import annotations

import dataclasses
import importlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tworooms_env.cli import AMP_CHOICES, DEPRECATED_KEYS, SHARED_KEYS, ConfigCLI, ConfigError, kebab, parse_pairs

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
NEEDS = {"tworooms-train-sac": "stable_baselines3"}  # optional dependencies


def entry(name: str):
    """(module, main function) of a console script."""
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    module, func = SCRIPTS[name].split(":")
    mod = importlib.import_module(module)
    return mod, getattr(mod, func)


# ------------------------------------------------------------------------------ the mechanism
@dataclass
class Toy:
    """A config of every supported kind."""

    preset: str = "base"  # the preset
    lr: float = 1e-3  # learning rate
    batch_size: int = 8  # items per step
    amp: Literal["auto", "bf16", "off"] = "auto"  # mixed precision
    compile: bool = False  # compile the model
    threads: int = 0  # torch CPU threads
    out_dir: str = "outputs/toy"  # outputs
    max_minutes: float = 0.0  # budget
    resume: str = field(default="", metadata={"const": "auto"})  # continue
    limit: int | None = None  # optional cap
    pairs: list[str] = field(default_factory=list)  # KEY=VALUE pairs
    tier: str = field(default="a", metadata={"choices": ("a", "b"), "help": "a closed set"})

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class ToyRun:
    progress: bool = True  # show a progress bar


TOY = ConfigCLI(Toy, prog="toy", presets={"base": {}, "big": {"batch_size": 64, "lr": 1e-2}}, default_preset="base",
                extra=ToyRun)


def test_spellings_presets_and_kinds():
    cfg, run = TOY.parse_all(["--preset", "big", "--lr", "3e-4", "batch_size=16", "--out_dir", "x", "--compile",
                              "--amp=bf16", "--limit", "none", "--pairs", "a=1", "b=2", "--no-progress"])
    assert (cfg.preset, cfg.lr, cfg.batch_size, cfg.out_dir, cfg.compile, cfg.amp, cfg.limit) == (
        "big", 3e-4, 16, "x", True, "bf16", None)
    assert cfg.pairs == ["a=1", "b=2"] and run.progress is False
    assert TOY.parse(["--preset", "big"]).batch_size == 64 and TOY.parse([]).batch_size == 8  # preset, then flags
    assert TOY.parse(["compile=false", "--max-minutes=2.5", "--limit", "3"]).compile is False
    assert TOY.parse(["--compile", "true", "tier=b"]).compile is True
    assert TOY.parse(["--resume"]).resume == "auto" and TOY.parse(["--resume", "p.pt"]).resume == "p.pt"
    assert TOY.parse([], lr=0.5).lr == 0.5  # keyword overrides


@pytest.mark.parametrize("argv, match", [
    (["--learning-rate", "1"], r"unknown config key 'learning-rate'.*known keys: --preset, --amp, --batch-size"),
    (["lamda=3"], "unknown config key 'lamda'"),
    (["--batch_sise", "3"], r"did you mean --batch-size\?"),
    (["batch_size=big"], "config key 'batch_size' expects an int, got 'big'"),
    (["--amp", "fp16"], "config key 'amp' expects one of auto, bf16, off, got 'fp16'"),
    (["tier=c"], "expects one of a, b"),
    (["compile=maybe"], "'compile' expects a bool"),
    (["--lr", "-1"], "lr must be > 0"),  # the config's own check
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--lr"], "expected one argument"),
])
def test_errors_name_the_problem(argv, match):
    with pytest.raises(ConfigError if "lr must" not in match else ValueError, match=match):
        TOY.parse(argv)


def test_deprecated_spellings_warn_and_work(capsys):
    with pytest.warns(DeprecationWarning, match="'num_threads' is deprecated.*use --threads"):
        assert TOY.parse(["num_threads=3"]).threads == 3
    with pytest.warns(DeprecationWarning, match="use --out-dir"):
        assert TOY.parse(["--out", "y"]).out_dir == "y"
    with pytest.warns(DeprecationWarning, match="use --max-minutes"):
        assert TOY.parse(["--minutes", "4"]).max_minutes == 4.0
    with pytest.warns(DeprecationWarning, match="use --amp auto"):
        assert TOY.parse(["amp=true"]).amp == "auto"
    with pytest.warns(DeprecationWarning, match="use --amp off"):
        assert TOY.parse(["--amp", "false"]).amp == "off"
    with pytest.warns(DeprecationWarning, match="resume=auto is deprecated"):
        assert TOY.parse(["resume=auto"]).resume == "auto"
    assert capsys.readouterr().err.count("warning: toy: ") == 6  # one printed line each


def test_help_lists_every_key_with_the_presets_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        TOY.parse(["--preset", "big", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "defaults of preset big" in out and "items per step (default: 64)" in out
    assert "--compile, --no-compile" in out and "{auto,bf16,off}" in out and "a closed set" in out


def test_parse_pairs_types_values_by_the_dataclass():
    from jepa_agent.planners import PlannerConfig

    assert parse_pairs(PlannerConfig, ["num_samples=32", "warm_start=false", "warm_std=none", "cost=sum"], "--x") == {
        "num_samples": 32, "warm_start": False, "warm_std": None, "cost": "sum"}
    with pytest.raises(ConfigError, match="unknown key 'samples'"):
        parse_pairs(PlannerConfig, ["samples=3"], "--planner-option")
    with pytest.raises(ConfigError, match="cost expects one of"):
        parse_pairs(PlannerConfig, ["cost=median"], "--planner-option")


# ------------------------------------------------------------------------------ every entry point
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_help_exits_0(name, capsys):
    _, main = entry(name)
    assert main(["--help"]) == 0
    assert f"usage: {name} " in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_rejects_an_unknown_key(name, capsys):
    _, main = entry(name)
    assert main(["--no-such-key", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'no-such-key'" in err and "known keys: " in err


def every_cli() -> dict[str, ConfigCLI]:
    out = {}
    for name in SCRIPTS:
        if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
            continue
        mod, _ = entry(name)
        assert isinstance(mod.CLI, ConfigCLI), name
        out[name] = mod.CLI
    return out


def test_shared_keys_are_spelled_and_typed_alike_in_every_entry_point():
    kinds = {"threads": int, "seed": int, "max_minutes": float, "out_dir": str, "device": str}
    seen: dict[str, list[str]] = {k: [] for k in SHARED_KEYS}
    for name, cli in every_cli().items():
        flags = cli.flags()
        for old in DEPRECATED_KEYS:  # old spellings are aliases only, never a key of their own
            assert f"--{kebab(old)}" not in flags, (name, old)
        for key in SHARED_KEYS:
            if key not in cli.options:
                continue
            seen[key].append(name)
            opt = cli.options[key]
            assert f"--{kebab(key)}" in flags
            if key in kinds:
                assert opt.kind is kinds[key], (name, key, opt.kind)
            if key == "amp":
                assert opt.choices == AMP_CHOICES, name
            if key == "resume":  # --resume alone: continue from the checkpoint in --out-dir
                assert opt.kind is bool or (opt.has_const and opt.const == "auto"), name
        for key, opt in cli.options.items():
            assert opt.help, f"{name}: --{kebab(key)} has no help text"
    assert len(seen["threads"]) >= len(SCRIPTS) - 2  # every command that runs torch has --threads
    assert {"tworooms-train", "tworooms-image-jepa", "tworooms-video-jepa"} <= set(seen["amp"]) & set(seen["resume"])
    assert {"tworooms-train", "tworooms-compare", "tworooms-demo", "tworooms-ablations",
            "tworooms-train-baseline"} <= set(seen["out_dir"])


def test_old_spellings_of_entry_points_warn_and_work(tmp_path, capsys):
    collect = entry("tworooms-collect")[1]
    with pytest.warns(DeprecationWarning, match="use --dataset"):
        assert collect(["--num-trajectories", "2", "--length", "6", "--window", "3", "--no-progress",
                        "--out", str(tmp_path / "d.npz")]) == 0
    assert (tmp_path / "d.npz").exists() and "'out' is deprecated" in capsys.readouterr().err
    from training.wm_config import make_config

    with pytest.warns(DeprecationWarning, match="use --threads"):
        assert make_config(["--preset", "tiny", "num_threads=1"]).threads == 1


# ------------------------------------------------------------------------------ tiny runs
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "tiny.npz"
    assert entry("tworooms-collect")[1](["--num-trajectories", "40", "--length", "31", "--chunk-size", "20",
                                          "--window", "9", "--no-progress", "--dataset", str(path)]) == 0
    return path


def tiny_runs(tmp: Path, dataset: Path) -> dict[str, list[str]]:
    from jepa_agent.world_model import PROFILE_CHECKPOINT

    cheap = ["--planner-option", "num_samples=16", "num_elites=4", "iterations_first=1", "iterations_later=1",
             "horizon=20"]
    return {
        "tworooms-collect": ["--num-trajectories", "4", "--length", "12", "--window", "5", "--no-progress",
                             "--dataset", str(tmp / "c.npz")],
        "tworooms-train": ["--preset", "tiny", "--out-dir", str(tmp / "wm"), "--epochs", "1", "--steps-per-epoch", "2",
                           "--gate-samples", "0"],
        "tworooms-eval": ["--agent", "greedy", "--episodes", "2", "--batch-size", "2", "--no-progress",
                          "--json", str(tmp / "e.json")],
        "tworooms-compare": ["--methods", "greedy,random", "--episodes", "1", "--no-progress", "--out-dir", str(tmp / "cmp")],
        "tworooms-ablations": ["--checkpoint", "true-dynamics", "--rows", "planners", "--episodes", "1", "--no-progress",
                               "--out-dir", str(tmp / "abl"), *cheap],
        "tworooms-diagnose": ["--checkpoint", str(PROFILE_CHECKPOINT), "--tasks", "3", "--json", str(tmp / "d.json")],
        "tworooms-demo": ["--methods", "greedy", "--episodes", "1", "--videos", "0", "--out-dir", str(tmp / "demo")],
        "tworooms-train-baseline": ["--method", "gcbc", "--dataset", str(dataset), "--split", "all", "--steps", "2",
                                    "--batch-size", "8", "--set", "hidden=[16]", "--curve-tasks", "0", "--no-progress",
                                    "--out-dir", str(tmp / "gcbc")],
        "tworooms-train-gcbc-cnn": ["--train", "--dataset", str(dataset), "--steps", "2", "--batch-size", "4",
                                    "--device", "cpu", "--checkpoint", str(tmp / "g.pt")],
        "tworooms-train-sac": ["--train", "--timesteps", "40", "--device", "cpu", "--checkpoint", str(tmp / "s.zip")],
        "tworooms-image-jepa": ["--preset", "tiny", "--epochs", "1", "--synthetic-size", "64", "--batch-size", "32",
                                "--no-floors", "--out-dir", str(tmp / "img")],
        "tworooms-video-jepa": ["--preset", "tiny", "--iterations", "2", "--val-sequences", "4", "--eval-sequences-quick",
                                "4", "--no-progress", "--device", "cpu", "--out-dir", str(tmp / "vid")],
        "tworooms-generalization": ["--study", "size", "--sizes", "40", "--methods", "greedy", "--no-train",
                                    "--episodes", "1", "--batch-size", "1", "--data-dir", str(tmp / "gen-data"),
                                    "--no-progress", "--out-dir", str(tmp / "gen")],
        "tworooms-ladder": ["--study", "time", "--epochs", "1", "--no-train", "--episodes", "1", "--batch-size", "1",
                            "--num-trajectories", "20", "--data-dir", str(tmp / "lad-data"), "--no-progress",
                            "--out-dir", str(tmp / "lad")],
        "tworooms-unroll": ["--checkpoint", str(PROFILE_CHECKPOINT), "--n", "2", "--horizon", "10",
                            "--out-dir", str(tmp / "unroll")],
    }


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_tiny_run_exits_0(name, tmp_path, tiny_dataset, monkeypatch):
    _, main = entry(name)
    if name == "tworooms-play":  # interactive: the window gets a close event at once
        import pygame

        monkeypatch.setattr(pygame.event, "get", lambda: [pygame.event.Event(pygame.QUIT)])
        assert main(["--seed", "0"]) == 0
        return
    runs = tiny_runs(tmp_path, tiny_dataset)
    assert name in runs, f"{name} has no tiny run in this test"
    assert main(runs[name]) == 0


def test_dataclass_configs_hold_no_unsupported_kinds():
    """Every entry point's config builds its parser (a field of another type would raise)."""
    for name, cli in every_cli().items():
        assert cli.parser() is not None and dataclasses.is_dataclass(cli.config), name
