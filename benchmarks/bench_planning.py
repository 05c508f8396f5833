"""Seconds per 200-step episode of the planning agent with a small learned-model stand-in.

The stand-in has the cost of a CPU world model (random weights): a 4-layer strided CNN encoder to
a 64-d latent and a residual MLP predictor z + MLP([z, a]) of width 256 and depth 3. Planning time
is dominated by predictor calls and per-call overhead, so the script also prints the calls.

    python benchmarks/bench_planning.py                         # default planner, batch 1 and 8
    python benchmarks/bench_planning.py --planner-option num_samples=128 --replan-every 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from eval.metrics import machine_description
from eval.planning import parse_options
from eval.runner import run_episodes
from jepa_agent.agent import JEPAAgent
from jepa_agent.planners import PlannerConfig, make_planner


class StandInModel(nn.Module):
    """Random-weight world model with the interface and cost of a small CPU model."""

    def __init__(self, latent_dim: int = 64, width: int = 256, depth: int = 3, action_chunk: int = 1) -> None:
        super().__init__()
        self.latent_dim, self.action_chunk, self.probe = latent_dim, action_chunk, None
        chans = [2, 16, 32, 32, 32]
        self.encoder = nn.Sequential(
            *[m for i in range(4) for m in (nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1), nn.ReLU())],
            nn.Flatten(), nn.Linear(32 * 5 * 5, latent_dim),
        )
        layers, d_in = [], latent_dim + 2 * action_chunk
        for _ in range(depth - 1):
            layers += [nn.Linear(d_in, width), nn.GELU()]
            d_in = width
        self.predictor = nn.Sequential(*layers, nn.Linear(d_in, latent_dim))
        self.calls = 0

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() / 255.0
        return self.encoder(x.reshape(-1, 2, 65, 65)).reshape(*obs.shape[:-3], self.latent_dim)

    def unroll(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        k = self.action_chunk
        a = actions.reshape(actions.shape[0], -1, 2 * k)
        z, out = z0, [z0]
        for t in range(a.shape[1]):  # one predictor call per (chunk) step, batched over B
            z = z + self.predictor(torch.cat([z, a[:, t]], dim=-1))
            out.append(z)
        self.calls += a.shape[1]
        return torch.stack(out, dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--planner", default="mppi")
    p.add_argument("--planner-option", action="append", default=[])
    p.add_argument("--replan-every", type=int, default=None)
    p.add_argument("--action-chunk", type=int, default=1)
    p.add_argument("--batch-sizes", default="1,8")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"machine: {machine_description()}")
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        model = StandInModel(action_chunk=args.action_chunk).eval()
        planner = make_planner(args.planner, PlannerConfig(), **parse_options(args.planner_option))
        agent = JEPAAgent(model, planner=planner, replan_every=args.replan_every)
        t0 = time.perf_counter()
        records = run_episodes(agent, seed=0, indices=batch, batch_size=batch, progress=False)
        wall = time.perf_counter() - t0
        secs = np.array([r.seconds for r in records])
        print(f"batch {batch:3d}: {np.median(secs):.2f} s/episode (amortised; batch wall {wall:.1f} s), "
              f"predictor calls per batch {model.calls}, per replan-iteration batch rows "
              f"{batch * planner.config.num_samples}; config {planner.config}")


if __name__ == "__main__":
    main()
