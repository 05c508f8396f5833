"""Named, seeded splits of the 1,125 (wall_x, door_y) layouts: train on k, evaluate on unseen ones.

One held-out set serves every split: 112 layouts (10 %, ``held_out_layouts()``: the first 112 of
a permutation of ``core.all_layouts()`` seeded 0). It is also the validation set that the world-model
trainer and the offline baselines have always excluded from their "train" split, so a model trained
on any dataset file with that split has never seen a held-out layout.

The train set of a split is drawn from the 1,013 remaining layouts:

==========  ===============================================================================
name        train layouts
==========  ===============================================================================
``k10``     the first 10 of the remaining layouts in an order seeded by (0, 22); nested:
            ``k1`` is in ``k5``, which is in ``k10``, ... (same seed)
``k10-s3``  the same with the order seeded by (3, 22): another draw of 10 layouts
``all``     every remaining layout (1,013)
==========  ===============================================================================

The seed is part of a name only when it is not 0 (``k10-s0`` is read as ``k10``). Layout sets are
written ``heldout:SPLIT`` (the held-out layouts, the same for every split), ``train:SPLIT`` (the
split's train layouts) or ``all`` (every layout); :func:`resolve_layouts` turns one into an int
array [K, 2] of (wall_x, door_y), sorted.

    split = layout_split("k10")
    split.train.shape, split.heldout.shape   # (10, 2), (112, 2)
    resolve_layouts("heldout:k10")           # the 112 held-out layouts
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tworooms_env import core

HELDOUT_FRACTION = 0.1
HELDOUT_SEED = 0
STUDY_K = (1, 5, 10, 20, 40)  # the layouts study's train-set sizes (plus "all")
STUDY_SPLITS = tuple(f"k{k}" for k in STUDY_K) + ("all",)
_ORDER_STREAM = 22  # second word of the train order's seed, apart from other uses of small seeds
_NAME = re.compile(r"^(?:k(?P<k>\d+)|(?P<all>all))(?:-s(?P<seed>\d+))?$")


def layout_codes(wall_x, door_y) -> np.ndarray:
    """One integer per layout (wall_x * 64 + door_y), for set operations on layouts."""
    return np.asarray(wall_x, dtype=np.int64) * 64 + np.asarray(door_y, dtype=np.int64)


def held_out_layouts(fraction: float = HELDOUT_FRACTION, seed: int = HELDOUT_SEED) -> np.ndarray:
    """A deterministic set of held-out layouts: int [K, 2] of (wall_x, door_y), sorted.

    The default (10 %, seed 0: 112 layouts) is the held-out set of every named split."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    layouts = core.all_layouts()
    order = np.random.default_rng(seed).permutation(layouts.shape[0])
    return layouts[np.sort(order[: int(round(fraction * layouts.shape[0]))])]


def _remaining_layouts() -> np.ndarray:
    layouts = core.all_layouts()
    held = held_out_layouts()
    keep = ~np.isin(layout_codes(*layouts.T), layout_codes(*held.T))
    return layouts[keep]


@dataclass(frozen=True)
class LayoutSplit:
    """A named split: ``train`` [k, 2] and ``heldout`` [112, 2] layouts, disjoint, both sorted."""

    name: str
    k: int | None  # None for "all"
    seed: int
    train: np.ndarray
    heldout: np.ndarray

    def to_dict(self, with_layouts: bool = True) -> dict:
        """What a dataset file's metadata records of the split."""
        out = {"name": self.name, "k": self.k, "seed": self.seed, "num_train": int(len(self.train)),
               "num_heldout": int(len(self.heldout)), "heldout_fraction": HELDOUT_FRACTION,
               "heldout_seed": HELDOUT_SEED}
        if with_layouts:
            out["train_layouts"] = self.train.tolist()
        return out


def parse_split_name(name: str) -> tuple[int | None, int]:
    """``"k10"`` -> (10, 0), ``"k10-s3"`` -> (10, 3), ``"all"`` -> (None, 0); a clear error otherwise."""
    m = _NAME.match(str(name).strip())
    if m is None:
        raise ValueError(f"unknown layout split {name!r}; expected kN (N train layouts, e.g. k10), kN-sS "
                         f"(another seed S), or all (the {len(_remaining_layouts())} non-held-out layouts)")
    seed = int(m["seed"] or 0)
    if m["all"]:
        if seed:
            raise ValueError(f"layout split {name!r}: 'all' takes every non-held-out layout and has no seed")
        return None, 0
    k, n_rest = int(m["k"]), len(_remaining_layouts())
    if not 1 <= k <= n_rest:
        raise ValueError(f"layout split {name!r}: k must be in 1..{n_rest} (the layouts outside the held-out set)")
    return k, seed


def split_name(k: int | None, seed: int = 0) -> str:
    """The canonical name of a split: ``k10``, ``k10-s3`` or ``all``."""
    if k is None:
        return "all"
    return f"k{k}" + (f"-s{seed}" if seed else "")


def layout_split(name: str) -> LayoutSplit:
    """The named split (see the module docstring); ``ValueError`` for an unknown name."""
    k, seed = parse_split_name(name)
    rest, held = _remaining_layouts(), held_out_layouts()
    if k is None:
        train = rest
    else:
        order = np.random.default_rng([seed, _ORDER_STREAM]).permutation(rest.shape[0])
        train = rest[np.sort(order[:k])]  # rest is sorted, so sorting indices sorts layouts
    return LayoutSplit(split_name(k, seed), k, seed, train, held)


def resolve_layouts(spec: str | np.ndarray | None) -> np.ndarray | None:
    """A layout set as int [K, 2] (sorted by wall_x then door_y), or None for "every layout".

    ``spec``: None or ``"all"`` (every layout: None), ``"heldout:SPLIT"``, ``"train:SPLIT"``, or an
    array-like [K, 2] of (wall_x, door_y) (validated, duplicates removed)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        text = spec.strip()
        if text == "all":
            return None
        role, sep, name = text.partition(":")
        if not sep or role not in ("heldout", "train"):
            raise ValueError(f"unknown layout set {spec!r}; expected heldout:SPLIT, train:SPLIT (e.g. heldout:k10) "
                             "or all")
        split = layout_split(name)
        return split.heldout if role == "heldout" else split.train
    layouts = np.asarray(spec)
    if layouts.ndim != 2 or layouts.shape[1] != 2 or layouts.shape[0] == 0:
        raise ValueError(f"layouts must be a non-empty [K, 2] array of (wall_x, door_y), got shape {layouts.shape}")
    core.validate_layout(layouts[:, 0], layouts[:, 1])
    return np.unique(layouts.astype(np.int64), axis=0)


def contains(layouts: np.ndarray, wall_x, door_y) -> np.ndarray:
    """bool per (wall_x, door_y): the layout is one of ``layouts`` [K, 2]."""
    return np.isin(layout_codes(wall_x, door_y), layout_codes(layouts[:, 0], layouts[:, 1]))


__all__ = ["LayoutSplit", "layout_split", "resolve_layouts", "held_out_layouts", "parse_split_name", "split_name",
           "layout_codes", "contains", "STUDY_K", "STUDY_SPLITS", "HELDOUT_FRACTION", "HELDOUT_SEED"]
