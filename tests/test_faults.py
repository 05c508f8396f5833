"""Fault injection at every entry point: bad frames, damaged checkpoints, out-of-range configs, bad
datasets and CLI arguments give one clear error; SIGINT / SIGTERM save a resumable state and lose nothing."""

import csv
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import tworooms_env  # noqa: F401  (registers TwoRooms-v0)
from jepa_agent.agent import JEPAAgent
from jepa_agent.analytic import TruePositionModel
from jepa_agent.planners import MPPIPlanner, PlannerConfig
from jepa_agent.validation import check_frames, state_checksum
from jepa_agent.world_model import DEFAULT_CHECKPOINT, ModelConfig, WorldModel, checkpoint_dict, load_world_model
from training import data
from training import world_model as tw
from training.interrupt import atomic_save, truncate_csv, truncate_jsonl
from training.wm_config import make_config
from tworooms_env import core
from tworooms_env import dataset as ds
from tworooms_env import random_walk as rw

ROOT = Path(__file__).resolve().parents[1]
CHEAP = PlannerConfig(num_samples=32, num_elites=4, iterations_first=2, iterations_later=1, horizon=20,
                      segment_length=10, seed=3)
TINY_MODEL = dict(latent_dim=12, layout_dim=4, encoder_hidden=16, predictor_hidden=16, probe_hidden=8, idm_hidden=8,
                  rollout_steps=8, action_chunk=2)


def agent():
    return JEPAAgent(TruePositionModel(walls=True), planner=MPPIPlanner(CHEAP))


def task():
    env = gym.make("TwoRooms-v0")
    obs, info = env.reset(seed=5)
    return obs, info["goal_obs"]


