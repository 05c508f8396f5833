"""Offline data: random-walk generator, storage format, collection CLI, rendering exactness."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tworooms_env import core
from tworooms_env import random_walk as rw
from tworooms_env.collect import main as collect_main
from tworooms_env.dataset import (
    DatasetFormatError,
    WindowIndex,
    load_trajectories,
    read_metadata,
    save_trajectories,
)


@pytest.fixture(scope="module")
def traj() -> rw.Trajectories:
    return rw.generate_trajectories(np.random.default_rng(0), 2000, rw.WalkConfig())


def brute_force_dot(positions: np.ndarray) -> np.ndarray:
    """The dot formula of docs/reference.md#frames evaluated at every pixel of the full image."""
    y, x = np.mgrid[0 : core.IMG_SIZE, 0 : core.IMG_SIZE]
    p = np.asarray(positions, dtype=np.float64)
    d2 = (x[None] - p[:, 0, None, None]) ** 2 + (y[None] - p[:, 1, None, None]) ** 2
    return (255.0 * np.exp(-d2 / (2.0 * core.DOT_STD**2))).astype(np.uint8)


# ---------------------------------------------------------------------------------- generator
def test_shapes_and_dtypes(traj):
    assert traj.positions.shape == (2000, 91, 2) and traj.positions.dtype == np.float32
    assert traj.actions.shape == (2000, 90, 2) and traj.actions.dtype == np.float32
    assert traj.blocked.shape == (2000, 90) and traj.blocked.dtype == bool
    assert traj.wall_x.dtype == np.int16 and traj.door_y.dtype == np.int16
    core.validate_layout(traj.wall_x, traj.door_y)


def test_every_transition_obeys_core_dynamics(traj):
    p = traj.positions[:, :-1].reshape(-1, 2).astype(np.float64)
    a = traj.actions.reshape(-1, 2).astype(np.float64)
    wall_x, door_y = np.repeat(traj.wall_x, 90), np.repeat(traj.door_y, 90)
    new, blocked = core.step_positions(p, a, wall_x, door_y)
    np.testing.assert_array_equal(new.astype(np.float32), traj.positions[:, 1:].reshape(-1, 2))
    np.testing.assert_array_equal(blocked, traj.blocked.ravel())
    assert core.is_free(traj.positions, traj.wall_x[:, None], traj.door_y[:, None]).all()
    assert not rw.violates_margin(traj.positions, traj.wall_x[:, None], traj.door_y[:, None]).any()


def test_step_length_statistics():
    cfg = rw.WalkConfig()
    r = rw.sample_step_lengths(np.random.default_rng(1), (200_000,), cfg)
    assert r.min() >= 0.2 and r.max() <= 1.8
    assert abs(r.mean() - 1.0) < 0.01  # symmetric truncation keeps the mean
    assert 0.33 < r.std() < 0.37  # a normal(1, 0.4) truncated at +-2 sigma has std ~0.352


def test_plain_walk_action_statistics(traj):
    walks = traj.kind == rw.KIND_WALK
    a = traj.actions[walks].astype(np.float64)
    norm = np.linalg.norm(a, axis=-1)
    assert norm.min() >= 0.2 - 1e-5 and norm.max() <= 1.8 + 1e-5
    assert abs(norm.mean() - 1.0) < 0.02
    theta = np.arctan2(a[..., 1], a[..., 0])
    change = np.angle(np.exp(1j * np.diff(theta, axis=1)))
    assert abs(change.mean()) < 0.02
    # von Mises(kappa = 5): circular std sqrt(-2 ln(I1(5)/I0(5))) ~ 0.47 rad
    r_bar = np.abs(np.exp(1j * change).mean())
    assert abs(np.sqrt(-2 * np.log(r_bar)) - 0.47) < 0.03


def test_kinds_and_crossing_share(traj):
    stats = rw.trajectory_stats(traj)
    assert abs(stats["n_crossing"] / 2000 - 0.35) < 0.04
    assert abs(stats["n_bump"] / 2000 - 0.25) < 0.04
    assert stats["crossing_share_crossing"] > 0.95  # built to really pass the door
    assert stats["bump_share_wall_contact"] > 0.7  # built to touch the wall
    assert stats["walk_share_crossing"] < 0.2


