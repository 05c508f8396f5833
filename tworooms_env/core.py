"""Two Rooms mechanics: geometry, dynamics and rendering, vectorised over batches.

This module is the single source of truth for how the world works. The Gymnasium environment,
the offline data collector and every evaluation call these functions; nothing else re-implements
them. Everything is plain numpy (no torch), float64 positions, uint8 pixels.

Coordinates are pixels ``(x, y) = (column, row)``; an image is indexed ``img[y, x]``.

Geometry (docs/reference.md#layouts-and-geometry):
- image 65 x 65; border lines at pixel 4 and 60 (the dot lives strictly between them);
- centre wall 3 px wide: columns ``wall_x - 1 .. wall_x + 1`` with ``wall_x`` in 20..44;
- a door of half-height 4: rows ``door_y - 4 .. door_y + 4`` are open, ``door_y`` in 10..54.

Dynamics: ``p' = p + a`` with ``|a|`` clipped to ``MAX_STEP_NORM``. A move that would enter a wall
or leave the arena stops at the first contact point, ``CONTACT_MARGIN`` px short of the surface
(measured along the surface normal), deterministically. A move through the door passes.
``step_positions`` is the batched form; ``step_one`` is the same algorithm on Python floats for a
single dot (numpy's per-call overhead would cap the env near 10k steps/s); a test checks that
the two agree bit for bit.

At ~500 lines this module is longer than the project's ~400-line guide, on purpose: geometry,
dynamics and rendering share the constants and the per-layout wall tables, and one module that
defines the whole world is easier to check against ``docs/reference.md`` than three that import
each other's private helpers.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

IMG_SIZE = 65
N_CHANNELS = 2  # channel 0: the dot, channel 1: the walls
DOT_STD = 1.3
BORDER_LO = 4.0  # border line pixel index; the dot stays in (BORDER_LO, BORDER_HI)
BORDER_HI = 60.0
WALL_HALF_WIDTH = 1  # wall occupies columns wall_x - 1 .. wall_x + 1
DOOR_HALF_HEIGHT = 4  # door open rows door_y - 4 .. door_y + 4
WALL_X_MIN, WALL_X_MAX = 20, 44  # inclusive
DOOR_Y_MIN, DOOR_Y_MAX = 10, 54  # inclusive
FIXED_WALL_X, FIXED_DOOR_Y = 32, 18
MAX_STEP_NORM = 2.45  # pixels per step
CONTACT_MARGIN = 0.25  # clearance kept from any surface after a blocked move
START_GOAL_MARGIN = 2.0 * DOT_STD  # 2.6 px from every wall (docs/reference.md#evaluation-tasks)
SUCCESS_RADIUS = 4.5  # success@end threshold (docs/protocol.md)
STRICT_SUCCESS_RADIUS = float(np.sqrt(2.0))

_BIG = 1.0e6
_DOT_PATCH = 4  # exp(-d^2 / (2 * 1.3^2)) * 255 < 1 beyond 4.33 px: a 9 x 9 patch is exact


# ----------------------------------------------------------------------------------- layouts
def all_layouts() -> np.ndarray:
    """Every random-wall layout as an int array [1125, 2] of (wall_x, door_y)."""
    wx, dy = np.meshgrid(
        np.arange(WALL_X_MIN, WALL_X_MAX + 1), np.arange(DOOR_Y_MIN, DOOR_Y_MAX + 1), indexing="ij"
    )
    return np.stack([wx.ravel(), dy.ravel()], axis=1)


def sample_layouts(rng: np.random.Generator, n: int, fixed_wall: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` layouts uniformly from the random-wall set (or the fixed one): (wall_x, door_y)."""
    if fixed_wall:
        return np.full(n, FIXED_WALL_X, dtype=np.int64), np.full(n, FIXED_DOOR_Y, dtype=np.int64)
    wall_x = rng.integers(WALL_X_MIN, WALL_X_MAX + 1, size=n)
    door_y = rng.integers(DOOR_Y_MIN, DOOR_Y_MAX + 1, size=n)
    return wall_x.astype(np.int64), door_y.astype(np.int64)


