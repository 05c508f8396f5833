"""The learned pixel encoder and training from offline dataset files of a data tier."""

import copy

import numpy as np
import pytest
import torch

from jepa_agent.encoders import PixelEncoder
from jepa_agent.world_model import WorldModel, load_world_model
from training import data
from training import world_model as tw
from training.data import render_windows
from training.wm_config import make_config
from tworooms_env import core
from tworooms_env.collect import write_dataset
from tworooms_env.random_walk import generate_trajectories, WalkConfig
from tworooms_env.tiers import tier_config

RANDOM_RATES = ["cross_wall_rate=0.35", "wall_bump_rate=0", "segment_rate=0", "parallel_rate=0", "door_aim_rate=0",
                "push_rate=0", "detour_rate=0", "step_mean=1.2", "step_std=0.6", "step_max=2.45"]


def pixel_cfg(tmp_path, dataset, *argv):
    return make_config(["--preset", "tiny", "encoder=pixel", "latent_dim=12", "layout_dim=4", "encoder_hidden=32",
                        "encoder_width=8", "std_within_window=true", "frame_stride=2", f"dataset={dataset}",
                        "data_tier=random", *RANDOM_RATES, f"out_dir={tmp_path / 'run'}", "tensorboard=false",
                        "gate_samples=0", *argv])


@pytest.fixture(scope="module")
def random_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "random.npz"
    write_dataset(path, tier_config("random", length=25), 80, seed=0, window=9, progress=False)
    return path


def test_pixel_encoder_treats_both_channels_alike():
    """Swapping which channel holds the walls, with the first layer's input weights swapped to
    match, gives the same latents: no part of the network is tied to a channel's role."""
    torch.manual_seed(0)
    enc = PixelEncoder(agent_dim=6, layout_dim=4, width=8, hidden=16).eval()
    swapped = copy.deepcopy(enc)
    with torch.no_grad():
        swapped.trunk[0].weight.copy_(enc.trunk[0].weight.flip(1))
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(core.render_frames(rng.uniform(8, 56, (5, 2)), np.full(5, 30), np.full(5, 20)))
    assert torch.allclose(enc(frames), swapped(frames.flip(1)), atol=1e-5)
    # one network reads both channels: the first layer mixes them, and there are no fixed buffers
    assert enc.trunk[0].in_channels == 2 and list(enc.buffers()) == []
    z = enc(frames)
    assert z.shape == (5, 10) and torch.isfinite(z).all()


def test_strided_windows_render_every_kth_frame():
    traj = generate_trajectories(np.random.default_rng(0), 4, WalkConfig(length=11))
    full = render_windows(traj, np.arange(4), np.zeros(4, dtype=np.int64), 11)
    strided = render_windows(traj, np.arange(4), np.zeros(4, dtype=np.int64), 11, frame_stride=5)
    assert strided["frames"].shape == (4, 3, 2, 65, 65) and strided["actions"].shape == (4, 10, 2)
    assert torch.equal(strided["frames"], full["frames"][:, ::5]) and torch.equal(strided["actions"], full["actions"])
    with pytest.raises(ValueError, match="frame_stride"):
        render_windows(traj, np.arange(4), np.zeros(4, dtype=np.int64), 11, frame_stride=3)


def test_tiny_pixel_run_from_a_dataset_lowers_the_loss_and_records_the_data(tmp_path, random_dataset):
    cfg = pixel_cfg(tmp_path, random_dataset, "epochs=1", "steps_per_epoch=80", "batch_size=16", "lr=3e-3")
    source = data.WindowSource(cfg)
    fixed = source.batch(10_000)
    assert fixed["frames"].shape == (16, 5, 2, 65, 65)  # window 9, every 2nd frame
    torch.manual_seed(cfg.seed)
    before = float(WorldModel(cfg.model_config())(fixed["frames"], fixed["actions"])[1]["energy"])
    model, summary = tw.train(cfg, progress=False)
    after = float(model(fixed["frames"], fixed["actions"])[1]["energy"])
    assert summary["status"] == "finished" and after < 0.8 * before
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert ckpt["data_tier"] == "random"
    assert ckpt["dataset"]["name"] == "random.npz" and ckpt["dataset"]["trajectories"] == 80
    assert len(ckpt["dataset"]["sha256"]) == 64
    assert load_world_model(tmp_path / "run" / "model.pt").config.encoder == "pixel"


