"""Why an offline GCRL baseline fails: its value, or the policy extracted from it.

    python -m eval.baselines.inspect --checkpoint outputs/baselines/gcivl_random/model.pt \
        --dataset data/tworooms_random.npz --tasks 100 --seed 2001 --threads 1 --json inspect.json

Two measurements, each on what a trained checkpoint holds:

1. **Value calibration.** Pairs (s, g) of states of the dataset's train split in the same layout;
   the oracle's steps d from s to g (``eval.baselines.scripted.oracle_steps``: true dynamics,
   privileged) give the optimal discounted value -(1 - gamma^d) / (1 - gamma). Reported: the
   correlation of the method's V(s, g) with it, over all pairs and over pairs in different rooms
   (the door), and the mean of both per bin of d. A value that ranks states well (correlation near
   1) can be followed; the behaviour's own value is about twice as far on random walks.
2. **Greedy on the critic.** A policy with no actor: each step, of 48 candidate actions (24
   directions at full and half speed), the one the critic scores best; ``Q(s, a, g)`` for methods
   with an action value (GCIQL: min_j Qbar_j; CRL: phi(s, a)^T psi(g)), ``V(s', g)`` with s' from the
   true one-step dynamics (privileged lookahead) for the value-only methods (GCIVL, HIQL). Run on
   the same PROTOCOL tasks as the method's own actor. Greedy far above the actor: policy
   extraction is the limit; both low: the value is.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from eval.baselines.offline import OfflineAgent, frame_features, load_dataset, load_method, profile_features_from_positions
from eval.baselines.scripted import oracle_steps
from tworooms_env import core
from tworooms_env.cli import ConfigCLI, run_cli

_ANGLES = np.linspace(0.0, 2.0 * np.pi, 24, endpoint=False)
CANDIDATES = np.concatenate([s * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], 1) for s in (1.0, 0.5)]).astype(np.float32)
BINS = (0, 5, 10, 20, 30, 60, 201)  # oracle steps


def state_value(method) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """V(s, g) [B] of a value-based method, None for methods without one (GCBC, CRL)."""
    name = method.name
    if name == "gciql":
        return lambda s, g: method.value(s, g).squeeze(-1)
    if name == "gcivl":
        return method.value
    if name == "hiql":
        return method.v
    return None


def action_value(method) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """Q(s, a, g) [B] of a method with an action value (GCIQL, CRL), else None."""
    if method.name == "gciql":
        return lambda s, g, a: method.target_q(s, g, a)
    if method.name == "crl":
        return lambda s, g, a: method.critic(s, a, g)
    return None


@torch.no_grad()
def value_calibration(method, data, n_pairs: int, rng: np.random.Generator, gamma: float) -> dict[str, Any] | None:
    value = state_value(method)
    if value is None:
        return None
    traj = data.traj
    n, length = traj.positions.shape[:2]
    i, t = rng.integers(0, n, n_pairs), rng.integers(0, length, n_pairs)
    j, u = data.groups.draw(rng, i), rng.integers(0, length, n_pairs)
    ps, pg, wx, dy = traj.positions[i, t], traj.positions[j, u], traj.wall_x[i], traj.door_y[i]
    steps = oracle_steps(ps, pg, wx, dy, max_steps=BINS[-1] - 1)  # all routes in lockstep
    v = np.concatenate([value(torch.from_numpy(profile_features_from_positions(ps[k], wx[k], dy[k])),
                              torch.from_numpy(profile_features_from_positions(pg[k], wx[k], dy[k]))).numpy()
                        for k in np.array_split(np.arange(n_pairs), max(1, n_pairs // 1000))])
    reached = steps > 0  # pairs the oracle's route does not finish (goals tucked against a wall) are left out
    v, d, cross = v[reached], steps[reached].astype(np.float64), ((ps[:, 0] < wx) != (pg[:, 0] < wx))[reached]
    optimal = -(1.0 - gamma ** d) / (1.0 - gamma)
    rows = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        k = (d >= lo) & (d < hi)
        if k.any():
            rows.append({"oracle_steps": f"{lo}-{hi - 1}", "pairs": int(k.sum()), "value_mean": float(v[k].mean()),
                         "optimal_mean": float(optimal[k].mean()), "cross_room_share": float(cross[k].mean())})
    corr = lambda a, b: float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and np.std(a) > 0 and np.std(b) > 0 else float("nan")
    return {"pairs": int(reached.sum()), "pairs_unreached": int((~reached).sum()), "corr_all": corr(v, optimal), "corr_cross_room": corr(v[cross], optimal[cross]),
            "corr_same_room": corr(v[~cross], optimal[~cross]), "bins": rows}


class CriticGreedy:
    """The no-actor policy of the module doc (item 2), behind the evaluation's policy interface.

    Value-only methods read the true positions in ``infos`` for their one-step lookahead
    (privileged); methods with Q(s, a, g) read only the frames."""

    def __init__(self, method) -> None:
        self.method, self.q, self.v = method, action_value(method), state_value(method)
        if self.q is None and self.v is None:
            raise ValueError(f"{method.name} has no critic to act greedily on")
        self.cand = torch.from_numpy(CANDIDATES)

    def reset(self, n: int | None = None) -> None:
        """Memoryless."""

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray, goal_obs: np.ndarray, infos: Sequence[dict]) -> np.ndarray:
        k, e = len(self.cand), len(obs)
        f = frame_features(self.method.config.features)
        g = f(torch.as_tensor(goal_obs)).repeat_interleave(k, 0)
        if self.q is not None:
            fs = f(torch.as_tensor(obs))
            score = self.q(fs.repeat_interleave(k, 0), g, self.cand.repeat(e, 1))
        else:
            pos = np.repeat(np.asarray([info["position"] for info in infos], np.float64), k, 0)
            wx = np.repeat([info["wall_x"] for info in infos], k)
            dy = np.repeat([info["door_y"] for info in infos], k)
            nxt = core.step_positions(pos, np.tile(CANDIDATES, (e, 1)) * core.MAX_STEP_NORM, wx, dy)[0]
            s2 = f(torch.from_numpy(core.render_frames(nxt, wx, dy)))
            score = self.v(s2, g)
        return CANDIDATES[score.view(e, k).argmax(1).numpy()]


def inspect(args: "InspectConfig") -> dict[str, Any]:
    from eval.metrics import summarize
    from eval.runner import run_episodes

    method, meta = load_method(args.checkpoint)
    out: dict[str, Any] = {"checkpoint": args.checkpoint, "method": method.name, "features": method.config.features,
                           "dataset": (meta.get("dataset") or {}).get("name"), "seed": args.seed, "tasks": args.tasks}
    if args.dataset and method.config.features == "profile":
        data = load_dataset(args.dataset)
        out["calibration"] = value_calibration(method, data, args.pairs, np.random.default_rng(args.pairs_seed),
                                               getattr(method.config, "gamma", 0.99))
    if args.tasks:
        actor = summarize([r.as_dict() for r in run_episodes(OfflineAgent(method, meta), args.seed, range(args.tasks), progress=False)])
        out["actor_success"] = actor["success_rate"]
        if action_value(method) is not None or state_value(method) is not None:
            greedy = summarize([r.as_dict() for r in run_episodes(CriticGreedy(method), args.seed, range(args.tasks), progress=False)])
            out["critic_greedy_success"] = greedy["success_rate"]
            out["critic_greedy_privileged"] = action_value(method) is None
    return out


def report(result: dict[str, Any]) -> str:
    lines = [f"{result['method']} ({result['features']}), trained on {result['dataset']}"]
    cal = result.get("calibration")
    if cal:
        lines.append(f"value vs optimal: corr {cal['corr_all']:.3f} (cross-room {cal['corr_cross_room']:.3f}, "
                     f"same room {cal['corr_same_room']:.3f}) on {cal['pairs']} pairs ({cal['pairs_unreached']} the oracle does not finish, left out)")
        lines.append("| oracle steps | pairs | V mean | optimal mean | cross-room share |")
        lines.append("|---|---|---|---|---|")
        lines += [f"| {r['oracle_steps']} | {r['pairs']} | {r['value_mean']:.1f} | {r['optimal_mean']:.1f} | {r['cross_room_share']:.2f} |"
                  for r in cal["bins"]]
    if "actor_success" in result:
        lines.append(f"actor: {100 * result['actor_success']:.1f} % on {result['tasks']} tasks of seed {result['seed']}")
    if "critic_greedy_success" in result:
        how = "V(s', g), true one-step lookahead (privileged)" if result["critic_greedy_privileged"] else "Q(s, a, g)"
        lines.append(f"greedy on the critic ({how}): {100 * result['critic_greedy_success']:.1f} %")
    return "\n".join(lines)


@dataclass
class InspectConfig:
    """The options of ``python -m eval.baselines.inspect``."""

    checkpoint: str = ""  # offline GCRL checkpoint (required)
    dataset: str = ""  # trajectory file for the value calibration (profile features; "": skip it)
    pairs: int = 3000  # state pairs of the calibration
    pairs_seed: int = 0  # seed of the pairs
    tasks: int = 100  # PROTOCOL tasks for the actor and the greedy policy (0: skip)
    seed: int = 2001  # task seed (a development seed by default)
    threads: int = 0  # torch CPU threads (0: torch's default)
    json: str = ""  # write the result here too

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("--checkpoint is required")
        if self.pairs < 3 or self.tasks < 0:
            raise ValueError(f"--pairs must be >= 3 and --tasks >= 0, got {self.pairs}, {self.tasks}")


CLI = ConfigCLI(InspectConfig, prog="python -m eval.baselines.inspect", description=__doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = CLI.parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = inspect(args)
    print(report(result))
    if args.json:
        from eval.metrics import write_json

        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
