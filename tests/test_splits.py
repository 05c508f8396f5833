"""Layout splits: named and reproducible, disjoint; split and no-door datasets; held-out tasks."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import tworooms_env  # noqa: F401
from eval import planning
from eval.runner import run_episodes
from eval.agents import make_agent
from eval.tasks import protocol_tasks
from training import data
from training import world_model as tw
from training.wm_config import make_config
from tworooms_env import core
from tworooms_env.collect import main as collect_main
from tworooms_env.dataset import load_trajectories, read_metadata
from tworooms_env.random_walk import crossing_steps
from tworooms_env.splits import (STUDY_SPLITS, contains, held_out_layouts, layout_codes, layout_split,
                                 resolve_layouts)


def as_set(layouts):
    return set(map(tuple, np.asarray(layouts).tolist()))


def test_splits_are_disjoint_nested_and_reproducible():
    held = as_set(held_out_layouts())
    assert len(held) == 112
    previous = set()
    for name in STUDY_SPLITS:
        split = layout_split(name)
        train = as_set(split.train)
        assert as_set(split.heldout) == held and not train & held  # one held-out set, disjoint from train
        assert previous <= train  # nested: k1 in k5 in k10 ...
        previous = train
        again = layout_split(name)
        np.testing.assert_array_equal(split.train, again.train)
        assert split.k is None or len(train) == split.k
    assert len(previous) == 1125 - 112  # "all": every layout outside the held-out set
    other = layout_split("k10-s3")
    assert other.name == "k10-s3" and as_set(other.train) != as_set(layout_split("k10").train)
    assert not as_set(other.train) & held
    assert layout_split("k10-s0").name == "k10"
    # the held-out set is the trainers' existing validation split (one mechanism)
    all_layouts = core.all_layouts()
    val = data.split_indices(all_layouts[:, 0], all_layouts[:, 1], "val")
    assert as_set(all_layouts[val]) == held


def test_bad_split_names_and_layout_sets_are_clear_errors():
    for bad, match in (("k0", "k must be in 1..1013"), ("k2000", "k must be in"), ("x10", "unknown layout split"),
                       ("all-s2", "has no seed")):
        with pytest.raises(ValueError, match=match):
            layout_split(bad)
    with pytest.raises(ValueError, match="heldout:SPLIT"):
        resolve_layouts("test:k10")
    with pytest.raises(ValueError, match="wall_x must be"):
        resolve_layouts([[3, 20]])
    assert resolve_layouts("all") is None and resolve_layouts(None) is None
    np.testing.assert_array_equal(resolve_layouts("train:k5"), layout_split("k5").train)


def test_collect_split_writes_train_layouts_only_and_records_the_split(tmp_path, capsys):
    out = tmp_path / "k5.npz"
    args = ["--tier", "random", "--split", "k5", "--num-trajectories", "200", "--length", "21", "--chunk-size", "50",
            "--no-progress", "--window", "9"]
    assert collect_main(args + ["--dataset", str(out)]) == 0
    traj, meta = load_trajectories(out)
    split = layout_split("k5")
    assert meta["layout_split"]["name"] == "k5" and meta["layout_split"]["train_layouts"] == split.train.tolist()
    assert meta["layout_split"]["num_heldout"] == 112
    assert not contains(split.heldout, traj.wall_x, traj.door_y).any()  # no held-out layout in the file
    assert as_set(np.stack([traj.wall_x, traj.door_y], 1)) == as_set(split.train)  # 200 draws cover all 5
    assert collect_main(args + ["--dataset", str(tmp_path / "again.npz")]) == 0
    assert out.read_bytes() == (tmp_path / "again.npz").read_bytes()
    # the trainers use a split file whole: every layout in it is a train layout
    np.testing.assert_array_equal(data.split_rows(traj, meta, "train"), np.arange(len(traj)))
    with pytest.raises(ValueError, match="no validation"):
        data.split_rows(traj, meta, "val")
    held = held_out_layouts()[:1]
    traj.wall_x[0], traj.door_y[0] = held[0]
    with pytest.raises(ValueError, match="held-out layouts"):
        data.split_rows(traj, meta, "train")
    capsys.readouterr()
    assert collect_main(["--tier", "contact", "--split", "k5", "--dataset", str(tmp_path / "c.npz"), "--no-progress"]) == 2
    assert "'random' tier only" in capsys.readouterr().err
    assert collect_main(["--split", "k0", "--dataset", str(tmp_path / "c.npz")]) == 2
    assert "k must be in" in capsys.readouterr().err


def test_no_door_crossing_variant_has_no_crossing_and_says_so(tmp_path, capsys):
    out = tmp_path / "nodoor.npz"
    assert collect_main(["--no-door-crossings", "--num-trajectories", "300", "--length", "41", "--no-progress",
                         "--window", "9", "--seed", "2", "--dataset", str(out)]) == 0
    traj, meta = load_trajectories(out)
    assert len(traj) == 300 and meta["tier"] == "random" and meta["variant"] == "no-door-crossings"
    assert meta["generator_params"]["door_crossings"] is False and meta["generator_params"]["cross_wall_rate"] == 0
    assert not crossing_steps(traj.positions, traj.wall_x).any()
    assert meta["stats"]["trajectories"]["share_crossing"] == 0.0
    assert collect_main(["--no-door-crossings", "--cross-wall-rate", "0.3", "--dataset", str(tmp_path / "x.npz")]) == 2
    assert "excludes --cross-wall-rate" in capsys.readouterr().err
    # a default file keeps the metadata (and bytes) of earlier versions: the default variant stays implicit
    assert collect_main(["--num-trajectories", "20", "--length", "21", "--no-progress", "--dataset", str(tmp_path / "d.npz")]) == 0
    default = read_metadata(tmp_path / "d.npz")
    assert "door_crossings" not in default["generator_params"] and "variant" not in default


def test_heldout_tasks_sample_held_out_layouts_only_deterministically():
    held = held_out_layouts()
    tasks = protocol_tasks(seed=3, episodes=60, layouts="heldout:k10")
    assert contains(held, tasks["wall_x"], tasks["door_y"]).all()
    again = protocol_tasks(seed=3, episodes=10, first=20, layouts="heldout:k10")
    np.testing.assert_array_equal(again["goal"], tasks["goal"][20:30])
    assert len(as_set(np.stack([tasks["wall_x"], tasks["door_y"]], 1))) > 20  # spread over the set
    env = gym.make("TwoRooms-v0", layouts="heldout:k10")
    for i in (0, 7, 59):
        _, info = env.reset(options={"task_seed": 3, "task_index": i})
        assert (info["wall_x"], info["door_y"]) == (tasks["wall_x"][i], tasks["door_y"][i])
        np.testing.assert_allclose(info["goal"], tasks["goal"][i])
    for seed in range(40):  # plain seeded resets too
        _, info = env.reset(seed=seed)
        assert contains(held, info["wall_x"], info["door_y"])
    train = protocol_tasks(seed=3, episodes=30, layouts="train:k5")
    assert as_set(np.stack([train["wall_x"], train["door_y"]], 1)) <= as_set(layout_split("k5").train)
    with pytest.raises(ValueError, match="exclude"):
        gym.make("TwoRoomsFixedWall-v0", layouts="heldout:k10")


def test_runner_and_planning_cli_take_layouts(tmp_path):
    records = run_episodes(make_agent("greedy"), seed=4, indices=5, batch_size=5, max_steps=5, progress=False,
                           layouts="heldout:k1")
    tasks = protocol_tasks(seed=4, episodes=5, layouts="heldout:k1")
    assert [r.wall_x for r in records] == tasks["wall_x"].tolist()
    assert [r.door_y for r in records] == tasks["door_y"].tolist()
    out = tmp_path / "r.json"
    assert planning.main(["--agent", "oracle", "--episodes", "3", "--seed", "4", "--layouts", "heldout:k1",
                          "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["layouts"] == "heldout:k1"
    assert [e["wall_x"] for e in result["per_episode"]] == tasks["wall_x"][:3].tolist()
    assert planning.main(["--agent", "oracle", "--episodes", "1", "--layouts", "heldout:q1", "--no-progress"]) == 2


RANDOM_RATES = ["cross_wall_rate=0.35", "wall_bump_rate=0", "segment_rate=0", "parallel_rate=0", "door_aim_rate=0",
                "push_rate=0", "detour_rate=0", "step_mean=1.2", "step_std=0.6", "step_max=2.45"]


def test_trainer_accepts_split_and_no_door_files_and_refuses_a_wrong_tier(tmp_path):
    path = tmp_path / "k5_nodoor.npz"
    assert collect_main(["--split", "k5", "--no-door-crossings", "--num-trajectories", "40", "--length", "21",
                         "--no-progress", "--window", "9", "--dataset", str(path)]) == 0

    def cfg(*argv):
        return make_config(["--preset", "tiny", "encoder=pixel", "encoder_hidden=16", "encoder_width=8",
                            f"dataset={path}", *RANDOM_RATES, f"out_dir={tmp_path / 'run'}", "tensorboard=false",
                            "gate_samples=0", "epochs=1", "steps_per_epoch=2", *argv])

    _, summary = tw.train(cfg("data_tier=random"), progress=False)
    assert summary["status"] == "finished"
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert ckpt["dataset"]["layout_split"] == "k5" and ckpt["dataset"]["door_crossings"] is False
    source = tw.WindowSource(cfg("data_tier=random"))
    assert len(source.dataset.traj) == 40  # a split file is used whole
    assert set(layout_codes(source.dataset.traj.wall_x, source.dataset.traj.door_y)) <= set(
        layout_codes(*layout_split("k5").train.T))
    with pytest.raises(ValueError, match="holds tier 'random' but data_tier='navigate'"):
        tw.train(make_config(["--preset", "tiny", f"dataset={path}", "data_tier=navigate", f"out_dir={tmp_path}",
                              "gate_samples=0"]), progress=False)
    meta = read_metadata(path)
    assert meta["layout_split"]["name"] == "k5"


def test_compare_takes_layouts(tmp_path, capsys):
    from eval import compare

    out = tmp_path / "cmp"
    assert compare.main(["--methods", "oracle,random", "--episodes", "2", "--batch-size", "2", "--layouts",
                         "heldout:k10", "--out-dir", str(out), "--no-progress"]) == 0
    assert "layouts heldout:k10" in (out / "table.md").read_text()
    assert compare.main(["--methods", "oracle", "--episodes", "1", "--layouts", "train:nope", "--out-dir",
                         str(tmp_path / "bad"), "--no-progress"]) == 2  # one error line, like compare's other bad options
    assert capsys.readouterr().err.startswith("error: ") and not (tmp_path / "bad").exists()
