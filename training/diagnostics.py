"""Cheap gates that tell whether a world model can plan, before any episode is run; collapse checks.

docs/experiments/: a model that decodes the door's height to < 1 px and stops at closed walls
(< 2 % of pushes predicted to pass through) is worth a planning run; one that does not, is not.

    gates = run_gates(model, n=512, seed=0)   # dict of floats, see the function docstrings

Wall and door gates are decided two ways: by the position probe on the imagined final latent
("probe"), and without any probe by asking which latent the imagined one is closer to, the
encoding of the true end frame or that of the wrong alternative ("latent"): for a push into a
closed wall the frame the dot would reach with no wall, for a pass through the door the frame
where it would stop if the door were closed.
"""

from __future__ import annotations

import numpy as np
import torch

from jepa_agent.regularizers import effective_rank
from tworooms_env import core
from tworooms_env import random_walk as rw

GATE_TARGETS = {"door_probe_err": 1.0, "wall_pass_probe": 0.02, "wall_pass_latent": 0.02}


def _frames(pos: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(core.render_frames(pos, wall_x, door_y)).to(device)


def _push_setup(rng: np.random.Generator, n: int, through_door: bool, steps: int):
    """Starts 1.5-6 px from the wall face heading straight into it; outside the door's height
    (>= 6 px from its centre) for wall pushes, within 2 px of its centre for door passes."""
    wall_x, door_y = core.sample_layouts(rng, n)
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    x = wall_x + side * (core.WALL_HALF_WIDTH + rng.uniform(1.5, 6.0, n))
    if through_door:
        y = door_y + rng.uniform(-2.0, 2.0, n)
    else:
        y = rng.uniform(core.BORDER_LO + 1.5, core.BORDER_HI - 1.5, n)
        bad = np.abs(y - door_y) < core.DOOR_HALF_HEIGHT + 2
        while bad.any():
            y[bad] = rng.uniform(core.BORDER_LO + 1.5, core.BORDER_HI - 1.5, int(bad.sum()))
            bad = np.abs(y - door_y) < core.DOOR_HALF_HEIGHT + 2
    start = np.stack([x, y], axis=1)
    speed = rng.uniform(1.6, core.MAX_STEP_NORM, n)
    actions = np.zeros((n, steps, 2))
    actions[:, :, 0] = (-side * speed)[:, None]
    true = core.rollout_positions(start, actions, wall_x, door_y)
    if through_door:  # the alternative: where the dot would stop if the door were closed
        far_door = np.where(door_y < 32, door_y + 20, door_y - 20)
        alt_end = core.rollout_positions(start, actions, wall_x, far_door)[:, -1]
    else:  # the alternative: where the dot would be with no wall
        alt_end = np.clip(start + actions.sum(axis=1), core.BORDER_LO + 1.0, core.BORDER_HI - 1.0)
    return wall_x, door_y, side, start, actions, true, alt_end


@torch.no_grad()
def push_gate(model, n: int, rng: np.random.Generator, through_door: bool, steps: int = 8) -> dict[str, float]:
    """Push straight at the wall for ``steps`` steps. Returns, for closed-wall pushes, the share the
    model lets through (``wall_pass_*``), for door passes the share it blocks (``door_block_*``)."""
    device = next(model.parameters()).device
    k = getattr(model, "action_chunk", 1)
    steps = -(-steps // k) * k  # a whole number of predictor calls
    wall_x, door_y, side, start, actions, true, alt_end = _push_setup(rng, n, through_door, steps)
    z0 = model.encode(_frames(start, wall_x, door_y, device))
    z_end = model.unroll(z0, torch.as_tensor(actions, dtype=torch.float32, device=device))[:, -1]
    x_end = model.probe(z_end)[:, 0].cpu().numpy()
    crossed_probe = (x_end - wall_x) * side < 0
    z_true = model.encode(_frames(true[:, -1], wall_x, door_y, device))
    z_alt = model.encode(_frames(alt_end, wall_x, door_y, device))
    wrong_latent = (model_distance(model, z_end, z_alt) < model_distance(model, z_end, z_true)).cpu().numpy()
    if through_door:  # the true motion crosses: failure = predicted to stay
        return {"door_block_probe": float((~crossed_probe).mean()), "door_block_latent": float(wrong_latent.mean())}
    return {"wall_pass_probe": float(crossed_probe.mean()), "wall_pass_latent": float(wrong_latent.mean())}


def model_distance(model, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
    """The model's planning distance if it defines one, else L2 (interfaces.md)."""
    if hasattr(model, "planning_distance"):
        return model.planning_distance(z, z_goal)
    return (z - z_goal).norm(dim=-1)


@torch.no_grad()
def probe_errors(model, n: int, rng: np.random.Generator) -> dict[str, float]:
    """Mean absolute errors (px) of the position probe and the layout probe on fresh frames,
    plus the embedding spread (mean per-dimension std) and effective rank of the agent latent."""
    device = next(model.parameters()).device
    wall_x, door_y = core.sample_layouts(rng, n)
    pos = rw.sample_free_starts(rng, wall_x, door_y).astype(np.float64)
    z = model.encode(_frames(pos, wall_x, door_y, device))
    xy = model.probe(z).cpu().numpy()
    layout = model.layout_probe(z).cpu().numpy() if hasattr(model, "layout_probe") else None
    z_agent = z[:, : getattr(model, "agent_dim", z.shape[-1])].float()
    out = {
        "pos_probe_err": float(np.linalg.norm(xy - pos, axis=1).mean()),
        "emb_std": float(z_agent.std(dim=0).mean()),
        "eff_rank": effective_rank(z_agent),
    }
    if layout is not None:
        out["wall_probe_err"] = float(np.abs(layout[:, 0] - wall_x).mean())
        out["door_probe_err"] = float(np.abs(layout[:, 1] - door_y).mean())
    return out


@torch.no_grad()
def rollout_errors(model, n: int, rng: np.random.Generator, horizon: int = 16) -> dict[str, float]:
    """Decoded position error (px) of the imagined rollout with the true actions at t = 1, 8, 16
    (each rounded to a multiple of the model's action chunk k: t = 5, 10, 15 for k = 5), on windows
    of the training mix."""
    device = next(model.parameters()).device
    k = getattr(model, "action_chunk", 1)
    horizon = -(-horizon // k) * k
    traj = rw.generate_trajectories(rng, n, rw.WalkConfig(length=horizon + 1))
    frames0 = _frames(traj.positions[:, 0], traj.wall_x, traj.door_y, device)
    z_seq = model.unroll(model.encode(frames0), torch.as_tensor(traj.actions, device=device))
    xy = model.probe(z_seq).cpu().numpy()  # [n, H/k + 1, 2]
    out = {}
    for t in sorted({max(k, round(t / k) * k) for t in (1, 8, 16)}):
        if t <= horizon:
            err = np.linalg.norm(xy[:, t // k] - traj.positions[:, t], axis=-1)
            out[f"rollout_err_t{t}"] = float(err.mean())
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@torch.no_grad()
def distance_gate(model, n: int, rng: np.random.Generator) -> dict[str, float]:
    """Does the planning distance order goals like the true distance does? Spearman rank
    correlation between the model's distance and the Euclidean distance over pairs of free points
    of one layout, for all pairs (``dist_rank``) and for pairs more than 15 px apart
    (``dist_rank_far``: a latent that saturates beyond a few pixels cannot guide a far plan)."""
    device = next(model.parameters()).device
    wall_x, door_y = core.sample_layouts(rng, n)
    a = rw.sample_free_starts(rng, wall_x, door_y).astype(np.float64)
    b = rw.sample_free_starts(rng, wall_x, door_y).astype(np.float64)
    za = model.encode(_frames(a, wall_x, door_y, device))
    zb = model.encode(_frames(b, wall_x, door_y, device))
    d_model = model_distance(model, za, zb).float().cpu().numpy()
    d_true = np.linalg.norm(a - b, axis=1)
    far = d_true > 15.0
    return {"dist_rank": _spearman(d_model, d_true),
            "dist_rank_far": _spearman(d_model[far], d_true[far]) if far.sum() > 2 else float("nan")}


def run_gates(model, n: int = 512, seed: int = 0) -> dict[str, float]:
    """All gates on ``n`` fresh samples each (a seeded, reproducible draw). Model left as it was."""
    was_training = model.training
    model.eval()
    rng = np.random.default_rng([seed, 4242])
    try:
        out = probe_errors(model, n, rng)
        out.update(push_gate(model, n, rng, through_door=False))
        out.update(push_gate(model, n, rng, through_door=True))
        out.update(rollout_errors(model, n, rng))
        out.update(distance_gate(model, n, rng))
    finally:
        model.train(was_training)
    return out


def collapse_warning(emb_std: float, eff_rank: float, config) -> str | None:
    """A message naming the likely cause when the embedding's spread or rank has collapsed."""
    if emb_std >= 0.05 and eff_rank >= 1.5:
        return None
    causes = []
    if getattr(config, "idm_coeff", 1) == 0:
        causes.append("idm_coeff=0: without inverse dynamics the embedding can ignore the dot and "
                      "encode only the (random) wall, the reference's 1 % ablation")
    if getattr(config, "std_coeff", 1) == 0:
        causes.append("std_coeff=0: nothing keeps each dimension's spread up (variance term off)")
    if getattr(config, "cov_coeff", 1) == 0:
        causes.append("cov_coeff=0: dimensions can become copies of each other (covariance term off)")
    if getattr(config, "sim_coeff", 0) > 4 * max(getattr(config, "std_coeff", 1), 1e-9):
        causes.append("sim_coeff much larger than std_coeff pulls all frames together")
    if not causes:
        causes.append("learning rate too high or regulariser weights too low for this batch size")
    return (f"embedding collapse suspected (agent-latent std {emb_std:.3g}, effective rank "
            f"{eff_rank:.2f}); likely cause: " + "; ".join(causes))
