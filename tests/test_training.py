"""World-model training: config, loss falls, exact resume, NaN stop, Ctrl-C, errors, gates, unroll eval."""

import csv
import os
import signal

import numpy as np
import pytest
import torch

from jepa_agent.world_model import FORMAT_VERSION, WorldModel, load_world_model
from training import data
from training import world_model as tw
from tworooms_env import families
from training.diagnostics import collapse_warning, run_gates
from training.wm_config import PRESETS, TrainConfig, make_config


def tiny(tmp_path, *argv, **kw):
    return make_config(["--preset", "tiny", f"out_dir={tmp_path}", "tensorboard=false", "threads=1", *argv], **kw)


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_config_presets_overrides_and_errors():
    assert make_config([]).preset == "cpu" and make_config([]).encoder == "pixel"
    assert make_config(["--preset", "profile"]).encoder == "profile"
    ref = make_config(["--preset", "reference"])
    assert (ref.encoder, ref.predictor, ref.latent_dim, ref.cov_coeff, ref.std_coeff, ref.sim_coeff, ref.idm_coeff) == (
        "impala", "gru", 512, 8.0, 16.0, 12.0, 1.0)
    cfg = make_config(["--preset", "tiny", "--lr", "3e-4", "idm_coeff=0", "--compile=true"])
    assert cfg.lr == 3e-4 and cfg.idm_coeff == 0.0 and cfg.compile is True
    with pytest.raises(ValueError, match="unknown config key 'learning_rate'"):
        make_config(["--learning_rate", "1"])
    with pytest.raises(ValueError, match="'batch_size' expects an int"):
        make_config(["batch_size=big"])
    with pytest.raises(ValueError, match="unknown preset"):
        make_config(["--preset", "huge"])
    with pytest.raises(ValueError, match="rollout_steps"):
        make_config(["window=5", "rollout_steps=8"])
    with pytest.raises(ValueError, match="detour_rate is a share"):
        make_config(["detour_rate=1.5"])
    with pytest.raises(ValueError, match="must be <= 1"):
        make_config(["parallel_rate=0.6", "door_aim_rate=0.5"])
    assert set(PRESETS) == {"tiny", "cpu", "profile", "reference"}
    assert TrainConfig().model_config().latent_dim == 32


