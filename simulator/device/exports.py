"""A device's exports: the bins of a time range, day by day, drawn ahead in blocks of days."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from simulator.device.counts import DeviceCounts
from simulator.device.occupancy import Occupancy
from simulator.model.bins import DayGrid, IntArray, Resolution, bin_peaks, bin_sums
from simulator.model.site import BLOCK_DAYS


@dataclass(frozen=True, eq=False)
class Chunk:
    """The bins of one local day that an export returns, with their values."""

    grid: DayGrid
    starts: IntArray  # minute index of each bin start, all bins of the day
    keep: slice  # which of those bins are returned
    values: tuple[IntArray, ...]  # per returned bin


class Exports(Occupancy):
    """In/out and peak occupancy per bin of a range, up to now."""

    def _days(self, start: float, end: float) -> Iterator[date]:
        d = max(self.local_date(start), self.installed)
        last = self.local_date(max(start, end - 1e-6))
        while d <= last:
            yield d
            d += timedelta(days=1)

    def _keep(self, grid: DayGrid, starts: IntArray, start: float, end: float, now: float) -> slice:
        t = grid.start + 60 * starts
        hi = min(end, now, float("inf"))
        lo = max(start, self.installed_at)
        i = int(np.searchsorted(t, lo, "left"))
        j = int(np.searchsorted(t, hi, "left"))
        return slice(i, max(i, j))

    def traffic(
        self, start: float, end: float, resolution: Resolution, now: float
    ) -> Iterator[Chunk]:
        """In/out per bin for bins starting in [start, end), up to now, day by day."""

        def values(day: date, starts: IntArray, t: float) -> tuple[IntArray, ...]:
            obs = self.observed(day, t)
            return bin_sums(obs.in_, starts), bin_sums(obs.out, starts)

        return self._export(start, end, resolution, now, [self], values)

    def occupancy_peaks(
        self, start: float, end: float, resolution: Resolution, now: float
    ) -> Iterator[Chunk]:
        """Peak occupancy per bin for bins starting in [start, end), up to now, day by day."""

        def values(day: date, starts: IntArray, t: float) -> tuple[IntArray, ...]:
            grid = self.grid(day)
            occ, before = self.day_occupancy(day, t)
            if grid.start <= t < grid.end:  # the rest of today holds the value now
                occ = occ.copy()
                occ[grid.index_of(t) + 1 :] = occ[grid.index_of(t)]
            return (bin_peaks(occ, before, starts),)

        return self._export(start, end, resolution, now, self.site.doors, values)

    def _export(
        self,
        start: float,
        end: float,
        resolution: Resolution,
        now: float,
        doors: Sequence[DeviceCounts],
        values: Callable[[date, IntArray, float], tuple[IntArray, ...]],
    ) -> Iterator[Chunk]:
        """The chunks of the days with returned bins; ``doors`` are drawn ahead in blocks."""
        t = now
        self.installed  # noqa: B018 - brings the installation date up to date first
        days = list(self._days(start, min(end, t + 86400)))
        for k in range(0, len(days), BLOCK_DAYS):
            for door in doors:  # the day before too: a reset window may start there
                door.prefetch(days[max(0, k - 1) : k + BLOCK_DAYS])
            for day in days[k : k + BLOCK_DAYS]:
                grid = self.grid(day)
                starts = grid.starts(resolution)
                keep = self._keep(grid, starts, start, end, t)
                if keep.start < keep.stop:
                    per_bin = values(day, starts, t)
                    yield Chunk(grid, starts, keep, tuple(v[keep] for v in per_bin))
