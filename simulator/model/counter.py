"""What the device reports: counts with misses and double counts, and its occupancy estimate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.model import rng
from simulator.model.bins import IntArray
from simulator.model.crowd import Groups
from simulator.model.rng import FloatArray, U64Array
from simulator.model.tables import PACK_SHIFT


@dataclass(frozen=True, eq=False)
class Counts:
    """The device's counts of one local day, per minute."""

    in_: IntArray
    out: IntArray
    in_adults: IntArray
    out_adults: IntArray

    @property
    def n(self) -> int:
        """Number of minutes."""
        return len(self.in_)


#: Random lanes of the counter's errors (the crowd's lanes are in ``crowd``); a lane + 4
#: decides, where a site's doors differ, whether a candidate error happens at its door.
LANE_MISS_IN, LANE_DOUBLE_IN, LANE_MISS_OUT, LANE_DOUBLE_OUT = 8, 9, 10, 11
LANE_ACCEPT = 4
_PACK = 1 << PACK_SHIFT
_ERRORS = (
    (LANE_MISS_IN, "miss_in", "in", -1),
    (LANE_DOUBLE_IN, "double_in", "in", +1),
    (LANE_MISS_OUT, "miss_out", "out", -1),
    (LANE_DOUBLE_OUT, "double_out", "out", +1),
)


