"""eval.ladder: cells of one budget, tier rates that fit each file, a tiny study end to end."""

import json

import pytest

from eval import ladder
from training.data import prepare_dataset
from training.wm_config import make_config
from tworooms_env.collect import main as collect_main

TINY_WM = ["steps_per_epoch=2", "batch_size=8", "encoder_width=8", "encoder_hidden=16", "latent_dim=12",
           "layout_dim=4", "gate_samples=0"]
CHEAP_PLANNER = ["num_samples=16", "num_elites=4", "iterations_first=1", "iterations_later=1"]


def tiny_args(tmp_path, *extra):
    args = ["--num-trajectories", "40", "--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "out"),
            "--episodes", "2", "--batch-size", "2", "--seed", "11", "--no-progress", *extra]
    for kv in TINY_WM:
        args += ["--set", kv]
    for kv in CHEAP_PLANNER:
        args += ["--planner-option", kv]
    return args


def test_every_tiers_cell_sees_the_same_number_of_windows():
    cells = ladder.study_cells(ladder.CLI.parse(["--study", "tiers"]))
    assert [c.name for c in cells] == [f"{e}:{t}" for e in ("pixel", "profile") for t in ("random", "contact", "navigate")]
    for c in cells:
        cfg = make_config(["--preset", c.preset, *c.overrides])
        assert cfg.encoder == c.encoder and cfg.total_steps() * cfg.batch_size == 2_304_000
    with pytest.raises(ValueError, match="whole number"):
        ladder.study_cells(ladder.CLI.parse(["--study", "tiers", "--windows", "1000"]))
    with pytest.raises(ValueError, match="unknown encoder"):
        ladder.study_cells(ladder.CLI.parse(["--study", "tiers", "--encoders", "pixel,impala"]))


@pytest.mark.parametrize("tier", ["random", "contact", "navigate"])
def test_tier_overrides_let_each_preset_read_that_tiers_file(tmp_path, tier):
    path = tmp_path / f"{tier}.npz"
    assert collect_main(["--tier", tier, "--num-trajectories", "20", "--seed", "0", "--dataset", str(path)]) == 0
    for preset in ("cpu", "profile"):
        cfg = make_config(["--preset", preset, f"dataset={path}", *ladder.tier_overrides(tier)])
        assert prepare_dataset(cfg)["tier"] == tier
    other = "navigate" if tier != "navigate" else "random"
    with pytest.raises(ValueError):
        prepare_dataset(make_config(["--preset", "cpu", f"dataset={path}", *ladder.tier_overrides(other)]))


def test_tiny_time_study_end_to_end_then_reads_its_caches(tmp_path, capsys, monkeypatch):
    args = tiny_args(tmp_path, "--study", "time", "--epochs", "1,2")
    assert ladder.main(args) == 0
    out = tmp_path / "out" / "time"
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["cell"], r["status"], r["steps"]) for r in rows] == [("e1", "trained", 2), ("e2", "trained", 4)]
    for r in rows:
        assert r["data_tier"] == "random" and r["dataset"] == "tworooms_random.npz" and r["dataset_sha256"]
        assert r["episodes"] == 2 and 0.0 <= r["success_rate"] <= 1.0 and r["train_minutes"] is not None
        assert "--preset cpu" in r["train_command"] and "epochs=" in r["train_command"]
    for name in ("table.md", "results.csv", "success.png"):
        assert (out / name).is_file()
    assert len(list((tmp_path / "out" / "evals").glob("*.json"))) == 2
    # a second call trains nothing and evaluates nothing: models and evaluations are read back
    monkeypatch.setattr(ladder, "train_cell", lambda *a: pytest.fail("retrained"))
    monkeypatch.setattr("eval.runner.run_episodes", lambda *a, **k: pytest.fail("re-evaluated"))
    assert ladder.main(tiny_args(tmp_path, "--study", "time", "--epochs", "1,2", "--no-train")) == 0
    again = json.loads((out / "results.json").read_text())["rows"]
    assert [r["status"] for r in again] == ["found", "found"]
    assert [r["success_rate"] for r in again] == [r["success_rate"] for r in rows]
    # planner defaults written beside a checkpoint make its cached evaluation stale
    (out / "e1_s0" / "model.planner.json").write_text(json.dumps({"iterations_later": 2}))
    monkeypatch.undo()
    assert ladder.main(tiny_args(tmp_path, "--study", "time", "--epochs", "1,2", "--no-train")) == 0
    assert len(list((tmp_path / "out" / "evals").glob("e1_s0_*.json"))) == 2
    assert len(list((tmp_path / "out" / "evals").glob("e2_s0_*.json"))) == 1


def test_a_cell_refuses_a_model_of_another_file_and_bad_input_is_one_error_line(tmp_path, capsys):
    assert ladder.main(tiny_args(tmp_path, "--study", "time", "--epochs", "1")) == 0
    model = tmp_path / "out" / "time" / "e1_s0" / "model.pt"
    capsys.readouterr()
    code = ladder.main(tiny_args(tmp_path, "--study", "tiers", "--encoders", "pixel", "--tiers", "contact",
                                 "--checkpoint", f"pixel:contact={model}"))
    assert code == 2 and "trained on another dataset" in capsys.readouterr().err
    for bad, text in ((["--study", "tiers", "--tiers", "expert"], "unknown tier"),
                      (["--study", "time", "--cells", "e7"], "unknown cell"),
                      (["--study", "time", "--checkpoint", "e30"], "CELL[:SEED]=PATH"),
                      (["--study", "time", "--no-train", "--epochs", "0"], "--epochs must be >= 1")):
        assert ladder.main(tiny_args(tmp_path, *bad)) == 2
        assert text in capsys.readouterr().err
