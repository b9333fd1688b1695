"""What the device reports: counts with misses and double counts, and its occupancy estimate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.model.bins import IntArray
from simulator.model.crowd import Crowd
from simulator.scenario import CounterConfig


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


def _observe(true: IntArray, miss: float, double: float, rng: np.random.Generator) -> IntArray:
    """Counted = passed − missed + counted twice."""
    counted = true.copy()
    if miss > 0:
        counted -= rng.binomial(true, miss)
    if double > 0:
        counted += rng.binomial(true, double)
    return counted


def count(crowd: Crowd, cfg: CounterConfig, rng: np.random.Generator) -> Counts:
    """Turn a day's true movements into the device's counts (adults measured by height)."""
    in_a = _observe(crowd.in_adults, cfg.miss_in, cfg.double_in, rng)
    in_c = _observe(crowd.in_children, cfg.miss_in, cfg.double_in, rng)
    out_a = _observe(crowd.out_adults, cfg.miss_out, cfg.double_out, rng)
    out_c = _observe(crowd.out_children, cfg.miss_out, cfg.double_out, rng)
    return Counts(in_a + in_c, out_a + out_c, in_a, out_a)


def partial(values: IntArray, fraction: float) -> IntArray:
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