def validate_layout(wall_x, door_y) -> None:
    """Raise ``ValueError`` if any (wall_x, door_y) lies outside the layout set."""
    wall_x, door_y = np.asarray(wall_x), np.asarray(door_y)
    if np.any((wall_x < WALL_X_MIN) | (wall_x > WALL_X_MAX)) or np.any(wall_x != np.round(wall_x)):
        raise ValueError(f"wall_x must be an integer in [{WALL_X_MIN}, {WALL_X_MAX}], got {wall_x}")
    if np.any((door_y < DOOR_Y_MIN) | (door_y > DOOR_Y_MAX)) or np.any(door_y != np.round(door_y)):
        raise ValueError(f"door_y must be an integer in [{DOOR_Y_MIN}, {DOOR_Y_MAX}], got {door_y}")


# ---------------------------------------------------------------------------------- geometry
def room_of(positions: np.ndarray, wall_x) -> np.ndarray:
    """0 for the left room (x < wall_x), 1 for the right room; shape positions.shape[:-1]."""
    return (np.asarray(positions)[..., 0] >= np.asarray(wall_x)).astype(np.int64)


def in_wall(positions: np.ndarray, wall_x, door_y, margin: float = 0.0) -> np.ndarray:
    """True where a position is inside the centre wall (door excluded), inflated by ``margin``."""
    p = np.asarray(positions, dtype=np.float64)
    wall_x, door_y = np.asarray(wall_x), np.asarray(door_y)
    in_band = np.abs(p[..., 0] - wall_x) < WALL_HALF_WIDTH + margin
    in_door = np.abs(p[..., 1] - door_y) <= DOOR_HALF_HEIGHT - margin
    return in_band & ~in_door


