"""Goal-free and goal-directed trajectory families that use the layout (the ``contact`` and
``navigate`` data tiers, :mod:`tworooms_env.tiers`), beside the random walks of
:mod:`tworooms_env.random_walk`.

- :func:`segment_trajectories`: piecewise-constant actions as plans make them (runs along walls,
  straight door crossings, pushes into the centre wall, wall bumps); goal-free (``contact``).
- :func:`detour_trajectories`: noisy closed-loop runs of the door route to a random goal in the
  other room, a noisy expert (``navigate``).

Pure numpy, vectorised over trajectories; the only loop is over time in the closed-loop detours.
"""

from __future__ import annotations

import numpy as np

from tworooms_env import core
from tworooms_env import random_walk as rw
from tworooms_env.random_walk import Trajectories, WalkConfig

KIND_SEGMENT, KIND_DETOUR = 3, 4  # beside random_walk's KIND_WALK, KIND_CROSSING, KIND_BUMP (0, 1, 2)

def detour_trajectories(rng: np.random.Generator, n: int, length: int, walk: WalkConfig) -> Trajectories:
    """Goal-directed door detours, as a plan that works makes them: noisy closed-loop runs of the
    door route (``core.door_route_waypoint``) to a goal in the other room.

    Per window: the goal uniform in the other room; the start uniform in its room (half) or 0-4 px
    from the centre wall (half: where a stalled agent must turn round); waypoints 2-8 px in front
    of and behind the door, aimed 0-2.5 px off its centre line, lined up within 1-3 px. The action is
    recomputed every 1-5 steps (held in between, as plan segments are), at 1.0-2.45 px per step
    with +-12 degrees of heading noise, so that some runs graze the door's edges.
    """
    wall_x, door_y = core.sample_layouts(rng, n, walk.fixed_wall)
    start, goal = core.sample_start_goal(rng, wall_x, door_y)
    near = rng.random(n) < 0.5
    if near.any():
        face = core.WALL_HALF_WIDTH + core.CONTACT_MARGIN
        side = np.where(goal[near, 0] > wall_x[near], -1.0, 1.0)  # the start room
        pts = np.stack([wall_x[near] + side * (face + rng.uniform(0.0, 4.0, near.sum())),
                        rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, near.sum())], axis=1)
        start[near] = rw.clip_to_free(rng, pts, wall_x[near], door_y[near])  # (a rare redraw may share the goal's room)
    standoff = rng.uniform(2.0, 8.0, n)
    align = rng.uniform(1.0, 3.0, n)
    offset = rng.uniform(-2.5, 2.5, n)
    n_act = length - 1
    hold = rng.integers(1, 6, size=(n, n_act))
    renew = (np.arange(n_act)[None, :] % hold) == 0  # recompute the action at these steps
    speed = rng.uniform(1.0, core.MAX_STEP_NORM, (n, n_act))
    noise = rng.normal(0.0, np.radians(12.0), (n, n_act))
    positions = np.empty((n, length, 2), dtype=np.float32)
    actions = np.empty((n, n_act, 2), dtype=np.float32)
    blocked = np.empty((n, n_act), dtype=bool)
    positions[:, 0] = start
    act = np.zeros((n, 2))
    for t in range(n_act):  # closed loop: sequential in time, vectorised over windows
        pos = positions[:, t].astype(np.float64)
        delta = core.door_route_waypoint(pos, goal, wall_x, door_y, standoff, align, door_offset=offset) - pos
        dist = np.linalg.norm(delta, axis=1)
        heading = np.arctan2(delta[:, 1], delta[:, 0]) + noise[:, t]
        step = np.minimum(speed[:, t], dist)
        new = np.stack([step * np.cos(heading), step * np.sin(heading)], axis=1)
        act = np.where(renew[:, t, None], new, act)  # renew[:, 0] is always True
        p_next, a_t, b_t = rw.simulate(positions[:, t], act[:, None], wall_x, door_y)
        positions[:, t + 1], actions[:, t], blocked[:, t] = p_next[:, 1], a_t[:, 0], b_t[:, 0]
    return Trajectories(positions=positions, actions=actions, blocked=blocked, wall_x=wall_x.astype(np.int16),
                        door_y=door_y.astype(np.int16), kind=np.full(n, KIND_DETOUR, dtype=np.int8))