def test_bump_trajectories_start_near_the_wall(traj):
    bumps = traj.kind == rw.KIND_BUMP
    gap = np.abs(traj.positions[bumps, 0, 0] - traj.wall_x[bumps]) - core.WALL_HALF_WIDTH
    assert gap.min() >= 2.0 - 1e-4 and gap.max() <= 8.0 + 1e-4


def test_rates_are_configurable():
    cfg = rw.WalkConfig(length=20, cross_wall_rate=0.0, wall_bump_rate=0.0, fixed_wall=True)
    t = rw.generate_trajectories(np.random.default_rng(3), 300, cfg)
    assert (t.kind == rw.KIND_WALK).all()
    assert (t.wall_x == core.FIXED_WALL_X).all() and (t.door_y == core.FIXED_DOOR_Y).all()
    t = rw.generate_trajectories(np.random.default_rng(3), 300, rw.WalkConfig(length=20, cross_wall_rate=1.0, wall_bump_rate=0.0))
    assert rw.crossing_steps(t.positions, t.wall_x).any(axis=1).mean() > 0.95


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="sum to <= 1"):
        rw.WalkConfig(cross_wall_rate=0.8, wall_bump_rate=0.3)
    with pytest.raises(ValueError, match="length"):
        rw.WalkConfig(length=1)
    with pytest.raises(ValueError, match="layouts"):
        rw.generate_trajectories(np.random.default_rng(0), 3, layouts=np.zeros((0, 2)))


def test_generator_is_deterministic():
    cfg = rw.WalkConfig(length=30)
    a = rw.generate_trajectories(np.random.default_rng(7), 200, cfg)
    b = rw.generate_trajectories(np.random.default_rng(7), 200, cfg)
    for f in ("positions", "actions", "blocked", "wall_x", "door_y", "kind"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


# ------------------------------------------------------------------------------------ windows
def test_window_shares_are_measured_and_forced(traj):
    index = WindowIndex(traj, 17)
    rng = np.random.default_rng(0)
    natural = index.stats(index.sample(rng, 20_000))
    forced = index.stats(index.sample(rng, 20_000, crossing_share=0.4, contact_share=0.3))
    assert natural["share_crossing"] < 0.2
    assert forced["share_crossing"] >= 0.4 - 0.02
    assert forced["share_wall_contact"] >= 0.3 - 0.02
    # a window flagged as crossing really changes room inside it
    t, s = index.split_ids(index.sample(rng, 500, crossing_share=1.0))
    steps = s[:, None] + np.arange(17)
    room = core.room_of(traj.positions[t[:, None], steps], traj.wall_x[t][:, None])
    assert (room.min(axis=1) != room.max(axis=1)).all()


def test_window_share_validation(traj):
    index = WindowIndex(traj, 17)
    with pytest.raises(ValueError, match="shares"):
        index.sample(np.random.default_rng(0), 10, crossing_share=0.7, contact_share=0.5)
    with pytest.raises(ValueError, match="window"):
        WindowIndex(traj, 92)


# ------------------------------------------------------------------------------------ storage
def test_save_load_round_trip(traj, tmp_path):
    path = save_trajectories(tmp_path / "d.npz", traj, {"seed": 0, "generator_params": rw.WalkConfig().to_dict()})
    back, meta = load_trajectories(path)
    for f in ("positions", "actions", "blocked", "wall_x", "door_y", "kind"):
        np.testing.assert_array_equal(getattr(back, f), getattr(traj, f))
    assert meta["format"] == "tworooms-trajectories" and meta["format_version"] == 1
    assert meta["num_trajectories"] == 2000 and meta["length"] == 91 and meta["seed"] == 0
    assert rw.WalkConfig.from_dict(meta["generator_params"]) == rw.WalkConfig()
    assert read_metadata(path) == meta
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no temporary file left


def _small(n=5, length=6):
    return rw.generate_trajectories(np.random.default_rng(0), n, rw.WalkConfig(length=length))


def test_truncated_file_raises(tmp_path):
    path = save_trajectories(tmp_path / "d.npz", _small())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match="d.npz"):
        load_trajectories(path)


