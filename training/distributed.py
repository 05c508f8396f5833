"""Device and process-group setup shared by the training entry points (``torchrun`` launches; DDP on gloo or NCCL)."""

from __future__ import annotations

import os

import torch


def setup_distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when there is one (under torchrun, the GPU of this process's LOCAL_RANK, so the
    processes of one machine do not share GPU 0), else CPU. A CUDA device without CUDA is an error."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)
