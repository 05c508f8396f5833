"""Training windows (training/data.py) and the Minari export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tworooms_env import core
from tworooms_env import random_walk as rw
from tworooms_env.dataset import save_trajectories
from training import data


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    traj = rw.generate_trajectories(np.random.default_rng(0), 600, rw.WalkConfig(length=40))
    return save_trajectories(tmp_path_factory.mktemp("d") / "d.npz", traj)


def test_batch_shapes_and_content(path):
    ds = data.TrajectoryWindows.from_file(path, window=9)
    batch = ds.sample_batch(5, np.random.default_rng(0))
    assert batch["frames"].shape == (5, 9, 2, 65, 65) and batch["frames"].dtype == torch.uint8
    assert batch["actions"].shape == (5, 8, 2) and batch["actions"].dtype == torch.float32
    assert batch["positions"].shape == (5, 9, 2) and batch["blocked"].shape == (5, 8)
    assert batch["wall_x"].shape == (5,) and batch["wall_x"].dtype == torch.int64
    pos = batch["positions"].numpy().reshape(-1, 2)
    expected = core.render_frames(pos, np.repeat(batch["wall_x"].numpy(), 9), np.repeat(batch["door_y"].numpy(), 9))
    np.testing.assert_array_equal(batch["frames"].numpy().reshape(-1, 2, 65, 65), expected)
    # actions lead from frame t to t + 1 through the core dynamics
    p = batch["positions"].numpy()
    new, _ = core.step_positions(
        p[:, :-1].reshape(-1, 2), batch["actions"].numpy().reshape(-1, 2),
        np.repeat(batch["wall_x"].numpy(), 8), np.repeat(batch["door_y"].numpy(), 8),
    )
    np.testing.assert_array_equal(new.astype(np.float32), p[:, 1:].reshape(-1, 2))


def test_item_and_dataloader(path):
    ds = data.TrajectoryWindows.from_file(path, window=9)
    assert len(ds) == 600 * (40 - 9 + 1)
    item = ds[17]
    assert item["frames"].shape == (9, 2, 65, 65) and item["actions"].shape == (8, 2)
    batches = list(ds.loader(batch_size=4, num_batches=3, seed=1))
    assert len(batches) == 3 and batches[0]["frames"].shape == (4, 9, 2, 65, 65)
    again = list(ds.loader(batch_size=4, num_batches=3, seed=1))
    assert torch.equal(batches[2]["positions"], again[2]["positions"])  # seeded


def test_layout_split_is_disjoint_and_deterministic(path):
    train = data.TrajectoryWindows.from_file(path, window=9, split="train")
    val = data.TrajectoryWindows.from_file(path, window=9, split="val")
    assert len(train.traj) + len(val.traj) == 600 and len(val.traj) > 0
    key = lambda t: set(zip(t.wall_x.tolist(), t.door_y.tolist()))  # noqa: E731
    assert not key(train.traj) & key(val.traj)
    held = {tuple(x) for x in data.held_out_layouts().tolist()}
    assert key(val.traj) <= held and len(held) == round(0.1 * 1125)
    np.testing.assert_array_equal(data.held_out_layouts(), data.held_out_layouts())
    with pytest.raises(ValueError, match="split"):
        data.TrajectoryWindows.from_file(path, split="test")


def test_fixed_wall_split_falls_back_to_trajectories():
    wall_x, door_y = np.full(50, 32), np.full(50, 18)
    val = data.split_indices(wall_x, door_y, "val")
    np.testing.assert_array_equal(val, np.arange(45, 50))


def test_requested_window_shares(path):
    ds = data.TrajectoryWindows.from_file(path, window=9, crossing_window_share=0.5, contact_window_share=0.3)
    stats = ds.window_stats(20_000)
    assert stats["share_crossing"] >= 0.48 and stats["share_wall_contact"] >= 0.28
    natural = data.TrajectoryWindows.from_file(path, window=9).window_stats(20_000)
    assert natural["share_crossing"] < stats["share_crossing"]


def test_minari_export_loads(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    pytest.importorskip("h5py")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    from tworooms_env.minari_export import export_minari

    traj = rw.generate_trajectories(np.random.default_rng(0), 4, rw.WalkConfig(length=8))
    export_minari(traj, "tworooms/test-v0")
    ds = minari.load_dataset("tworooms/test-v0")
    assert ds.total_episodes == 4 and ds.total_steps == 4 * 7
    episodes = list(ds.iterate_episodes())
    for i, ep in enumerate(episodes):
        np.testing.assert_array_equal(ep.observations["position"], traj.positions[i])
        assert (ep.observations["layout"] == [traj.wall_x[i], traj.door_y[i]]).all()
        np.testing.assert_allclose(ep.actions * core.MAX_STEP_NORM, traj.actions[i], rtol=1e-6)
        assert ep.truncations[-1] and not ep.terminations.any()
        np.testing.assert_array_equal(ep.infos["blocked"][1:], traj.blocked[i])