def segment_trajectories(rng: np.random.Generator, n: int, length: int, walk: WalkConfig,
                         parallel_share: float = 0.0, door_share: float = 0.0,
                         push_share: float = 0.0, detour_share: float = 0.0) -> Trajectories:
    """Planner-like trajectories: piecewise-constant actions (segments of 2-10 steps, speed up to
    2.45 px), in five families:

    - ``door_share``: start 2-12 px in front of the door (+-8 px of its centre), the first 8 steps aimed
      at a point 3-15 px behind it (the door's edges included): fast straight crossings, as plans make;
    - ``parallel_share``: start 0-5 px from a wall face heading along it (+-15 degrees), three
      quarters along the centre wall (past the door and its edges), a quarter along the border;
    - ``push_share``: start 0-12 px from a face of the centre wall; 60 % of the segments head into it
      (within +-85 degrees of its normal, so mostly diagonal pushes), the others anywhere. The env
      cancels a whole step that would enter the wall, so a diagonal push from contact goes nowhere;
      plans that rely on sliding through the wall are what the planner finds when the model gets
      this wrong (the agent then stalls across the wall from the goal);
    - the rest: half start 2-8 px from the centre wall with the first segment heading into it,
      half anywhere with uniform headings.

    and, drawn apart, ``detour_share`` goal-directed door detours (``detour_trajectories``).

    ``tworooms_env.random_walk`` makes smooth random walks of at most ``step_max`` px per step;
    plans are piecewise constant, run along walls and push into them at full speed, so the model
    must see that (a model trained without the first two families mispredicts sliding along the
    wall by 4 px after 8 steps, and its plans stall at the wall).
    """
    n_detour = int(round(detour_share * n))
    if n_detour:
        return Trajectories.concatenate([
            segment_trajectories(rng, n - n_detour, length, walk, parallel_share, door_share, push_share),
            detour_trajectories(rng, n_detour, length, walk)])
    wall_x, door_y = core.sample_layouts(rng, n, walk.fixed_wall)
    n_act = length - 1
    u = rng.random(n)
    door = u < door_share
    parallel = (u >= door_share) & (u < door_share + parallel_share)
    push = (u >= door_share + parallel_share) & (u < door_share + parallel_share + push_share)
    rest = ~(door | parallel | push)
    start = rw.sample_free_starts(rng, wall_x, door_y)
    near = rest & (rng.random(n) < 0.5)
    if near.any():
        start[near] = rw.bump_starts_actions(rng, wall_x[near], door_y[near], 1, walk)[0]
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    first = rng.uniform(0.0, 2.0 * np.pi, n)
    first = np.where(near, np.where(start[:, 0] < wall_x, 0.0, np.pi) + rng.uniform(-np.pi / 3, np.pi / 3, n), first)
    face = core.WALL_HALF_WIDTH + core.CONTACT_MARGIN
    if door.any():
        d = np.flatnonzero(door)
        before = np.stack([wall_x[d] + side[d] * (face + rng.uniform(2, 12, d.size)),
                           door_y[d] + rng.uniform(-8, 8, d.size)], axis=1)
        start[d] = rw.clip_to_free(rng, before, wall_x[d], door_y[d])
        aim = np.stack([wall_x[d] - side[d] * (face + rng.uniform(3, 15, d.size)),
                        door_y[d] + rng.uniform(-core.DOOR_HALF_HEIGHT, core.DOOR_HALF_HEIGHT, d.size)], axis=1)
        first[d] = np.arctan2(aim[:, 1] - start[d, 1], aim[:, 0] - start[d, 0])
    if parallel.any():
        p_idx = np.flatnonzero(parallel)
        along_border = rng.random(p_idx.size) < 0.25
        gap = rng.uniform(0.0, 5.0, p_idx.size)
        y = rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, p_idx.size)
        pts = np.stack([wall_x[p_idx] + side[p_idx] * (face + gap), y], axis=1)
        up = rng.random(p_idx.size) < 0.5
        heading = np.where(up, np.pi / 2, -np.pi / 2)
        if along_border.any():  # a horizontal run near the top or bottom border
            b = np.flatnonzero(along_border)
            top = rng.random(b.size) < 0.5
            pts[b, 0] = rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, b.size)
            pts[b, 1] = np.where(top, core.BORDER_LO + core.CONTACT_MARGIN + gap[b],
                                 core.BORDER_HI - core.CONTACT_MARGIN - gap[b])
            heading[b] = np.where(rng.random(b.size) < 0.5, 0.0, np.pi)
        start[p_idx] = rw.clip_to_free(rng, pts, wall_x[p_idx], door_y[p_idx])
        first[p_idx] = heading + rng.uniform(-np.pi / 12, np.pi / 12, p_idx.size)
    into = np.where(side < 0, 0.0, np.pi)  # heading into the centre wall from each window's side
    if push.any():
        q = np.flatnonzero(push)
        pts = np.stack([wall_x[q] + side[q] * (face + rng.uniform(0.0, 12.0, q.size)),
                        rng.uniform(core.BORDER_LO + 1.0, core.BORDER_HI - 1.0, q.size)], axis=1)
        start[q] = rw.clip_to_free(rng, pts, wall_x[q], door_y[q])
        side[q] = np.where(start[q, 0] < wall_x[q], -1.0, 1.0)  # a redrawn start may sit on the other side
        into[q] = np.where(side[q] < 0, 0.0, np.pi)
        first[q] = into[q] + rng.uniform(-np.radians(85), np.radians(85), q.size)
    ends = np.cumsum(rng.integers(2, 11, size=(n, n_act)), axis=1)  # segment end steps
    seg_id = (np.arange(n_act)[None, :, None] >= ends[:, None, :]).sum(axis=-1)  # [n, n_act]
    theta = rng.uniform(0.0, 2.0 * np.pi, (n, n_act))
    theta[:, 0] = first
    keep = parallel[:, None] & (rng.random((n, n_act)) < 0.7)  # parallel runs mostly keep going along
    theta = np.where(keep, first[:, None] + rng.uniform(-np.pi / 12, np.pi / 12, (n, n_act)), theta)
    pushing = push[:, None] & (rng.random((n, n_act)) < 0.6)
    theta = np.where(pushing, into[:, None] + rng.uniform(-np.radians(85), np.radians(85), (n, n_act)), theta)
    speed = rng.uniform(0.3, core.MAX_STEP_NORM, (n, n_act))
    th, sp = np.take_along_axis(theta, seg_id, 1), np.take_along_axis(speed, seg_id, 1)
    run = door[:, None] & (np.arange(n_act) < 8)[None, :]  # door windows: 8 straight steps at the aim
    th = np.where(run, first[:, None], th)
    sp = np.where(run, rng.uniform(1.2, core.MAX_STEP_NORM, n)[:, None], sp)
    positions, actions, blocked = rw.simulate(start, np.stack([sp * np.cos(th), sp * np.sin(th)], -1),
                                              wall_x, door_y)
    return Trajectories(positions=positions, actions=actions, blocked=blocked, wall_x=wall_x.astype(np.int16),
                        door_y=door_y.astype(np.int16), kind=np.full(n, KIND_SEGMENT, dtype=np.int8))