def test_a_dataset_that_cannot_serve_the_config_is_a_clear_error(tmp_path, random_dataset):
    with pytest.raises(ValueError, match="cannot honour cross_wall_rate=0.5"):
        tw.train(pixel_cfg(tmp_path, random_dataset, "cross_wall_rate=0.5"), progress=False)
    with pytest.raises(ValueError, match="holds tier 'random' but data_tier='navigate'"):
        tw.train(make_config(["--preset", "tiny", f"dataset={random_dataset}", "data_tier=navigate",
                              f"out_dir={tmp_path}", "gate_samples=0"]), progress=False)
    with pytest.raises(ValueError, match="'data_tier' expects one of random, contact, navigate, got 'expert'"):
        make_config(["data_tier=expert"])
    with pytest.raises(ValueError, match="belong to the 'contact' tier"):
        make_config(["data_tier=random", "segment_rate=0.5"])
    assert tw.main(["data_tier=expert"]) == 2


def test_shift_windows_translates_each_whole_window_and_its_labels():
    """Random shifts move every frame of a window by one offset (zero-filled), with positions and layout;
    the dot lands where the shifted position renders it; offset 0 changes nothing."""
    traj = generate_trajectories(np.random.default_rng(0), 16, WalkConfig(length=9))
    batch = render_windows(traj, np.arange(16), np.zeros(16, dtype=np.int64), 9)
    shifted = data.shift_windows(batch, np.random.default_rng(1), 6)
    dx = (shifted["wall_x"] - batch["wall_x"]).numpy()
    dy = (shifted["door_y"] - batch["door_y"]).numpy()
    assert np.abs(dx).max() <= 6 and np.abs(dy).max() <= 6 and len(set(zip(dx, dy))) > 4
    assert torch.equal(shifted["actions"], batch["actions"])
    off = torch.from_numpy(np.stack([dx, dy], 1).astype(np.float32))[:, None]
    assert torch.equal(shifted["positions"], batch["positions"] + off)  # one offset for the whole window
    for k in range(16):
        f, o = shifted["frames"][k].numpy(), batch["frames"][k].numpy()
        src = o[..., max(0, -dy[k]):65 - max(0, dy[k]), max(0, -dx[k]):65 - max(0, dx[k])]
        dst = f[..., max(0, dy[k]):65 - max(0, -dy[k]), max(0, dx[k]):65 - max(0, -dx[k])]
        assert np.array_equal(dst, src) and f.sum(dtype=np.int64) <= o.sum(dtype=np.int64)
        pos = shifted["positions"][k].numpy()
        if (pos.min() >= 6) and (pos.max() <= 58):  # the dot's patch stays inside the frame
            dot = core.render_frames(pos, np.full(9, 32), np.full(9, 32))[:, 0]
            assert np.array_equal(f[:, 0], dot)
        if dx[k] == dy[k] == 0:
            assert torch.equal(shifted["frames"][k], batch["frames"][k])


def test_shift_max_is_checked_and_drawn_apart_from_the_batches(tmp_path, random_dataset):
    plain = data.WindowSource(pixel_cfg(tmp_path, random_dataset)).batch(3)
    aug = data.WindowSource(pixel_cfg(tmp_path, random_dataset, "shift_max=4"))
    a, b = aug.batch(3), aug.batch(3)
    assert torch.equal(a["frames"], b["frames"])  # a pure function of (seed, rank, step)
    assert torch.equal(a["actions"], plain["actions"])  # the same windows, only translated
    assert not torch.equal(a["frames"], plain["frames"])
    with pytest.raises(ValueError, match="shift_max"):
        pixel_cfg(tmp_path, random_dataset, "shift_max=17")
    with pytest.raises(ValueError, match="shift_max"):
        make_config(["--preset", "profile", "shift_max=2", "dataset="])
