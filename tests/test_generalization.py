"""eval.generalization: a tiny study runs end to end, reuses its models, and checks its inputs."""

import json

import numpy as np

from eval import generalization
from tworooms_env.collect import main as collect_main
from tworooms_env.splits import contains, held_out_layouts

TINY_WM = ["epochs=1", "steps_per_epoch=2", "batch_size=8", "encoder_width=8", "encoder_hidden=16", "latent_dim=12",
           "layout_dim=4", "gate_samples=0", "tensorboard=false"]
CHEAP_PLANNER = ["num_samples=16", "num_elites=4", "iterations_first=1", "iterations_later=1"]


def tiny_args(tmp_path, *extra):
    args = ["--num-trajectories", "40", "--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "out"),
            "--baseline-steps", "2", "--baseline-set", "hidden=[16]", "--episodes", "3", "--batch-size", "3",
            "--no-progress", *extra]
    for kv in TINY_WM:
        args += ["--wm-set", kv]
    for kv in CHEAP_PLANNER:
        args += ["--planner-option", kv]
    return args


def test_tiny_layouts_study_end_to_end_then_reuses_its_models(tmp_path, capsys):
    args = tiny_args(tmp_path, "--study", "layouts", "--splits", "k1,k5", "--methods", "jepa,gcbc,oracle")
    assert generalization.main(args) == 0
    out = tmp_path / "out" / "layouts"
    result = json.loads((out / "results.json").read_text())
    rows = result["rows"]
    assert [(r["point"], r["method"]) for r in rows] == [(p, m) for p in ("k1", "k5") for m in ("jepa", "gcbc", "oracle")]
    for r in rows:
        assert r["tasks"] == f"heldout:{r['point']}" and r["episodes"] == 3 and 0.0 <= r["success_rate"] <= 1.0
        assert r["status"] == ("untrained" if r["method"] == "oracle" else "trained")
    assert all(r["success_rate"] == 1.0 for r in rows if r["method"] == "oracle")
    trained = [r for r in rows if r["method"] != "oracle"]
    assert all(r["dataset_sha256"] and r["train_minutes"] is not None for r in trained)
    assert {r["dataset"] for r in trained} == {"random_k1_n40_s0.npz", "random_k5_n40_s0.npz"}
    table = (out / "table.md").read_text()
    assert "| k1 | 40 | heldout:k1 |" in table and "Budgets: world model preset 'cpu'" in table
    assert (out / "success.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "results.csv").read_text().strip().splitlines()) == 1 + len(rows)
    # the second run trains nothing: same models, same tasks, same numbers
    assert generalization.main(tiny_args(tmp_path, "--study", "layouts", "--splits", "k1,k5", "--methods",
                                         "jepa,gcbc,oracle", "--no-train")) == 0
    again = json.loads((out / "results.json").read_text())["rows"]
    assert [r["status"] for r in again if r["method"] != "oracle"] == ["found"] * 4
    assert [r["success_rate"] for r in again] == [r["success_rate"] for r in rows]
    # a found world model trained without an override of this study is refused, not silently reused
    assert generalization.main(tiny_args(tmp_path, "--study", "layouts", "--splits", "k1", "--methods", "jepa",
                                         "--no-train", "--wm-set", "shift_max=3")) == 2
    assert "trained with shift_max=0, not the --wm-set shift_max=3" in capsys.readouterr().err


def test_quality_study_with_a_missing_model_and_a_given_dataset(tmp_path):
    nodoor = tmp_path / "nodoor.npz"
    assert collect_main(["--no-door-crossings", "--num-trajectories", "40", "--no-progress", "--dataset", str(nodoor)]) == 0
    args = tiny_args(tmp_path, "--study", "quality", "--methods", "gcbc", "--dataset", f"no-door={nodoor}")
    assert generalization.main(args + ["--no-train"]) == 0
    rows = json.loads((tmp_path / "out" / "quality" / "results.json").read_text())["rows"]
    assert [(r["point"], r["status"]) for r in rows] == [("random", "missing"), ("no-door", "missing")]
    assert rows[1]["dataset_file"] == str(nodoor)
    assert "n/a (missing)" in (tmp_path / "out" / "quality" / "table.md").read_text()
    assert generalization.main(args) == 0
    rows = json.loads((tmp_path / "out" / "quality" / "results.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["trained", "trained"] and rows[1]["tasks"] == "all"


def test_study_inputs_are_checked(tmp_path, capsys):
    full = tmp_path / "full.npz"
    assert collect_main(["--num-trajectories", "40", "--no-progress", "--dataset", str(full)]) == 0
    base = tiny_args(tmp_path, "--study", "layouts", "--splits", "k1", "--methods", "gcbc")
    assert generalization.main(base + ["--dataset", f"k1={full}"]) == 2
    assert "cannot serve point k1: layout split None" in capsys.readouterr().err
    assert generalization.main(base + ["--checkpoint", "k7:gcbc=x.pt"]) == 2
    assert "unknown point 'k7'" in capsys.readouterr().err
    assert generalization.main(base[:-2] + ["--methods", "dqn"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert generalization.main(tiny_args(tmp_path, "--study", "layouts", "--splits", "k0")) == 2
    assert "k must be in" in capsys.readouterr().err
    # the held-out tasks of every split are the same layout set
    from eval.tasks import protocol_tasks

    tasks = protocol_tasks(0, 20, layouts="heldout:k1")
    assert contains(held_out_layouts(), tasks["wall_x"], tasks["door_y"]).all()
    np.testing.assert_array_equal(tasks["goal"], protocol_tasks(0, 20, layouts="heldout:all")["goal"])


def test_the_shipped_k10_checkpoint_never_saw_a_held_out_layout():
    """The checkpoint of the smallest split shipped records its split and augmentation, and its
    split's train layouts are disjoint from the held-out layouts its evaluation draws from."""
    import torch

    from jepa_agent.world_model import K10_CHECKPOINT, load_world_model
    from tworooms_env.splits import resolve_layouts

    ckpt = torch.load(K10_CHECKPOINT, map_location="cpu", weights_only=True)
    assert ckpt["dataset"]["layout_split"] == "k10" and ckpt["data_tier"] == "random"
    assert ckpt["config"]["shift_max"] == 8 and ckpt["step"] == 18_000
    train = {tuple(x) for x in resolve_layouts("train:k10").tolist()}
    assert len(train) == 10 and not train & {tuple(x) for x in held_out_layouts().tolist()}
    assert load_world_model(K10_CHECKPOINT).config.encoder == "pixel"
