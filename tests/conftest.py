import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

# Tests use tiny networks: one thread avoids oversubscription (2 threads on a busy 2-core machine
# made small models ~15x slower); DDP tests start their own processes.
torch.set_num_threads(1)