def test_corrupt_bytes_raise(tmp_path):
    path = save_trajectories(tmp_path / "d.npz", _small(50, 20))
    data = bytearray(path.read_bytes())
    pos = data.find(b"positions.npy")
    data[pos + 400 : pos + 420] = b"\x00" * 20  # inside the positions array: bad CRC
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetFormatError, match="corrupt|truncated|readable"):
        load_trajectories(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DatasetFormatError, match="not a readable"):
        load_trajectories(tmp_path / "junk.npz")


def test_other_version_and_mismatched_arrays_raise(tmp_path):
    t = _small()
    path = save_trajectories(tmp_path / "d.npz", t)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}

    def rewrite(name, **changes):
        out = tmp_path / name
        np.savez(out, **{**arrays, **changes})
        return out

    meta = json.loads(arrays["metadata"].tobytes())
    v2 = np.frombuffer(json.dumps({**meta, "format_version": 2}).encode(), dtype=np.uint8)
    with pytest.raises(DatasetFormatError, match="format version 2"):
        load_trajectories(rewrite("v2.npz", metadata=v2))
    other = np.frombuffer(json.dumps({**meta, "format": "x"}).encode(), dtype=np.uint8)
    with pytest.raises(DatasetFormatError, match="format 'x'"):
        load_trajectories(rewrite("other.npz", metadata=other))
    with pytest.raises(DatasetFormatError, match="'actions' has shape"):
        load_trajectories(rewrite("short.npz", actions=arrays["actions"][:, :-1]))
    with pytest.raises(DatasetFormatError, match="'wall_x' must be int16"):
        load_trajectories(rewrite("dtype.npz", wall_x=arrays["wall_x"].astype(np.int64)))
    with pytest.raises(DatasetFormatError, match="missing array 'blocked'"):
        load_trajectories(_without(tmp_path, arrays, "blocked"))
    with pytest.raises(DatasetFormatError, match="metadata says"):
        fewer = {k: arrays[k][:3] for k in ("positions", "actions", "blocked", "wall_x", "door_y", "kind")}
        load_trajectories(rewrite("count.npz", **fewer))
    with pytest.raises(FileNotFoundError):
        load_trajectories(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match=".npz"):
        save_trajectories(tmp_path / "d.bin", t)


def _without(tmp_path, arrays, key):
    out = tmp_path / f"no_{key}.npz"
    np.savez(out, **{k: v for k, v in arrays.items() if k != key})
    return out


def test_interrupted_write_leaves_no_complete_looking_file(tmp_path, monkeypatch):
    import tworooms_env.dataset as ds

    def boom(f, arrays):
        f.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ds, "_write_npz", boom)
    with pytest.raises(KeyboardInterrupt):
        save_trajectories(tmp_path / "d.npz", _small())
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------- collect CLI
def test_collect_cli_same_seed_same_bytes(tmp_path, capsys):
    args = ["--num-trajectories", "60", "--length", "25", "--chunk-size", "25", "--no-progress", "--window", "9"]
    assert collect_main(args + ["--seed", "3", "--dataset", str(tmp_path / "a.npz"), "--plot", str(tmp_path / "p.png")]) == 0
    assert collect_main(args + ["--seed", "3", "--dataset", str(tmp_path / "b.npz")]) == 0
    assert collect_main(args + ["--seed", "4", "--dataset", str(tmp_path / "c.npz")]) == 0
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "a.npz").read_bytes() != (tmp_path / "c.npz").read_bytes()
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "share_crossing" in out and "share_wall_contact" in out
    meta = read_metadata(tmp_path / "a.npz")
    assert meta["stats"]["windows"]["window"] == 9 and meta["generator_params"]["length"] == 25
    assert zipfile.is_zipfile(tmp_path / "a.npz")


def test_collect_cli_rejects_bad_rates(tmp_path, capsys):
    assert collect_main(["--tier", "contact", "--cross-wall-rate", "0.9", "--wall-bump-rate", "0.5",
                         "--dataset", str(tmp_path / "x.npz")]) == 2
    assert "sum to <= 1" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("tier", ["random", "contact", "navigate"])