def _observe(keys: U64Array, n: IntArray, p: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """Which of ``n[s]`` passages an error of probability ``p[s]`` hits, per segment ``s``.

    Independent Bernoulli trials drawn sparsely: the gaps between hits are geometric, one
    uniform per hit from the segment's lane ``keys[s]``. Returns (segment, passage, lane
    position) per hit. A segment whose hits outrun its budget of draws is drawn again with
    a larger one; the lane positions are the same, so the result does not depend on it.
    """
    mean = n * p
    budget = np.where((n > 0) & (p > 0), np.ceil(mean + 8.0 * np.sqrt(mean) + 16.0), 0)
    budget = budget.astype(np.int64)
    with np.errstate(divide="ignore"):
        scale = np.log1p(-p)
    pending = np.flatnonzero(budget)
    segs: list[IntArray] = []
    hits: list[IntArray] = []
    lanes: list[IntArray] = []
    while len(pending):
        b = budget[pending]
        ends = np.cumsum(b)
        seg = np.repeat(np.arange(len(b)), b)
        u = rng.to_unit(rng.runs(keys[pending], np.zeros(len(b), dtype=np.int64), b))
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.floor(np.log1p(-u) / scale[pending][seg])
        pos = np.cumsum(gap.astype(np.int64) + 1)
        pos -= np.repeat(np.concatenate([[0], pos[ends[:-1] - 1]]), b) + 1
        done = pos[ends - 1] >= n[pending]
        ok = np.flatnonzero(done[seg] & (pos < n[pending][seg]))
        segs.append(pending[seg[ok]])
        hits.append(pos[ok])
        lanes.append(ok - (ends - b)[seg[ok]])
        budget[pending] *= 2
        pending = pending[~done]
    if not segs:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    return np.concatenate(segs), np.concatenate(hits), np.concatenate(lanes)


def _people(
    flat: IntArray, groups: Groups, length: int, packed: FloatArray | None
) -> tuple[IntArray, IntArray]:
    """People and adults per flat minute index (indices from ``length`` on are dropped).

    ``packed``: each group's size + adults × 2^24, usable while no sum can reach 2^24.
    """
    if packed is not None:
        people = np.bincount(flat, packed, length + 1)[:length].astype(np.int64)
        adults = people >> PACK_SHIFT
        people &= _PACK - 1
        return people, adults
    size = groups.size
    people = np.bincount(flat, size, length + 1)[:length].astype(np.int64)
    adults = np.bincount(flat, size - groups.children, length + 1)[:length].astype(np.int64)
    return people, adults


def _errors(
    groups: Groups,
    where: dict[str, tuple[IntArray, IntArray]],
    totals: dict[str, IntArray],
    adult: dict[str, IntArray],
) -> None:
    """Apply the misses and double counts of every door to its per-minute counts."""
    spec = groups.spec
    nd = len(groups.days)
    p_door = np.array([[getattr(c, e[1]) for c in spec.counters] + [0.0] for e in _ERRORS])
    p_max = p_door.max(axis=1)
    size = groups.size
    cum = np.cumsum(size)
    vstart = np.concatenate([[0], cum])[groups.first]
    keys = np.concatenate([groups.keys(e[0]) for e in _ERRORS])
    seg, pos, j = _observe(keys, np.tile(np.diff(vstart), len(_ERRORS)), np.repeat(p_max, nd))
    error, day = np.divmod(seg, nd)
    v = vstart[day] + pos
    g = np.searchsorted(cum, v, side="right")
    table = spec.groups
    kind = groups.kind[g]
    child = (v - cum[g] + size[g]) >= table.size[kind] - table.children[kind]
    for e, (lane, _, direction, sign) in enumerate(_ERRORS):
        sel = np.flatnonzero(error == e)
        if len(sel) == 0:
            continue
        doors, flat = where[direction]
        p_hit = p_door[e][doors[g[sel]]]
        if (p_hit < p_max[e]).any():
            u = rng.uniform(groups.keys(lane + LANE_ACCEPT)[day[sel]], j[sel])
            sel = sel[u * p_max[e] < p_hit]
        np.add.at(totals[direction], flat[g[sel]], sign)
        np.add.at(adult[direction], flat[g[sel[~child[sel]]]], sign)


def count(groups: Groups) -> list[Counts]:
    """The device's counts at each door of a site, on the groups' flat minute axis.

    Every passage is missed with probability ``miss_in``/``miss_out`` and counted twice
    with ``double_in``/``double_out`` of the door it passes (independently); a child
    (under the height threshold) is counted, but not as an adult.
    """
    spec = groups.spec
    n, m = spec.n_doors, groups.minutes
    at = np.repeat(groups.offsets[:-1], groups.per_day)
    entry, exit_ = groups.doors()
    where = {"in": (entry, at + groups.arrive), "out": (exit_, at + groups.leave)}
    if not spec.one_way:
        where = {d: (door, flat + door * m) for d, (door, flat) in where.items()}
    table = spec.groups
    packed = None
    if len(groups.kind) * int(table.size.max()) < _PACK:
        packed = table.packed[groups.kind]
    totals, adult = {}, {}
    for direction, (_, flat) in where.items():
        totals[direction], adult[direction] = _people(flat, groups, n * m, packed)
    _errors(groups, where, totals, adult)

    def door(a: IntArray, d: int) -> IntArray:
        return a[d * m : (d + 1) * m]

    return [
        Counts(
            door(totals["in"], d),
            door(totals["out"], d),
            door(adult["in"], d),
            door(adult["out"], d),
        )
        for d in range(n)
    ]


def partial(values: IntArray, fraction: float | FloatArray) -> IntArray:
    """How many of each minute's counts have happened after ``fraction`` of it.

    Counts inside a minute are spread evenly, so the observed value grows monotonically
    and reaches the whole minute's count when the minute ends.
    """
    result: IntArray = np.floor(values * fraction + 1e-9).astype(np.int64)
    return result


@dataclass(frozen=True)
class Restart:
    """The occupancy estimate set to ``value`` during minute ``index``.

    A daily reset is a restart at 0; an ``adjustOccupancy`` is a restart at its value.
    ``skip_in``/``skip_out`` are the counts of that minute that came before the restart
    and so do not move the new value. Restarts are applied in the order given.
    """

    index: int
    value: int
    skip_in: int = 0
    skip_out: int = 0


def occupancy(
    in_: IntArray, out: IntArray, restarts: Sequence[Restart], initial: int = 0
) -> IntArray:
    """Occupancy estimate at the end of each minute: counted in − out, never below zero.

    Between restarts the estimate is the walk ``X = v + cumsum(in − out)`` reflected at
    zero: ``X − min(0, running min X)``. ``in_``/``out`` hold the counts as observed (a
    partial current minute, zero after it).
    """
    n = len(in_)
    occ = np.zeros(n, dtype=np.int64)
    if n == 0:
        return occ
    net = (in_ - out).astype(np.int64)
    segments = [Restart(0, initial)]
    for r in restarts:
        if r.index >= n:
            continue
        if segments[-1].index == r.index:
            segments[-1] = r  # a later restart in the same minute supersedes
        else:
            segments.append(r)
    for k, r in enumerate(segments):
        stop = segments[k + 1].index if k + 1 < len(segments) else n
        seg = net[r.index : stop].copy()
        seg[0] -= r.skip_in - r.skip_out
        x = r.value + np.cumsum(seg)
        occ[r.index : stop] = x - np.minimum(0, np.minimum.accumulate(x))
    return occ
