"""Invariants of the dynamics (core.step_positions, vectorised) and of start/goal sampling."""

from __future__ import annotations

import numpy as np

from tworooms_env import core
from tworooms_env.core import step_one

N_DOTS, N_STEPS = 4000, 12  # 48,000 steps


def _free_starts(rng: np.random.Generator, wall_x: np.ndarray, door_y: np.ndarray) -> np.ndarray:
    """Random free positions; a third of them hug a wall face or a border line."""
    n = wall_x.shape[0]
    lo, hi = core.BORDER_LO + core.CONTACT_MARGIN, core.BORDER_HI - core.CONTACT_MARGIN
    pos = rng.uniform(lo, hi, (n, 2))
    hug = rng.random(n) < 0.33
    side = rng.choice([-1.0, 1.0], n)
    face = wall_x + side * (core.WALL_HALF_WIDTH + core.CONTACT_MARGIN + rng.uniform(0, 0.5, n))
    pos[hug, 0] = face[hug]
    border = rng.random(n) < 0.1
    pos[border, 1] = np.where(rng.random(border.sum()) < 0.5, lo, hi)
    bad = ~core.is_free(pos, wall_x, door_y, core.CONTACT_MARGIN - 1e-9)
    pos[bad, 0] = np.where(pos[bad, 0] < wall_x[bad], 10.0, 55.0)  # out of the wall band
    return pos


def _actions(rng: np.random.Generator, pos: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray) -> np.ndarray:
    """A mix: random (often beyond the norm bound), aimed at door edges, along walls, into walls."""
    n = pos.shape[0]
    kind = rng.integers(0, 4, n)
    random = rng.normal(0.0, 2.0, (n, 2))
    corner = np.stack(
        [wall_x + rng.choice([-1.0, 1.0], n), door_y + rng.choice([-4.0, 4.0], n)], axis=1
    ) + rng.normal(0.0, 0.3, (n, 2))
    to_corner = corner - pos
    to_corner *= (rng.uniform(0.5, 4.0, n) / np.maximum(np.linalg.norm(to_corner, axis=1), 1e-9))[:, None]
    along = np.stack([rng.choice([0.0, 1e-3, -1e-3], n), rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 3.0, n)], 1)
    into = np.stack([np.sign(wall_x - pos[:, 0]) * rng.uniform(0.5, 3.0, n), rng.normal(0, 0.5, n)], 1)
    return np.select([kind[:, None] == k for k in range(4)], [random, to_corner, along, into])


def test_step_positions_invariants_over_random_moves():
    rng = np.random.default_rng(0)
    wall_x, door_y = core.sample_layouts(rng, N_DOTS)
    pos = _free_starts(rng, wall_x, door_y)
    assert core.is_free(pos, wall_x, door_y, core.CONTACT_MARGIN - 1e-9).all()
    frac = np.linspace(0.0, 1.0, 65)
    n_blocked = n_crossings = n_steps = 0
    for _ in range(N_STEPS):
        act = _actions(rng, pos, wall_x, door_y)
        new, blocked = core.step_positions(pos, act, wall_x, door_y)
        again, blocked_again = core.step_positions(pos, act, wall_x, door_y)
        np.testing.assert_array_equal(new, again)  # deterministic
        np.testing.assert_array_equal(blocked, blocked_again)

        clipped = core.clip_action_norm(act)
        move = new - pos
        # Norm bound: never more than 2.45 px; free moves are exactly the clipped action.
        assert (np.linalg.norm(move, axis=1) <= core.MAX_STEP_NORM + 1e-9).all()
        np.testing.assert_allclose(move[~blocked], clipped[~blocked], atol=1e-12)
        # A blocked move stops on the segment: new = pos + t * a, 0 <= t <= 1 (up to the snap).
        t = np.einsum("ij,ij->i", move, clipped) / np.maximum(np.einsum("ij,ij->i", clipped, clipped), 1e-12)
        assert ((t[blocked] >= -1e-9) & (t[blocked] <= 1 + 1e-9)).all()
        # Never in a wall, never out of the arena; the contact clearance is kept.
        assert core.is_free(new, wall_x, door_y, core.CONTACT_MARGIN - 1e-9).all()
        # The whole segment stays free: no tunnelling through a wall or across the border.
        seg = pos[:, None, :] + frac[None, :, None] * move[:, None, :]
        assert core.is_free(seg, wall_x[:, None], door_y[:, None]).all()
        # A room change happens only through the door.
        crossed = core.room_of(new, wall_x) != core.room_of(pos, wall_x)
        s = (wall_x[crossed] - pos[crossed, 0]) / move[crossed, 0]
        y_cross = pos[crossed, 1] + s * move[crossed, 1]
        assert (np.abs(y_cross - door_y[crossed]) <= core.DOOR_HALF_HEIGHT).all()

        n_blocked += blocked.sum()
        n_crossings += crossed.sum()
        n_steps += len(pos)
        pos = new
    assert n_steps >= 10_000
    assert n_blocked > 0.05 * n_steps and n_crossings > 50  # contacts and crossings were exercised