def test_main_reports_bad_keys(capsys):
    assert tw.main(["--nonsense", "1"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_loss_falls_on_tiny_model(tmp_path):
    cfg = tiny(tmp_path, "epochs=1", "steps_per_epoch=40", "log_every=5", "gate_samples=0", "batch_size=16", "lr=3e-3")
    fixed = data.WindowSource(cfg, rank=0).batch(10_000)  # a held-out batch
    layout = torch.stack([fixed["wall_x"], fixed["door_y"]], 1)
    torch.manual_seed(cfg.seed)
    before = WorldModel(cfg.model_config())
    e_before = float(before(fixed["profiles"], fixed["actions"])[1]["energy"])
    model, summary = tw.train(cfg, progress=False)
    assert summary["status"] == "finished"
    e_after = float(model(fixed["profiles"], fixed["actions"], fixed["positions"], layout)[1]["energy"])
    assert e_after < 0.8 * e_before
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert len(rows) == 8 and {"pred", "std", "cov", "sim", "idm", "emb_std", "eff_rank", "probe_rmse_px"} <= set(rows[0])
    assert load_world_model(tmp_path / "model.pt").latent_dim == cfg.latent_dim


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    full, _ = tw.train(tiny(tmp_path / "a", "gate_samples=0"), progress=False)
    part_cfg = tiny(tmp_path / "b", "gate_samples=0")
    _, summary = tw.train(part_cfg, stop_after=3, progress=False)  # stops mid-epoch, saves
    assert summary["status"] == "stopped" and torch.load(tmp_path / "b" / "last.pt", weights_only=True)["step"] == 3
    resumed, summary = tw.train(tiny(tmp_path / "b", "gate_samples=0", "--resume"), progress=False)
    assert summary["status"] == "finished" and summary["start_step"] == 3
    a, b = state(full), state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_rejects_other_formats_and_configs(tmp_path):
    tw.train(tiny(tmp_path, "gate_samples=0"), stop_after=2, progress=False)
    last = tmp_path / "last.pt"
    with pytest.raises(ValueError, match="model config differs"):
        tw.train(tiny(tmp_path, "gate_samples=0", "--resume", "latent_dim=16"), progress=False)
    ckpt = torch.load(last, weights_only=True)
    torch.save({**ckpt, "format_version": FORMAT_VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format_version"):
        tw.train(tiny(tmp_path, f"resume={tmp_path / 'future.pt'}"), progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        tw.train(tiny(tmp_path, f"resume={tmp_path / 'nothing.pt'}"), progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny(tmp_path, "gate_samples=0", "steps_per_epoch=2", "epochs=3")
    real = data.WindowSource.batch

    def poisoned(self, step):
        batch = real(self, step)
        if step == 3:
            batch["actions"] = batch["actions"] * float("nan")
        return batch

    monkeypatch.setattr(data.WindowSource, "batch", poisoned)
    with pytest.raises(FloatingPointError, match="step 3"):
        tw.train(cfg, progress=False)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["step"] == 2 and all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_ctrl_c_saves_and_stops(tmp_path, monkeypatch):
    cfg = tiny(tmp_path, "gate_samples=0", "steps_per_epoch=50", "epochs=1")
    real = data.WindowSource.batch

    def interrupting(self, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C
        return real(self, step)

    monkeypatch.setattr(data.WindowSource, "batch", interrupting)
    _, summary = tw.train(cfg, progress=False)
    assert summary["status"] == "interrupted"
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 3


def test_missing_dataset_is_collected_on_first_use(tmp_path, capsys):
    cfg = tiny(tmp_path, f"dataset={tmp_path / 'new.npz'}", "dataset_size=30", "gate_samples=0", "epochs=1",
               "steps_per_epoch=2")
    _, summary = tw.train(cfg, progress=False)
    assert summary["status"] == "finished" and (tmp_path / "new.npz").is_file()
    assert "not found: collecting 30 trajectories of tier 'navigate'" in capsys.readouterr().err


def test_frames_path_trains_too(tmp_path):
    cfg = tiny(tmp_path, "fast_profiles=false", "gate_samples=0", "epochs=1", "steps_per_epoch=2")
    batch = data.WindowSource(cfg).batch(0)
    assert batch["frames"].shape == (cfg.batch_size, cfg.window, 2, 65, 65)
    _, summary = tw.train(cfg, progress=False)
    assert summary["status"] == "finished"


def test_gates_and_collapse_warning():
    model = WorldModel(make_config(["--preset", "tiny"]).model_config())
    gates = run_gates(model, n=16, seed=0)
    for key in ("door_probe_err", "wall_pass_probe", "wall_pass_latent", "door_block_probe", "door_block_latent",
                "rollout_err_t8", "rollout_err_t16", "emb_std", "eff_rank", "pos_probe_err", "dist_rank"):
        assert key in gates and np.isfinite(gates[key])
    assert 0 <= gates["wall_pass_probe"] <= 1
    assert collapse_warning(1.0, 5.0, make_config([])) is None
    message = collapse_warning(0.001, 1.0, make_config(["idm_coeff=0"]))
    assert "idm_coeff=0" in message


def test_unroll_eval_writes_outputs(tmp_path):
    from eval.unroll import unroll_eval

    model = WorldModel(make_config(["--preset", "tiny"]).model_config())
    out = unroll_eval(model, tmp_path, n=4, horizon=8, seed=0)
    assert len(out["pos_err"]) == 8 // model.action_chunk + 1 and out["pos_err"][0] >= 0
    assert out["steps"][-1] == 8
    assert (tmp_path / "unroll_error.png").stat().st_size > 0
    assert (tmp_path / "unroll.gif").stat().st_size > 0
    assert (tmp_path / "unroll_eval.json").is_file()


def test_planner_like_window_families():
    from tworooms_env import core
    from tworooms_env.random_walk import WalkConfig

    rng = np.random.default_rng(0)
    n = 600
    traj = families.segment_trajectories(rng, n, 17, WalkConfig(length=17), parallel_share=0.5, door_share=0.5)
    pos = traj.positions.astype(np.float64)
    wall_x, door_y = traj.wall_x.astype(np.float64), traj.door_y.astype(np.float64)
    assert np.isfinite(pos).all() and traj.actions.shape == (n, 16, 2)
    assert (np.linalg.norm(traj.actions, axis=-1) <= core.MAX_STEP_NORM + 1e-5).all()
    assert core.is_free(pos.reshape(-1, 2), np.repeat(wall_x, 17), np.repeat(door_y, 17)).all()
    # the transitions are the env's own dynamics
    nxt, _ = core.step_positions(pos[:, 0], traj.actions[:, 0].astype(np.float64), wall_x, door_y)
    assert np.allclose(nxt, pos[:, 1], atol=1e-3)
    # door-aimed windows cross the wall far more often than uniform ones (~10 % of windows)
    crossed = (pos[:, 0, 0] - wall_x) * (pos[:, -1, 0] - wall_x) < 0
    assert crossed.mean() > 0.2
    # parallel windows: many first moves run along the wall (|dy| >> |dx|)
    a0 = traj.actions[:, 0]
    assert (np.abs(a0[:, 1]) > 3 * np.abs(a0[:, 0])).mean() > 0.3


def test_detour_windows_follow_the_door_route():
    from tworooms_env import core
    from tworooms_env.random_walk import WalkConfig

    rng = np.random.default_rng(1)
    n, length = 300, 41
    traj = families.detour_trajectories(rng, n, length, WalkConfig(length=length))
    pos = traj.positions.astype(np.float64)
    wall_x, door_y = traj.wall_x.astype(np.float64), traj.door_y.astype(np.float64)
    assert traj.positions.shape == (n, length, 2) and traj.actions.shape == (n, length - 1, 2)
    assert (np.linalg.norm(traj.actions, axis=-1) <= core.MAX_STEP_NORM + 1e-5).all()
    assert core.is_free(pos.reshape(-1, 2), np.repeat(wall_x, length), np.repeat(door_y, length)).all()
    nxt, _ = core.step_positions(pos[:, :-1].reshape(-1, 2), traj.actions.reshape(-1, 2).astype(np.float64),
                                 np.repeat(wall_x, length - 1), np.repeat(door_y, length - 1))
    assert np.allclose(nxt, pos[:, 1:].reshape(-1, 2), atol=1e-3)  # the env's own dynamics
    crossed = (pos[:, 0, 0] - wall_x) * (pos[:, -1, 0] - wall_x) < 0
    assert crossed.mean() > 0.85  # goal-directed: nearly every window goes through the door
    # and the share is honoured inside the planner-like windows
    mixed = families.segment_trajectories(rng, 40, length, WalkConfig(length=length), detour_share=0.25)
    assert len(mixed) == 40


def test_door_route_waypoint_goes_round_through_the_door():
    from tworooms_env import core

    wall_x, door_y = 30, 20
    pos = np.array([[20.0, 50.0], [20.0, 21.0], [29.0, 20.5], [40.0, 50.0], [28.5, 40.0]])
    goal = np.array([[45.0, 50.0]] * 5)
    target = core.door_route_waypoint(pos, goal, wall_x, door_y, standoff=3.0, align=2.0)
    assert np.allclose(target[0], [27.0, 20.0])  # far from the door: to the point in front of it
    assert np.allclose(target[1], [33.0, 20.0])  # lined up: to the point behind it
    assert np.allclose(target[2], [33.0, 20.0])  # in the doorway: through
    assert np.allclose(target[3], goal[3])  # past the wall: to the goal
    assert np.allclose(target[4], [27.0, 20.0])  # pressed against the wall beside the door: round first
    shifted = core.door_route_waypoint(pos[:1], goal[:1], wall_x, door_y, standoff=5.0, door_offset=2.0)
    assert np.allclose(shifted[0], [25.0, 22.0])
