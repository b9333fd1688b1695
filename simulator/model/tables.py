"""Sampling tables of the crowd: one random draw picks a value with a single array lookup.

- arrival minute: Walker's alias table over the day's minutes (exact to 2^-32), padded to
  a common width so many days' tables stack into one array;
- group size and children, dwell time, doors: 2^16-cell inverse-CDF tables (a 16-bit slice
  of a random word picks a cell; each outcome's probability is rounded to 2^-16).
Tables depend only on configuration and are cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from math import comb
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from simulator.model.bins import DayGrid, IntArray
from simulator.model.specs import CrowdSpec, Hours, PeakSpec

FloatArray = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]

TABLE_BITS = 16
TABLE = 1 << TABLE_BITS
#: Width of every alias table: the most minutes a local day has (a 25-hour DST day).
WIDTH = 1500
#: Packs a group's adults above its size in one exact double (see ``counter``).
PACK_SHIFT = 24


@dataclass(frozen=True, eq=False)
class Alias:
    """Walker alias table over minutes: cell ``c`` gives ``first[c]`` if the fraction of
    the draw inside the cell is below ``threshold[c]`` (in 2^-32), else ``alias[c]``."""

    first: IntArray
    alias: IntArray
    threshold: U64Array

    @staticmethod
    def build(minutes: IntArray, weights: FloatArray) -> Alias:
        """Vose's construction for ``weights`` over ``minutes``, padded to ``WIDTH`` cells."""
        p = np.zeros(WIDTH)
        p[: len(weights)] = weights * (WIDTH / weights.sum())
        pv = p.tolist()
        prob = [1.0] * WIDTH
        alias = list(range(WIDTH))
        small = [i for i in range(WIDTH) if pv[i] < 1.0]
        large = [i for i in range(WIDTH) if pv[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = pv[s], g
            pv[g] -= 1.0 - pv[s]
            (small if pv[g] < 1.0 else large).append(g)
        thr = np.minimum(np.floor(np.array(prob) * 2.0**32), 2.0**32).astype(np.uint64)
        m = np.zeros(WIDTH, dtype=np.int64)
        m[: len(minutes)] = minutes
        return Alias(m, m[np.array(alias, dtype=np.int64)], thr)

    @staticmethod
    def uniform(minutes: IntArray) -> Alias:
        """Every one of ``minutes`` equally likely."""
        return Alias.build(minutes, np.ones(len(minutes)))


def rate_shape(
    profile: Sequence[PeakSpec],
    base: float,
    grid: DayGrid,
    hours: Hours,
    taper: int = 0,
) -> FloatArray:
    """Relative arrival rate of each minute of a day (zero while closed), summing to 1.

    Base level plus Gaussian peaks, falling linearly to zero over the ``taper`` minutes
    before closing (few come in just before the doors close).
    """
    wall = grid.wall_minute.astype(np.float64)
    shape = np.full(grid.n, base)
    for p in profile:
        shape += p.weight * np.exp(-0.5 * ((wall - p.at) / p.width_minutes) ** 2)
    if taper > 0:
        shape *= np.clip((hours[1] - wall - 0.5) / taper, 0.0, 1.0)
    shape[(grid.wall_minute < hours[0]) | (grid.wall_minute >= hours[1])] = 0.0
    total = shape.sum()
    return shape / total if total > 0 else shape


def shape_alias(
    profile: Sequence[PeakSpec], base: float, grid: DayGrid, hours: Hours, taper: int = 0
) -> Alias | None:
    """The alias table of a day's arrival profile, None if no minute has a rate."""
    shape = rate_shape(profile, base, grid, hours, taper)
    open_ = np.flatnonzero(shape > 0)
    return Alias.build(open_, shape[open_]) if len(open_) else None


def size_weights(crowd: CrowdSpec) -> tuple[float, ...]:
    """Weights of group sizes 1, 2, 3, ...: configured, or geometric with the mean size."""
    if crowd.group_sizes is not None:
        return crowd.group_sizes
    p = 1.0 / crowd.group_size_mean
    out: list[float] = []
    tail = 1.0
    while tail > 1e-7 and len(out) < 50:
        out.append(p * (1.0 - p) ** len(out))
        tail -= out[-1]
    return tuple(out)


@dataclass(frozen=True, eq=False)
class GroupTable:
    """Per 16-bit cell: a group's size, its children, and both packed as one double."""

    size: IntArray
    children: IntArray
    packed: FloatArray  # size + adults · 2^PACK_SHIFT
    mean: float


@lru_cache(maxsize=64)
def group_table(sizes: tuple[float, ...], child_share: float) -> GroupTable:
    """The (size, children) table of a group-size distribution and a share of children.

    Children accompany an adult: in a group of ``s`` each of the other ``s − 1`` is a child
    with probability ``q`` = share × mean / (mean − 1), which makes ``child_share`` of all
    visitors children. Where that cannot reach the share (most groups alone), every member
    is a child with probability ``child_share``.
    """
    w = np.array(sizes, dtype=np.float64)
    w /= w.sum()
    s = np.arange(1, len(w) + 1)
    mean = float((w * s).sum())
    q = child_share * mean / (mean - 1.0) if mean > 1.0 else 2.0
    alone = q > 1.0
    outcomes: list[tuple[int, int, float]] = []
    for size, ws in zip(s.tolist(), w.tolist(), strict=True):
        n, pc = (size, child_share) if alone else (size - 1, q)
        for c in range(n + 1):
            pr = ws * comb(n, c) * pc**c * (1.0 - pc) ** (n - c)
            if pr > 0:
                outcomes.append((size, c, pr))
    counts = _cells([o[2] for o in outcomes])
    size_tab = np.repeat(np.array([o[0] for o in outcomes], dtype=np.int64), counts)
    child_tab = np.repeat(np.array([o[1] for o in outcomes], dtype=np.int64), counts)
    packed = (size_tab + ((size_tab - child_tab) << PACK_SHIFT)).astype(np.float64)
    return GroupTable(size_tab, child_tab, packed, float(size_tab.mean()))


def _cells(weights: Sequence[float]) -> IntArray:
    """How many of the 2^16 cells each outcome gets (rounded cumulative shares)."""
    w = np.asarray(weights, dtype=np.float64)
    edges = np.rint(np.cumsum(w) / w.sum() * TABLE).astype(np.int64)
    return np.diff(np.concatenate([[0], edges]))


@cache
def _normal_quantiles() -> FloatArray:
    """Standard normal quantiles at the midpoints of the 2^16 equal-probability cells."""
    inv = NormalDist().inv_cdf
    return np.array([inv((k + 0.5) / TABLE) for k in range(TABLE)])


@lru_cache(maxsize=64)
def dwell_table(median: float, sigma: float) -> IntArray:
    """Whole-minute dwell times per cell: lognormal(median, sigma), capped at a day."""
    minutes = np.rint(median * np.exp(sigma * _normal_quantiles()))
    return np.minimum(minutes, 1500).astype(np.int64)


def share_table(weights: Sequence[float]) -> IntArray:
    """Index ``i`` per cell with probability weights[i] / sum."""
    return np.repeat(np.arange(len(weights), dtype=np.int64), _cells(weights))


@lru_cache(maxsize=64)
def door_tables(entry: tuple[float, ...], stay: tuple[float, ...]) -> tuple[IntArray, IntArray]:
    """The entry-door table, and per entry door its exit-door table (end to end).

    Who entered by door ``j`` leaves by it with probability ``stay[j]``, else by another
    door in proportion to their entry shares; with no other door they leave unseen
    (exit index ``len(entry)``).
    """
    n = len(entry)
    exits = []
    for j in range(n):
        w = [0.0] * (n + 1)
        w[j] = stay[j]
        others = sum(entry) - entry[j]
        for i in range(n):
            if i != j and others > 0:
                w[i] = (1.0 - stay[j]) * entry[i] / others
        if others <= 0:
            w[n] = 1.0 - stay[j]
        exits.append(share_table(w))
    return share_table(entry if sum(entry) > 0 else (1.0,) * n), np.concatenate(exits)