def test_scalar_twin_is_bit_identical_to_step_positions():
    rng = np.random.default_rng(1)
    n = 5000
    wall_x, door_y = core.sample_layouts(rng, n)
    pos = _free_starts(rng, wall_x, door_y)
    act = _actions(rng, pos, wall_x, door_y)
    act[:100, 0] = 0.0  # exactly axis-aligned moves
    act[100:200, 1] = 0.0
    act[200:210] = 0.0
    new, blocked = core.step_positions(pos, act, wall_x, door_y)
    twin = np.array([step_one(*pos[i], *act[i], float(wall_x[i]), float(door_y[i])) for i in range(n)])
    np.testing.assert_array_equal(twin[:, :2], new)
    np.testing.assert_array_equal(twin[:, 2].astype(bool), blocked)
    assert blocked.any() and not blocked.all()


def test_door_edges_block_and_door_centre_passes():
    wall_x, door_y = 32, 30
    start = np.array([[29.0, 30.0], [29.0, 34.5], [29.0, 25.5], [29.0, 40.0]])
    act = np.tile([2.45, 0.0], (4, 1))
    new, blocked = core.step_positions(start, act, wall_x, door_y)
    np.testing.assert_array_equal(blocked, [False, True, True, True])
    np.testing.assert_allclose(new[0], [31.45, 30.0])
    np.testing.assert_allclose(new[1:, 0], wall_x - 1 - core.CONTACT_MARGIN)
    # Sliding up inside the door stops under the upper wall piece.
    new, blocked = core.step_positions([[32.0, 32.5]], [[0.0, 2.45]], wall_x, door_y)
    assert blocked[0] and new[0, 1] == door_y + core.DOOR_HALF_HEIGHT - core.CONTACT_MARGIN


def test_start_goal_sampling_matches_spec():
    rng = np.random.default_rng(2)
    n = 20_000
    tasks = core.sample_tasks(rng, n)
    wall_x, door_y, start, goal = tasks["wall_x"], tasks["door_y"], tasks["start"], tasks["goal"]
    assert wall_x.min() == core.WALL_X_MIN and wall_x.max() == core.WALL_X_MAX
    assert door_y.min() == core.DOOR_Y_MIN and door_y.max() == core.DOOR_Y_MAX
    assert (core.room_of(start, wall_x) != core.room_of(goal, wall_x)).all()
    margin = core.START_GOAL_MARGIN
    for p in (start, goal):
        assert (p >= core.BORDER_LO + margin).all() and (p <= core.BORDER_HI - margin).all()
        assert (np.abs(p[:, 0] - wall_x) >= core.WALL_HALF_WIDTH + margin).all()
    assert 0.47 < core.room_of(start, wall_x).mean() < 0.53  # a fair coin picks the start room
    fixed = core.sample_tasks(rng, 100, fixed_wall=True)
    assert (fixed["wall_x"] == core.FIXED_WALL_X).all() and (fixed["door_y"] == core.FIXED_DOOR_Y).all()


def test_start_inside_clearance_zone_is_projected_not_trapped():
    """A start slightly inside a surface's clearance zone (e.g. a decoded position) is put back on
    the boundary first: moving away works, moving in stays blocked, and nothing jumps far away."""
    from tworooms_env import core

    starts = np.array([[4.2, 30.0], [30.9, 40.0], [4.1, 4.1], [33.1, 12.0]])
    moves = np.array([[2.0, 0.0], [2.0, 0.0], [-1.0, -1.0], [-2.0, 0.0]])
    new, blocked = core.step_positions(starts, moves, 32, 18)
    assert core.is_free(new, 32, 18).all()
    np.testing.assert_allclose(new, [[6.25, 30.0], [30.75, 40.0], [4.25, 4.25], [33.25, 12.0]])
    assert blocked.tolist() == [False, True, True, True]
    for i in range(len(starts)):
        twin = core.step_one(*starts[i], *moves[i], 32.0, 18.0)
        assert twin == (new[i, 0], new[i, 1], bool(blocked[i]))