# ----------------------------------------------------------------------------- frames
def test_float_goal_in_0_255_is_an_error_that_suggests_uint8():
    obs, goal = task()
    with pytest.raises(ValueError, match="goal is float with values up to 255.*uint8"):
        agent().act(obs, goal.astype(np.float32))
    a = agent().act(obs, goal.astype(np.float32) / 255)  # float in [0, 1] is accepted
    assert np.isfinite(a).all()
    from eval.baselines.gcbc_cnn import GCBCAgent

    gcbc = GCBCAgent.from_pretrained(ROOT / "eval" / "baselines" / "weights" / "gcbc.pt")
    with pytest.raises(ValueError, match="goal is float with values up to 255"):
        gcbc.act(obs, goal.astype(np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_frames_are_errors_before_planning(bad):
    obs, goal = task()
    g = goal.astype(np.float32) / 255
    g[0, 30, 30] = bad
    with pytest.raises(ValueError, match="goal holds NaN or infinite"):
        agent().act(obs, g)
    o = torch.as_tensor(obs, dtype=torch.float32) / 255
    o[1, 0, 0] = bad
    with pytest.raises(ValueError, match="obs holds NaN or infinite"):
        agent().act_batch(o[None], torch.as_tensor(goal)[None])


def test_frame_shape_dtype_and_negative_values():
    obs, goal = task()
    with pytest.raises(ValueError, match="shape"):
        check_frames(obs[:, :64], "obs", batched=False)
    with pytest.raises(TypeError, match="uint8"):
        agent().act_batch(obs[None].astype(np.int32), goal[None])
    with pytest.raises(ValueError, match="down to -1"):
        agent().act_batch(obs[None] / 255.0 - 1.0, goal[None])
    with pytest.raises(TypeError, match="numpy array"):
        agent().act_batch([obs], [goal])


def test_reset_reseeds_the_planner():
    obs, goal = task()
    ag = agent()
    first = [ag.act(obs, goal) for _ in range(3)]
    ag.reset()
    again = [ag.act(obs, goal) for _ in range(3)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))


# ------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(**TINY_MODEL))
    path = tmp_path_factory.mktemp("ckpt") / "wm.pt"
    torch.save(checkpoint_dict(model), path)
    return path


def _damaged(path: Path, tmp: Path, kind: str) -> Path:
    data = path.read_bytes()
    out = tmp / f"{kind}.pt"
    if kind == "empty":
        out.write_bytes(b"")
    elif kind == "text":
        out.write_text("epoch,loss\n1,0.5\n")
    elif kind == "random":
        out.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        out.write_bytes(data[: len(data) // 2])
    elif kind == "bitflip":  # one bit in the middle of the largest tensor's stored bytes
        with zipfile.ZipFile(path) as z:
            info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        h = info.header_offset  # local header: 30 bytes, then the name and the extra field, then the data
        start = h + 30 + int.from_bytes(data[h + 26 : h + 28], "little") + int.from_bytes(data[h + 28 : h + 30], "little")
        pos = start + info.file_size // 2
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        out.write_bytes(bytes(flipped))
    return out


@pytest.mark.parametrize("kind,match", [("empty", "is empty"), ("text", "is a text file"),
                                        ("random", "binary data without a zip header"), ("truncated", "truncated or corrupt"),
                                        ("bitflip", "corrupt")])
def test_damaged_checkpoints_give_one_clear_error(tiny_checkpoint, tmp_path, kind, match):
    bad = _damaged(tiny_checkpoint, tmp_path, kind)
    with pytest.raises(ValueError, match=match) as err:
        load_world_model(bad)
    assert str(bad) in str(err.value) and "weights_only=False" not in str(err.value)
    with pytest.raises(ValueError, match=match):
        JEPAAgent.from_pretrained(str(bad))


def test_checksum_stored_and_old_checkpoints_still_load(tiny_checkpoint, tmp_path):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    assert ckpt["checksum"] == state_checksum(ckpt["model"])
    ckpt["model"]["probe.net.0.bias"][0] += 1.0  # a silent change in the weights
    torch.save(ckpt, tmp_path / "changed.pt")
    with pytest.raises(ValueError, match="do not match the checksum"):
        load_world_model(tmp_path / "changed.pt")
    shipped = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    assert shipped["checksum"] == state_checksum(shipped["model"])
    del shipped["checksum"]  # as checkpoints written before checksums existed
    torch.save(shipped, tmp_path / "old.pt")
    model = load_world_model(tmp_path / "old.pt")
    assert all(torch.equal(v, shipped["model"][k]) for k, v in model.state_dict().items())
    from eval.baselines.gcbc_cnn import load_checkpoint

    load_checkpoint(ROOT / "eval" / "baselines" / "weights" / "gcbc.pt")


def test_nan_weights_are_an_error_at_load(tmp_path):
    model = WorldModel(ModelConfig(**TINY_MODEL))
    with torch.no_grad():
        next(model.encoder.parameters()).view(-1)[0] = float("nan")
    torch.save(checkpoint_dict(model), tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        load_world_model(tmp_path / "nan.pt")


def test_eval_clis_print_one_error_line(tmp_path, capsys):
    from eval import compare, planning

    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    for main, args in ((planning.main, ["--checkpoint", str(bad), "--episodes", "1"]),
                       (compare.main, ["--methods", "jepa", "--checkpoint", str(bad), "--out-dir", str(tmp_path / "c")]),
                       (planning.main, ["--episodes", "0"]), (planning.main, ["--device", "tpu", "--episodes", "1"]),
                       (planning.main, ["--planner-option", "bogus=1", "--episodes", "1"])):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and err.count("\n") == 1, err
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench_rollout_drift", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # the real command line: no traceback
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr and str(bad) in r.stderr


def test_bench_rollout_drift_help(capsys):
    from benchmarks import bench_rollout_drift

    with pytest.raises(SystemExit) as exit_:
        bench_rollout_drift.main(["--help"])
    assert exit_.value.code == 0 and "checkpoints" in capsys.readouterr().out


# ---------------------------------------------------------------------------- configs
@pytest.mark.parametrize("arg,match", [("lr=0", "lr must be > 0"), ("lr=-1", "lr must be > 0"),
                                       ("grad_clip=-1", "grad_clip must be >= 0"),
                                       ("warmup_frac=2", r"warmup_frac must be in \[0, 1\)"),
                                       ("max_minutes=-1", "max_minutes must be >= 0"),
                                       ("threads=-3", "threads must be >= 0"), ("device=tpu", "device must be"),
                                       ("lr=nan", "lr must be > 0")])
def test_world_model_config_ranges(tmp_path, capsys, arg, match):
    with pytest.raises(ValueError, match=match):
        make_config(["--preset", "tiny", arg])
    out = tmp_path / "never"
    assert tw.main(["--preset", "tiny", f"out_dir={out}", arg]) == 2
    assert capsys.readouterr().err.startswith("error: ") and not out.exists()


def test_video_and_image_config_ranges(tmp_path, capsys):
    from jepa_agent.image import train as ij
    from jepa_agent.video import train as vj

    for arg, match in (("lr=-1", "lr must be > 0, got -1.0"), ("max_minutes=-1", "max_minutes"),
                       ("threads=-3", "threads"), ("device=tpu", "device must be")):
        with pytest.raises(ValueError, match=match):
            vj.make_config("tiny", dict([arg.split("=")]))
        out = tmp_path / "v"
        assert vj.cli(["--preset", "tiny", f"out_dir={out}", arg]) == 2 and not out.exists()
        assert capsys.readouterr().err.startswith("error: ")
    for arg, match in (("lr=-1", "lr must be > 0, got -1.0"), ("threads=-3", "threads must be >= 0"),
                       ("device=tpu", "device must be"), ("regulariser=barlow", "'regulariser' expects one of sigreg, vicreg"),
                       ("epochs=x", "'epochs' expects an int")):
        out = tmp_path / "i"
        assert ij.cli(["--preset", "tiny", f"out_dir={out}", arg]) == 2 and not out.exists()
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err and match in err, err


def test_failed_run_leaves_no_empty_out_dir(tmp_path, capsys):
    out = tmp_path / "wm"
    (tmp_path / "bad.npz").write_text("not a dataset")
    assert tw.main(["--preset", "tiny", f"out_dir={out}", f"dataset={tmp_path / 'bad.npz'}"]) == 1
    assert "bad.npz" in capsys.readouterr().err and not out.exists()


def test_non_finite_loss_stops_every_trainer(tmp_path, monkeypatch, capsys):
    from jepa_agent.image.models import JointEmbeddingLoss
    from jepa_agent.image import train as ij

    real = WorldModel.energy
    monkeypatch.setattr(WorldModel, "energy", lambda self, *a, **k: (lambda t: (t[0] * np.nan, t[1]))(real(self, *a, **k)))
    assert tw.main(["--preset", "tiny", f"out_dir={tmp_path / 'wm'}", "--threads", "1"]) == 1
    assert "loss is not finite" in capsys.readouterr().err
    real_loss = JointEmbeddingLoss.forward

    def nan_loss(self, z1, z2):
        terms = real_loss(self, z1, z2)
        return {**terms, "loss": terms["loss"] * float("nan")}

    monkeypatch.setattr(JointEmbeddingLoss, "forward", nan_loss)
    assert ij.cli(["--preset", "tiny", f"out_dir={tmp_path / 'img'}", "threads=1", "floors=false"]) == 1
    assert "loss is not finite" in capsys.readouterr().err
    from jepa_agent.video.models import VideoJEPA
    from jepa_agent.video import train as vj
    from jepa_agent.video.moving_mnist import DEFAULT_MNIST_DIR

    if Path(DEFAULT_MNIST_DIR).is_dir():
        real_video = VideoJEPA.forward

        def nan_video(self, x, det_target):
            out = real_video(self, x, det_target)
            return {**out, "loss": out["loss"] * float("nan")}

        monkeypatch.setattr(VideoJEPA, "forward", nan_video)
        assert vj.cli(["--preset", "tiny", "--no-progress", f"out_dir={tmp_path / 'vid'}", "threads=1", "device=cpu",
                       f"mnist_dir={DEFAULT_MNIST_DIR}", "val_sequences=4"]) == 1
        assert "loss is not finite" in capsys.readouterr().err


# ----------------------------------------------------------------------- interruptions
WM_ARGS = ["--preset", "tiny", "tensorboard=false", "threads=1", "gate_samples=0", "epochs=2", "steps_per_epoch=6"]
SIGTERM_AT_STEP_4 = """
import os, signal, sys
from training import data
from training import world_model as tw
real = data.WindowSource.batch
def batch(self, step):
    if step == 4:
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler or `kill` would
    return real(self, step)
data.WindowSource.batch = batch
sys.exit(tw.main(sys.argv[1:]))
"""


def test_sigterm_saves_and_the_resumed_run_equals_the_uninterrupted_one(tmp_path, capsys):
    split = tmp_path / "split"
    r = subprocess.run([sys.executable, "-c", SIGTERM_AT_STEP_4, *WM_ARGS, f"out_dir={split}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 143, r.stderr
    assert "SIGTERM" in r.stderr and torch.load(split / "last.pt", weights_only=True)["step"] == 5
    assert not (split / "model.pt").exists() and not list(split.glob(".*tmp*"))
    with open(split / "log.csv", "a") as f:  # rows logged after the checkpoint, then a hard kill
        f.write("6,0.1\n7,0.1\n")
    assert tw.main([*WM_ARGS, f"out_dir={split}", "--resume"]) == 0
    assert tw.main([*WM_ARGS, f"out_dir={tmp_path / 'full'}"]) == 0
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["model"]
    b = torch.load(split / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-exact
    steps = lambda p: [int(row["step"]) for row in csv.DictReader(open(p / "log.csv"))]  # noqa: E731
    assert steps(split) == steps(tmp_path / "full") == [2, 4, 6, 8, 10, 12]
    assert tw.main([*WM_ARGS, f"out_dir={tmp_path / 'fresh'}", "--resume", "epochs=1"]) == 0
    assert "nothing to resume from" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_a_resumable_checkpoint(tmp_path, monkeypatch):
    real = data.WindowSource.batch

    def batch(self, step):
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, step)

    monkeypatch.setattr(data.WindowSource, "batch", batch)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert tw.main([*WM_ARGS, f"out_dir={tmp_path}"]) == 130
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 2 and not (tmp_path / "model.pt").exists()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # the handlers are restored


def test_video_sigterm_resumes_exactly(tmp_path, monkeypatch):
    from jepa_agent.video import train as vj
    from jepa_agent.video.moving_mnist import DEFAULT_MNIST_DIR

    if not Path(DEFAULT_MNIST_DIR).is_dir():
        pytest.skip("MNIST idx files not found")
    args = dict(iterations="6", batch_size="4", val_sequences="4", eval_batch="8", device="cpu", threads="1",
                mnist_dir=str(DEFAULT_MNIST_DIR), log_every="1")
    with pytest.raises(FileNotFoundError, match="nothing to resume from"):
        vj.main(["--preset", "tiny", "--resume", "--no-progress", f"out_dir={tmp_path / 'none'}"])
    vj.train(vj.make_config("tiny", args | {"out_dir": str(tmp_path / "full")}), progress=False)
    real = vj.train_batch

    def batch(digits, cfg, iteration):
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(digits, cfg, iteration)

    monkeypatch.setattr(vj, "train_batch", batch)
    paused = vj.train(vj.make_config("tiny", args | {"out_dir": str(tmp_path / "split")}), progress=False)
    assert paused["paused_at"] == 3 and paused["exit_code"] == 143
    monkeypatch.setattr(vj, "train_batch", real)
    assert vj.main(["--preset", "tiny", "--resume", "--no-progress",
                    *[f"{k}={v}" for k, v in (args | {"out_dir": str(tmp_path / "split")}).items()]]) == 0
    a, _ = vj.load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b, _ = vj.load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    rows = [int(r["iteration"]) for r in csv.DictReader(open(tmp_path / "split" / "log.csv"))]
    assert rows == list(range(1, 7))


def test_image_sigterm_mid_epoch_resumes_exactly(tmp_path, monkeypatch):
    from jepa_agent.image.models import JointEmbeddingLoss
    from jepa_agent.image import train as ij

    common = ["--preset", "tiny", "epochs=2", "eval_every=5", "threads=1", "floors=false"]
    full = ij.main([*common, f"out_dir={tmp_path / 'full'}"])
    real, calls = JointEmbeddingLoss.forward, [0]

    def counting(self, z1, z2):
        calls[0] += 1
        if calls[0] == 2:  # during the second step of the first epoch
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, z1, z2)

    monkeypatch.setattr(JointEmbeddingLoss, "forward", counting)
    paused = ij.main([*common, f"out_dir={tmp_path / 'split'}"])
    assert paused["exit_code"] == 143 and paused["stopped_at_epoch"] == 0
    assert torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["step_in_epoch"] == 2
    monkeypatch.setattr(JointEmbeddingLoss, "forward", real)
    resumed = ij.main([*common, f"out_dir={tmp_path / 'split'}", "--resume"])
    assert [r["loss"] for r in resumed["history"]] == pytest.approx([r["loss"] for r in full["history"]], rel=1e-6)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FileNotFoundError, match="nothing to resume from"):
        ij.main([*common, f"out_dir={tmp_path / 'none'}", "--resume"])


def test_collect_interrupted_while_saving_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    from tworooms_env.collect import main as collect_main

    real = ds._write_npz

    def dying(f, arrays):
        real(f, dict(list(arrays.items())[:2]))  # half the file is on disk when the signal comes
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ds, "_write_npz", dying)
    out = tmp_path / "d.npz"
    assert collect_main(["--num-trajectories", "20", "--no-progress", "--dataset", str(out)]) == 143
    assert list(tmp_path.iterdir()) == [] and "SIGTERM" in capsys.readouterr().err


def test_collect_sigterm_saves_finished_chunks_and_resume_gives_the_same_bytes(tmp_path, monkeypatch, capsys):
    from tworooms_env import collect as col

    args = ["--num-trajectories", "50", "--chunk-size", "10", "--length", "12", "--window", "5", "--no-progress"]
    assert col.main([*args, "--dataset", str(tmp_path / "full.npz")]) == 0
    with pytest.raises(FileNotFoundError, match="nothing to resume from"):
        col._run(col.CLI.parse([*args, "--dataset", str(tmp_path / "x.npz"), "--resume"]))
    real, calls = col.generate_tier, [0]

    def dying(rng, n, config, layouts=None):
        calls[0] += 1
        if calls[0] == 3:  # while the third chunk is generated
            os.kill(os.getpid(), signal.SIGTERM)
        return real(rng, n, config, layouts)

    monkeypatch.setattr(col, "generate_tier", dying)
    out = tmp_path / "split.npz"
    assert col.main([*args, "--dataset", str(out)]) == 143
    assert not out.exists() and len(ds.load_trajectories(tmp_path / "split.resume.npz")[0]) == 20
    assert "continue with the same arguments and --resume" in capsys.readouterr().err
    assert col.main([*args, "--seed", "1", "--dataset", str(out), "--resume"]) == 2  # other arguments: refused
    assert "other arguments" in capsys.readouterr().err
    monkeypatch.setattr(col, "generate_tier", real)
    assert col.main([*args, "--dataset", str(out), "--resume"]) == 0
    assert out.read_bytes() == (tmp_path / "full.npz").read_bytes() and not (tmp_path / "split.resume.npz").exists()


def test_collect_checks_minari_id_and_install_before_collecting(tmp_path, monkeypatch, capsys):
    from tworooms_env.collect import main as collect_main

    huge = ["--num-trajectories", "1000000000", "--no-progress", "--dataset", str(tmp_path / "d.npz")]
    if __import__("importlib").util.find_spec("minari") is not None:
        for bad in ("no version", "tworooms/x", "x-v"):
            assert collect_main([*huge, "--minari-id", bad]) == 2  # returns at once: nothing collected
            assert "malformed Minari dataset id" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "minari", None)  # as if minari were not installed
    assert collect_main([*huge, "--minari-id", "tworooms/x-v0"]) == 2
    assert "pip install" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_minari_export_keeps_the_env_spec(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    pytest.importorskip("h5py")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    from tworooms_env.minari_export import export_minari

    export_minari(rw.generate_trajectories(np.random.default_rng(0), 3, rw.WalkConfig(length=8)), "tworooms/spec-v0")
    env = minari.load_dataset("tworooms/spec-v0").recover_environment()
    assert env.spec.id == "TwoRooms-v0" and env.spec.max_episode_steps == 200


def test_atomic_save_and_log_truncation_leave_nothing_behind(tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"x": Boom()}, tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "log.csv").write_text("step,loss\n2,1\n4,1\n6,1\n6")
    assert truncate_csv(tmp_path / "log.csv", 4) == 2
    assert (tmp_path / "log.csv").read_text().split() == ["step,loss", "2,1", "4,1"]
    (tmp_path / "e.jsonl").write_text('{"iteration": 3}\n{"iteration": 9}\n')
    assert truncate_jsonl(tmp_path / "e.jsonl", 5) == 1


# ------------------------------------------------------------------- datasets, videos
def _raw_file(path: Path, traj) -> Path:
    meta = {"format": ds.FORMAT_NAME, "format_version": ds.FORMAT_VERSION,
            "num_trajectories": len(traj.positions), "length": traj.positions.shape[1]}
    import json

    with open(path, "wb") as f:  # bypasses save_trajectories' own check, as a foreign writer would
        ds._write_npz(f, {"metadata": np.frombuffer(json.dumps(meta).encode(), np.uint8),
                          **{k: getattr(traj, k) for k in ds._ARRAYS}})
    return path


@pytest.mark.parametrize("fault,match", [("outside", "positions outside the arena"), ("long", "actions beyond the bound"),
                                         ("nan", "NaN or infinity")])
def test_dataset_faults_are_errors_at_load(tmp_path, fault, match):
    traj = rw.generate_trajectories(np.random.default_rng(0), 6, rw.WalkConfig(length=8))
    if fault == "outside":
        traj.positions[2, 3] = [70.0, 30.0]
    elif fault == "long":
        traj.actions[1, 2] = [3.0, 3.0]
    else:
        traj.actions[0, 0, 1] = np.nan
    path = _raw_file(tmp_path / "bad.npz", traj)
    with pytest.raises(ds.DatasetFormatError, match=match):
        ds.load_trajectories(path)
    with pytest.raises(ds.DatasetFormatError, match=match):
        ds.save_trajectories(tmp_path / "out.npz", traj)
    assert not (tmp_path / "out.npz").exists()


def test_record_episode_is_bounded_and_checks_the_extension_first(tmp_path):
    from tworooms_env.env import TwoRoomsEnv
    from tworooms_env.rendering import record_episode

    env = TwoRoomsEnv(render_mode="rgb_array")  # no TimeLimit wrapper: never truncates by itself
    out = record_episode(env, lambda obs, info: np.zeros(2, np.float32), seed=0, max_steps=7)
    assert out["steps"] == 7 and out["frames"].shape[0] == 8

    def never(obs, info):
        raise AssertionError("the episode ran before the path was checked")

    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        record_episode(env, never, path=tmp_path / "episode.avi", seed=0)
