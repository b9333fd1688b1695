"""Local-time day grids and vectorised aggregation of minute arrays into bins.

A local day is the half-open interval [local midnight, next local midnight) in the
device's time zone: 1440 minutes, or 1380/1500 on the days a DST change happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

Resolution = Literal["minute", "hour", "day"]
IntArray = npt.NDArray[np.int64]


def local_midnight(tz: ZoneInfo, day: date) -> int:
    """Epoch seconds of local midnight starting ``day`` (the first midnight if ambiguous)."""
    return int(datetime.combine(day, time(0, 0), tz).timestamp())


def _offset(tz: ZoneInfo, t: int) -> int:
    off = datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


@dataclass(frozen=True, eq=False)
class DayGrid:
    """The minutes of one local day: UTC start, count and each minute's local wall time."""

    day: date
    start: int  # epoch seconds of local midnight
    end: int  # epoch seconds of the next local midnight
    wall_minute: IntArray  # local wall-clock minute of day (0..1439) of each minute
    hour_starts: IntArray  # indices of the first minute of each hour bin

    @property
    def n(self) -> int:
        """Number of minutes in the day."""
        return len(self.wall_minute)

    def index_of(self, t: float) -> int:
        """Index of the minute holding epoch time ``t`` (clamped to 0..n)."""
        return min(max(int((t - self.start) // 60), 0), self.n)

    def starts(self, resolution: Resolution) -> IntArray:
        """Indices of the first minute of each bin at ``resolution``."""
        if resolution == "minute":
            return np.arange(self.n, dtype=np.int64)
        if resolution == "hour":
            return self.hour_starts
        return np.zeros(1, dtype=np.int64)

    def minute_of(self, t: float) -> float:
        """Fraction of the minute holding ``t`` that has elapsed (0 <= f < 1)."""
        return ((t - self.start) % 60) / 60.0


@lru_cache(maxsize=8192)
def day_grid(tz_name: str, day: date) -> DayGrid:
    """Build (and cache) the minute grid of a local day in a time zone."""
    tz = ZoneInfo(tz_name)
    start = local_midnight(tz, day)
    end = local_midnight(tz, day + timedelta(days=1))
    n = (end - start) // 60
    idx = np.arange(n, dtype=np.int64)
    off0 = _offset(tz, start)
    off1 = _offset(tz, end - 60)
    wall = idx.copy()
    if off0 != off1:
        # One transition in the day: find the first minute with the new offset.
        lo, hi = 0, n - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if _offset(tz, start + 60 * mid) == off0:
                lo = mid + 1
            else:
                hi = mid
        wall[lo:] += (off1 - off0) // 60
    hour = wall // 60
    change = np.ones(n, dtype=bool)
    change[1:] = (hour[1:] != hour[:-1]) | (wall[1:] < wall[:-1])
    hour_starts = np.flatnonzero(change).astype(np.int64)
    return DayGrid(day, start, end, wall, hour_starts)


def bin_sums(values: IntArray, starts: IntArray) -> IntArray:
    """Sum minute values into bins starting at ``starts`` (vectorised)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(values, starts).astype(np.int64)


def bin_peaks(occupancy_end: IntArray, occupancy_before: int, starts: IntArray) -> IntArray:
    """Peak occupancy per bin: the most of the value at each bin's start and its minute ends.

    ``occupancy_end[i]`` is the occupancy at the end of minute ``i``; the value at the start
    of a bin is the end of the minute before it (``occupancy_before`` for the first minute).
    """
    if len(occupancy_end) == 0:
        return np.zeros(0, dtype=np.int64)
    peaks = np.maximum.reduceat(occupancy_end, starts)
    before = np.empty_like(starts)
    before[starts > 0] = occupancy_end[starts[starts > 0] - 1]
    before[starts == 0] = occupancy_before
    return np.maximum(peaks, before).astype(np.int64)
