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
