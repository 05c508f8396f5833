"""DDP: two CPU processes (gloo) train the tiny preset; the replicas must stay identical."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from training.wm_config import make_config
    from training.world_model import train

    cfg = make_config(["--preset", "tiny", f"out_dir={out_dir}", "gate_samples=0", "tensorboard=false",
                       "threads=1", "epochs=1", "steps_per_epoch=3"])
    model, summary = train(cfg, progress=False)
    torch.save(model.state_dict(), os.path.join(out_dir, f"replica{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_ddp_replicas_stay_identical(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed not available")
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    a = torch.load(tmp_path / "replica0.pt", weights_only=True)
    b = torch.load(tmp_path / "replica1.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # They trained: the weights moved away from a fresh model's.
    from training.wm_config import make_config
    from jepa_agent.world_model import WorldModel

    torch.manual_seed(0)
    fresh = WorldModel(make_config(["--preset", "tiny"]).model_config()).state_dict()
    assert any(not torch.equal(a[k], fresh[k]) for k in a if a[k].is_floating_point())
    assert (tmp_path / "last.pt").is_file()  # rank 0 saved the checkpoint


def _video_worker(rank: int, world: int, port: int, out_dir: str, mnist_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from jepa_agent.video import train as vj

    made = []

    class Recorded(vj.VideoJEPA):  # keeps a handle on each process's replica
        def __init__(self, cfg):
            super().__init__(cfg)
            made.append(self)

    vj.VideoJEPA = Recorded
    args = dict(out_dir=out_dir, iterations="4", batch_size="4", val_sequences="4", eval_batch="8",
                device="cpu", threads="1", mnist_dir=mnist_dir, log_every="2")  # fmt: skip
    try:
        vj.train(vj.make_config("tiny", args | {"batch_size": "3"}), progress=False)
    except ValueError as e:  # every process refuses a batch it cannot share evenly
        assert "divisible by the number of processes, 2" in str(e)
    else:
        raise AssertionError("batch_size=3 over 2 processes was accepted")
    results = vj.train(vj.make_config("tiny", args), progress=False)
    assert bool(results) == (rank == 0), results  # only process 0 evaluates
    params = {k: v.detach().clone() for k, v in made[-1].named_parameters()}
    torch.save(params, os.path.join(out_dir, f"video_replica{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_video_ddp_trains_one_model_over_two_processes(tmp_path):
    """torchrun-style video training: each process takes half of every batch; process 0 checkpoints
    and evaluates; the parameters stay identical across processes, and they trained."""
    from jepa_agent.video.moving_mnist import DEFAULT_MNIST_DIR
    from jepa_agent.video import train as vj

    if not any(DEFAULT_MNIST_DIR.glob("t10k-images-idx3-ubyte*")):
        pytest.skip(f"MNIST idx files not found in {DEFAULT_MNIST_DIR}")
    mp.spawn(_video_worker, args=(2, _free_port(), str(tmp_path), str(DEFAULT_MNIST_DIR)), nprocs=2, join=True)
    a = torch.load(tmp_path / "video_replica0.pt", weights_only=True)
    b = torch.load(tmp_path / "video_replica1.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    saved, state = vj.load_checkpoint(tmp_path / "checkpoint.pt")
    assert all(torch.equal(p, a[k]) for k, p in saved.named_parameters())  # process 0 checkpointed its replica
    torch.manual_seed(0)
    fresh = dict(vj.VideoJEPA(saved.cfg).named_parameters())
    assert any(not torch.equal(fresh[k], a[k]) for k in a)
    assert (tmp_path / "results.json").is_file() and state["iteration"] == 4


def test_resolve_device_is_shared_and_picks_the_local_gpu(monkeypatch):
    """One device rule for every entry point: under torchrun, 'auto' is this process's GPU (LOCAL_RANK)."""
    from jepa_agent.image import train as image_jepa
    from jepa_agent.video import train as video_jepa
    from training import distributed, world_model

    assert image_jepa.resolve_device is video_jepa.resolve_device is world_model.resolve_device is distributed.resolve_device
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert distributed.resolve_device("auto") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        distributed.resolve_device("cuda:0")