def test_collect_cli_writes_each_tier_with_metadata(tier, tmp_path):
    from tworooms_env.tiers import TIER_DEFAULTS, TierConfig

    args = ["--tier", tier, "--num-trajectories", "40", "--length", "21", "--chunk-size", "20", "--no-progress",
            "--window", "9", "--seed", "5"]
    assert collect_main(args + ["--dataset", str(tmp_path / "a.npz")]) == 0
    assert collect_main(args + ["--dataset", str(tmp_path / "b.npz")]) == 0
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    meta = read_metadata(tmp_path / "a.npz")
    assert meta["tier"] == tier and meta["generator"].startswith("tworooms_env.tiers")
    params = TierConfig.from_dict(meta["generator_params"])
    assert params.tier == tier and params.length == 21
    for key, value in TIER_DEFAULTS[tier].items():
        assert meta["generator_params"][key] == value
    traj, _ = load_trajectories(tmp_path / "a.npz")
    kinds = set(np.unique(traj.kind).tolist())
    if tier == "random":  # walks and door crossings only
        assert kinds <= {rw.KIND_WALK, rw.KIND_CROSSING}
    else:
        assert 3 in kinds  # layout-aware segment families
    assert (4 in kinds) == (tier == "navigate")  # noisy expert routes only in navigate


def test_tier_rules_are_errors(tmp_path, capsys):
    from tworooms_env.tiers import tier_config

    with pytest.raises(ValueError, match="unknown data tier"):
        tier_config("expert")
    with pytest.raises(ValueError, match="belong to the 'contact' tier"):
        tier_config("random", wall_bump_rate=0.2)
    with pytest.raises(ValueError, match="navigate"):
        tier_config("contact", detour_rate=0.2)
    assert collect_main(["--tier", "expert", "--dataset", str(tmp_path / "x.npz")]) == 2
    assert "'tier' expects one of random, contact, navigate, got 'expert'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- rendering
def test_render_frames_matches_brute_force():
    rng = np.random.default_rng(5)
    pos = rng.uniform(core.BORDER_LO, core.BORDER_HI, size=(600, 2))
    pos[:6] = [[4.0, 4.0], [60.0, 60.0], [4.25, 59.75], [32.5, 32.5], [10.0, 10.5], [59.99, 4.01]]
    wall_x = rng.integers(core.WALL_X_MIN, core.WALL_X_MAX + 1, 600)
    door_y = rng.integers(core.DOOR_Y_MIN, core.DOOR_Y_MAX + 1, 600)
    frames = core.render_frames(pos, wall_x, door_y)
    np.testing.assert_array_equal(frames[:, 0], brute_force_dot(pos))
    np.testing.assert_array_equal(frames[:, 0], core.render_dots(pos))
    walls = np.stack([core.render_walls(w, d) for w, d in zip(wall_x, door_y)])
    np.testing.assert_array_equal(frames[:, 1], walls)
    # runs of one layout (the windows of training batches) take another path
    wx, dy = np.repeat(wall_x[:20], 17), np.repeat(door_y[:20], 17)
    out = np.full((340, 2, 65, 65), 7, dtype=np.uint8)
    assert core.render_frames(pos[:340], wx, dy, out=out) is out
    np.testing.assert_array_equal(out[:, 0], brute_force_dot(pos[:340]))
    np.testing.assert_array_equal(out[:, 1], np.repeat(walls[:20], 17, axis=0))


def test_render_walls_pixels():
    img = core.render_walls(30, 20)
    assert (img[4] == 255).all() and (img[60] == 255).all() and (img[:, 4] == 255).all()
    assert (img[16:25, 29:32] == 0).all() and (img[15, 29:32] == 255).all() and (img[25, 29:32] == 255).all()
    assert img[10, 28] == 0 and img[10, 32] == 0


def test_render_out_validation():
    with pytest.raises(ValueError, match="out must be"):
        core.render_frames(np.zeros((3, 2)) + 10, 30, 20, out=np.zeros((3, 2, 65, 65), dtype=np.float32))
    with pytest.raises(ValueError, match="out must be"):
        core.render_frames(np.zeros((3, 2)) + 10, 30, 20, out=np.zeros((2, 2, 65, 65), dtype=np.uint8))