def in_arena(positions: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """True where a position is strictly inside the border lines (shrunk by ``margin``)."""
    p = np.asarray(positions, dtype=np.float64)
    lo, hi = BORDER_LO + margin, BORDER_HI - margin
    return np.all((p > lo) & (p < hi), axis=-1)


def is_free(positions: np.ndarray, wall_x, door_y, margin: float = 0.0) -> np.ndarray:
    """True where a position is a legal place for the dot: inside the arena and not in the wall."""
    return in_arena(positions, margin) & ~in_wall(positions, wall_x, door_y, margin)


def _obstacle_boxes(wall_x: np.ndarray, door_y: np.ndarray, margin: float) -> np.ndarray:
    """Open axis-aligned boxes the dot centre may not enter, inflated by ``margin``: [N, 6, 4].

    Each box is (x_lo, x_hi, y_lo, y_hi): four half-planes outside the border lines and the two
    pieces of the centre wall above and below the door.
    """
    n = wall_x.shape[0]
    boxes = np.empty((n, 6, 4), dtype=np.float64)
    lo, hi = BORDER_LO + margin, BORDER_HI - margin
    boxes[:, 0] = (-_BIG, lo, -_BIG, _BIG)
    boxes[:, 1] = (hi, _BIG, -_BIG, _BIG)
    boxes[:, 2] = (-_BIG, _BIG, -_BIG, lo)
    boxes[:, 3] = (-_BIG, _BIG, hi, _BIG)
    wall_lo = wall_x - WALL_HALF_WIDTH - margin
    wall_hi = wall_x + WALL_HALF_WIDTH + margin
    boxes[:, 4, 0], boxes[:, 4, 1] = wall_lo, wall_hi
    boxes[:, 4, 2], boxes[:, 4, 3] = -_BIG, door_y - DOOR_HALF_HEIGHT + margin
    boxes[:, 5, 0], boxes[:, 5, 1] = wall_lo, wall_hi
    boxes[:, 5, 2], boxes[:, 5, 3] = door_y + DOOR_HALF_HEIGHT - margin, _BIG
    return boxes


def _project_out_of_boxes(p: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Move positions that lie strictly inside a box onto that box's nearest face (in place)."""
    for k in range(boxes.shape[1]):
        x_lo, x_hi, y_lo, y_hi = (boxes[:, k, j] for j in range(4))
        inside = (p[:, 0] > x_lo) & (p[:, 0] < x_hi) & (p[:, 1] > y_lo) & (p[:, 1] < y_hi)
        if not inside.any():
            continue
        depth = np.stack([p[:, 0] - x_lo, x_hi - p[:, 0], p[:, 1] - y_lo, y_hi - p[:, 1]], axis=1)
        face = depth.argmin(axis=1)
        for j, (axis, value) in enumerate(((0, x_lo), (0, x_hi), (1, y_lo), (1, y_hi))):
            sel = inside & (face == j)
            p[sel, axis] = value[sel]
    return p


def project_free(positions: np.ndarray, wall_x, door_y, margin: float = CONTACT_MARGIN) -> np.ndarray:
    """Positions [N, 2] moved out of any obstacle (inflated by ``margin``) onto its nearest face.

    Free positions are returned unchanged. ``step_positions`` applies this to its starts, so a
    position that came from elsewhere (a decoded estimate, a user's option) slightly inside a
    surface's clearance zone is first put back on the boundary instead of being trapped.
    """
    p = np.array(np.atleast_2d(positions), dtype=np.float64)
    n = p.shape[0]
    wall_x = np.broadcast_to(np.asarray(wall_x, dtype=np.float64), (n,))
    door_y = np.broadcast_to(np.asarray(door_y, dtype=np.float64), (n,))
    return _project_out_of_boxes(p, _obstacle_boxes(wall_x, door_y, margin))


def clip_action_norm(actions: np.ndarray, max_norm: float = MAX_STEP_NORM) -> np.ndarray:
    """Scale each 2-D action down so that its Euclidean norm is at most ``max_norm``."""
    a = np.asarray(actions, dtype=np.float64)
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    scale = np.minimum(1.0, max_norm / np.maximum(norm, 1e-12))
    return a * scale


def step_positions(
    positions: np.ndarray,
    actions: np.ndarray,
    wall_x,
    door_y,
    margin: float = CONTACT_MARGIN,
    max_norm: float | None = MAX_STEP_NORM,
) -> tuple[np.ndarray, np.ndarray]:
    """Move a batch of dots one step. Pure and deterministic.

    Args:
        positions: [N, 2] current positions (must be free: inside the arena, outside the wall).
        actions: [N, 2] displacements in pixels; norms are clipped to ``max_norm`` (None: no clip).
        wall_x, door_y: [N] (or scalars) layout of each sample.
        margin: clearance kept from a surface when a move is blocked.

    Returns:
        (new_positions [N, 2] float64, blocked [N] bool): ``blocked`` is True where the move was
        stopped at a contact point.
    """
    p = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    a = np.atleast_2d(np.asarray(actions, dtype=np.float64))
    if p.shape[-1] != 2 or a.shape != p.shape:
        raise ValueError(f"positions and actions must both be [N, 2], got {p.shape} and {a.shape}")
    n = p.shape[0]
    if max_norm is not None:
        a = clip_action_norm(a, max_norm)
    wall_x = np.broadcast_to(np.asarray(wall_x, dtype=np.float64), (n,))
    door_y = np.broadcast_to(np.asarray(door_y, dtype=np.float64), (n,))
    boxes = _obstacle_boxes(wall_x, door_y, margin)  # [N, 6, 4]
    p = _project_out_of_boxes(p.copy(), boxes)  # starts inside a clearance zone go to its face

    # Slab test per axis: the interval of t in which the segment p + t a is strictly inside a box.
    t_in = np.empty((n, 6, 2))
    t_out = np.empty((n, 6, 2))
    for axis in range(2):
        lo, hi = boxes[:, :, 2 * axis], boxes[:, :, 2 * axis + 1]
        pa = p[:, axis, None]
        da = a[:, axis, None]
        moving = da != 0.0
        safe_d = np.where(moving, da, 1.0)
        t0, t1 = (lo - pa) / safe_d, (hi - pa) / safe_d
        inside = (pa > lo) & (pa < hi)
        t_in[:, :, axis] = np.where(moving, np.minimum(t0, t1), np.where(inside, -np.inf, np.inf))
        t_out[:, :, axis] = np.where(moving, np.maximum(t0, t1), np.where(inside, np.inf, -np.inf))
    t_enter = t_in.max(axis=2)
    t_exit = t_out.min(axis=2)
    hits = (t_enter < t_exit) & (t_enter < 1.0) & (t_exit > 0.0)
    t_hit = np.where(hits, np.maximum(t_enter, 0.0), np.inf)
    first = t_hit.argmin(axis=1)
    rows = np.arange(n)
    blocked = np.isfinite(t_hit[rows, first])
    t = np.where(blocked, t_hit[rows, first], 1.0)
    new_p = p + t[:, None] * a

    # Snap the contact coordinate exactly onto the (inflated) face so that rounding never puts the
    # dot inside it; the face is the one whose slab entry time defined the contact.
    box = boxes[rows, first]  # [N, 4]
    for axis in range(2):
        face_axis = blocked & (t_in[rows, first, axis] == t_enter[rows, first])
        face = np.where(a[:, axis] > 0, box[:, 2 * axis], box[:, 2 * axis + 1])
        new_p[:, axis] = np.where(face_axis & (a[:, axis] != 0), face, new_p[:, axis])
    return new_p, blocked


def step_one(
    x: float, y: float, ax: float, ay: float, wall_x: float, door_y: float,
    margin: float = CONTACT_MARGIN, max_norm: float = MAX_STEP_NORM,
) -> tuple[float, float, bool]:
    """Scalar twin of ``step_positions`` for one dot: ``(x', y', blocked)``.

    The same slab test with the same float operations in the same order, written with Python
    floats because numpy's per-call overhead makes a batch of one ~15x slower. The test suite
    checks that it is bit-identical to ``step_positions`` on random and contact moves.
    """
    norm = math.sqrt(ax * ax + ay * ay)
    scale = min(1.0, max_norm / max(norm, 1e-12))
    ax, ay = ax * scale, ay * scale
    big = _BIG
    lo, hi = BORDER_LO + margin, BORDER_HI - margin
    w_lo = wall_x - WALL_HALF_WIDTH - margin
    w_hi = wall_x + WALL_HALF_WIDTH + margin
    boxes = (
        (-big, lo, -big, big), (hi, big, -big, big), (-big, big, -big, lo), (-big, big, hi, big),
        (w_lo, w_hi, -big, door_y - DOOR_HALF_HEIGHT + margin),
        (w_lo, w_hi, door_y + DOOR_HALF_HEIGHT - margin, big),
    )
    for b_x_lo, b_x_hi, b_y_lo, b_y_hi in boxes:  # same projection as _project_out_of_boxes
        if b_x_lo < x < b_x_hi and b_y_lo < y < b_y_hi:
            depth = (x - b_x_lo, b_x_hi - x, y - b_y_lo, b_y_hi - y)
            j = depth.index(min(depth))
            if j < 2:
                x = (b_x_lo, b_x_hi)[j]
            else:
                y = (b_y_lo, b_y_hi)[j - 2]
    best_t, best_k, best_tin = math.inf, -1, (0.0, 0.0, 0.0)
    for k, box in enumerate(boxes):
        t_in = [0.0, 0.0]
        t_out = [0.0, 0.0]
        for axis, (pa, da) in enumerate(((x, ax), (y, ay))):
            b_lo, b_hi = box[2 * axis], box[2 * axis + 1]
            if da != 0.0:
                t0, t1 = (b_lo - pa) / da, (b_hi - pa) / da
                t_in[axis], t_out[axis] = min(t0, t1), max(t0, t1)
            elif b_lo < pa < b_hi:
                t_in[axis], t_out[axis] = -math.inf, math.inf
            else:
                t_in[axis], t_out[axis] = math.inf, -math.inf
        t_enter, t_exit = max(t_in), min(t_out)
        if t_enter < t_exit and t_enter < 1.0 and t_exit > 0.0:
            t_hit = max(t_enter, 0.0)
            if t_hit < best_t:  # strict: ties keep the lowest box index, as argmin does
                best_t, best_k, best_tin = t_hit, k, (t_in[0], t_in[1], t_enter)
    if best_k < 0:
        return x + 1.0 * ax, y + 1.0 * ay, False
    nx, ny = x + best_t * ax, y + best_t * ay
    box = boxes[best_k]
    # Snap onto the face whose slab entry defined the contact (see step_positions).
    if best_tin[0] == best_tin[2] and ax != 0.0:
        nx = box[0] if ax > 0 else box[1]
    if best_tin[1] == best_tin[2] and ay != 0.0:
        ny = box[2] if ay > 0 else box[3]
    return nx, ny, True


def rollout_positions(
    start: np.ndarray, actions: np.ndarray, wall_x, door_y, margin: float = CONTACT_MARGIN
) -> np.ndarray:
    """Simulate [N, T, 2] actions from [N, 2] starts: positions [N, T + 1, 2]."""
    actions = np.asarray(actions, dtype=np.float64)
    n, t_len = actions.shape[:2]
    out = np.empty((n, t_len + 1, 2))
    out[:, 0] = start
    for t in range(t_len):  # sequential in time by nature; vectorised over the batch
        out[:, t + 1], _ = step_positions(out[:, t], actions[:, t], wall_x, door_y, margin)
    return out


def door_route_waypoint(
    positions: np.ndarray, goals: np.ndarray, wall_x, door_y, standoff=3.0, align=2.0,
    past_wall: float = 1.5, door_offset=0.0,
) -> np.ndarray:
    """Where a dot heading for ``goals`` through the door should aim next: [N, 2] pixels.

    In the start room: a waypoint ``standoff`` px in front of the door (at height door_y +
    ``door_offset``); once lined up with it (within ``align`` px) or in the doorway, a waypoint
    ``standoff`` px behind it; once ``past_wall`` px past the wall's centre line, the goal itself.
    A dot pressed against the wall beside the door is not in the doorway: it goes round first.
    Every argument after ``goals`` may be a scalar or an [N] array (the data generator jitters them).
    """
    pos, goal = np.atleast_2d(positions).astype(np.float64), np.atleast_2d(goals).astype(np.float64)
    wall_x, door_y = np.asarray(wall_x, np.float64), np.asarray(door_y, np.float64)
    side = np.where(goal[:, 0] > wall_x, 1.0, -1.0)  # direction of the goal's room
    past = side * (pos[:, 0] - wall_x)  # signed distance past the wall's centre line
    in_opening = np.abs(pos[:, 1] - door_y) <= DOOR_HALF_HEIGHT
    door_y = door_y + door_offset  # the height the waypoints aim at
    cross = ((past > -past_wall) & in_opening) | (np.abs(pos[:, 1] - door_y) <= align)
    exit_point = np.stack(np.broadcast_arrays(wall_x + side * standoff, door_y), axis=1)
    entry_point = np.stack(np.broadcast_arrays(wall_x - side * standoff, door_y), axis=1)
    target = np.where(cross[:, None], exit_point, entry_point)
    return np.where((past > past_wall)[:, None], goal, target)


# ------------------------------------------------------------------------------ start / goal
def sample_start_goal(
    rng: np.random.Generator, wall_x, door_y, margin: float = START_GOAL_MARGIN
) -> tuple[np.ndarray, np.ndarray]:
    """Start and goal in opposite rooms, uniform in each room with ``margin`` from every wall.

    As in docs/reference.md#evaluation-tasks (the reference's level "normal"): one point in the left room,
    one in the right, and a fair coin decides which is the start. Returns float64 arrays [N, 2] (N = len(wall_x)).
    """
    wall_x = np.atleast_1d(np.asarray(wall_x, dtype=np.float64))
    n = wall_x.shape[0]
    lo, hi = BORDER_LO + margin, BORDER_HI - margin
    left_x = rng.uniform(lo, wall_x - WALL_HALF_WIDTH - margin)
    right_x = rng.uniform(wall_x + WALL_HALF_WIDTH + margin, hi)
    left_y = rng.uniform(lo, hi, size=n)
    right_y = rng.uniform(lo, hi, size=n)
    left = np.stack([left_x, left_y], axis=1)
    right = np.stack([right_x, right_y], axis=1)
    start_right = rng.random(n) < 0.5
    start = np.where(start_right[:, None], right, left)
    goal = np.where(start_right[:, None], left, right)
    return start, goal


# --------------------------------------------------------------------------------- rendering
# Speed matters here: the training data is rendered on load, ~1,000 frames per batch. The dot is
# a 9 x 9 patch scattered by flat index into zeroed frames; the walls are drawn with a few slice
# writes per run of frames sharing a layout, or copied from a table of all 1,125 layouts (4.8 MB,
# built on first use) when layouts change from frame to frame.
_PATCH = 2 * _DOT_PATCH + 1
_FRAME_PIXELS = IMG_SIZE * IMG_SIZE


@lru_cache(maxsize=2048)
def _walls_cached(wall_x: int, door_y: int) -> np.ndarray:
    img = np.zeros((IMG_SIZE, IMG_SIZE), dtype=np.uint8)
    b_lo, b_hi = int(BORDER_LO), int(BORDER_HI)
    img[b_lo, :] = img[b_hi, :] = 255
    img[:, b_lo] = img[:, b_hi] = 255
    rows = np.arange(IMG_SIZE)
    closed = np.abs(rows - door_y) > DOOR_HALF_HEIGHT
    img[closed, wall_x - WALL_HALF_WIDTH : wall_x + WALL_HALF_WIDTH + 1] = 255
    img.setflags(write=False)
    return img


@lru_cache(maxsize=1)
def _wall_table() -> np.ndarray:
    """Wall channel of every random-wall layout: uint8 [25 * 45, 65, 65], row = _layout_row()."""
    table = np.stack([_walls_cached(int(w), int(d)) for w, d in all_layouts()])
    table.setflags(write=False)
    return table


def _layout_row(wall_x: np.ndarray, door_y: np.ndarray) -> np.ndarray:
    return (wall_x - WALL_X_MIN) * (DOOR_Y_MAX - DOOR_Y_MIN + 1) + (door_y - DOOR_Y_MIN)


def render_walls(wall_x: int, door_y: int) -> np.ndarray:
    """The wall channel of a layout, uint8 [65, 65] (read-only, cached)."""
    return _walls_cached(int(wall_x), int(door_y))


def dot_patches(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero part of the dot channel for each position.

    Returns (patch uint8 [N, 9, 9], row0 [N], col0 [N]): the patch goes at rows row0..row0+8 and
    columns col0..col0+8. Pixel value = trunc(255 * exp(-|pixel - p|^2 / (2 * 1.3^2))) evaluated at
    integer pixel centres (docs/reference.md#frames); beyond the patch every value truncates to 0.
    """
    p = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    centre = np.clip(np.rint(p).astype(np.int64), _DOT_PATCH, IMG_SIZE - 1 - _DOT_PATCH)
    offsets = np.arange(-_DOT_PATCH, _DOT_PATCH + 1)
    d2 = (centre[:, :, None] + offsets) - p[:, :, None]  # [N, 2, 9] offsets of pixel centres
    d2 *= d2
    # The exact formula at every pixel (one exp per pixel, not a product of two): this matches a
    # full-image evaluation bit for bit. In-place steps: fresh [N, 9, 9] temporaries cost more
    # than the arithmetic.
    g = d2[:, 1, :, None] + d2[:, 0, None, :]  # [N, y, x] squared distances
    np.divide(g, -(2.0 * DOT_STD**2), out=g)
    np.exp(g, out=g)
    g *= 255.0
    return g.astype(np.uint8), centre[:, 1] - _DOT_PATCH, centre[:, 0] - _DOT_PATCH


def _scatter_patches(flat: np.ndarray, frame_stride: int, patch: np.ndarray, row0, col0) -> None:
    """Write patches into a flat buffer whose frame i starts at ``i * frame_stride``."""
    n = patch.shape[0]
    within = (np.arange(_PATCH)[:, None] * IMG_SIZE + np.arange(_PATCH)[None, :]).ravel()
    base = np.arange(n, dtype=np.int64) * frame_stride + row0 * IMG_SIZE + col0
    flat[(base[:, None] + within[None, :]).ravel()] = patch.reshape(-1)


def render_dots(positions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The dot channel for a batch of positions: uint8 [N, 65, 65] (into ``out`` if given)."""
    patch, row0, col0 = dot_patches(positions)
    n = patch.shape[0]
    shape = (n, IMG_SIZE, IMG_SIZE)
    if out is None:
        out = np.zeros(shape, dtype=np.uint8)
    else:
        _check_out(out, shape)
        out[...] = 0
    if out.flags.c_contiguous:
        _scatter_patches(out.reshape(-1), _FRAME_PIXELS, patch, row0, col0)
    else:
        k = np.arange(_PATCH)
        out[np.arange(n)[:, None, None], row0[:, None, None] + k[None, :, None], col0[:, None, None] + k] = patch
    return out


def _check_out(out: np.ndarray, shape: tuple[int, ...]) -> None:
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != shape:
        got = (type(out).__name__, getattr(out, "dtype", None), getattr(out, "shape", None))
        raise ValueError(f"out must be a uint8 numpy array of shape {shape}, got {got}")


def _render_wall_channel(walls: np.ndarray, wall_x: np.ndarray, door_y: np.ndarray) -> None:
    """Draw each frame's wall channel into ``walls`` [N, 65, 65], which must be zero on entry."""
    n = walls.shape[0]
    wx, dy = wall_x.astype(np.int64), door_y.astype(np.int64)
    in_table = (
        (wx >= WALL_X_MIN) & (wx <= WALL_X_MAX) & (dy >= DOOR_Y_MIN) & (dy <= DOOR_Y_MAX)
        & (wall_x == wx) & (door_y == dy)
    )
    if not in_table.all():  # a layout outside the random-wall set: draw each distinct one
        layouts, inverse = np.unique(np.stack([wx, dy], axis=1), axis=0, return_inverse=True)
        walls[...] = np.stack([render_walls(w, d) for w, d in layouts])[inverse.ravel()]
        return
    rows = _layout_row(wx, dy)
    starts = np.flatnonzero(np.diff(rows, prepend=-1))  # runs of frames sharing a layout
    if starts.size * 8 > n:  # short runs: copy whole wall images from the table
        walls[...] = _wall_table()[rows]
        return
    # Long runs (the T frames of a window, the L states of a trajectory): a few slice writes per
    # run, the same pixels as _walls_cached.
    b_lo, b_hi = int(BORDER_LO), int(BORDER_HI)
    walls[:, b_lo, :] = walls[:, b_hi, :] = 255
    walls[:, :, b_lo] = walls[:, :, b_hi] = 255
    ends = np.append(starts[1:], n)
    for s, e, w, d in zip(starts.tolist(), ends.tolist(), wx[starts].tolist(), dy[starts].tolist()):
        cols = slice(w - WALL_HALF_WIDTH, w + WALL_HALF_WIDTH + 1)
        walls[s:e, : d - DOOR_HALF_HEIGHT, cols] = 255
        walls[s:e, d + DOOR_HALF_HEIGHT + 1 :, cols] = 255


def render_frames(positions: np.ndarray, wall_x, door_y, out: np.ndarray | None = None) -> np.ndarray:
    """Observations for a batch: uint8 [N, 2, 65, 65] (channel 0 dot, channel 1 walls).

    ``out``: an optional preallocated uint8 [N, 2, 65, 65] array to fill (and return).
    """
    positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    n = positions.shape[0]
    wall_x = np.broadcast_to(np.asarray(wall_x), (n,))
    door_y = np.broadcast_to(np.asarray(door_y), (n,))
    shape = (n, N_CHANNELS, IMG_SIZE, IMG_SIZE)
    if out is None:
        frames = np.empty(shape, dtype=np.uint8)
    else:
        _check_out(out, shape)
        frames = out
    if frames.flags.c_contiguous:
        frames.fill(0)  # one memset beats separate passes per channel
        patch, row0, col0 = dot_patches(positions)
        _scatter_patches(frames.reshape(-1), N_CHANNELS * _FRAME_PIXELS, patch, row0, col0)
    else:
        render_dots(positions, out=frames[:, 0])
        frames[:, 1] = 0
    _render_wall_channel(frames[:, 1], wall_x, door_y)
    return frames


def sample_tasks(
    rng: np.random.Generator, n: int, fixed_wall: bool = False, layouts: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Draw ``n`` evaluation tasks: layout first, then start and goal (docs/protocol.md).

    Returns {"wall_x": [n] int, "door_y": [n] int, "start": [n, 2], "goal": [n, 2]}. The env's
    ``reset(seed=s)`` and the batched evaluators both call this, so a task is the same everywhere.
    ``layouts`` [K, 2] (e.g. a split's held-out layouts): the task's own generator picks row
    ``rng.integers(K)`` of it instead of drawing wall_x and door_y, then start and goal as usual.
    """
    if layouts is not None:
        if fixed_wall:
            raise ValueError("fixed_wall and layouts exclude each other")
        pick = np.asarray(layouts, dtype=np.int64)[rng.integers(0, len(layouts), size=n)]
        wall_x, door_y = pick[:, 0], pick[:, 1]
    else:
        wall_x, door_y = sample_layouts(rng, n, fixed_wall)
    start, goal = sample_start_goal(rng, wall_x, door_y)
    return {"wall_x": wall_x, "door_y": door_y, "start": start, "goal": goal}


def task_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of evaluation task ``index`` under evaluation ``seed`` (docs/protocol.md)."""
    return np.random.default_rng([int(seed), int(index)])
