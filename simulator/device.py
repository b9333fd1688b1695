"""A simulated device: the domain API every wire format is rendered from."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from simulator.clock import SimClock
from simulator.errors import (
    MSG_ESTIMATION_OFF,
    MSG_PASSTHROUGH_OFF,
    MSG_SECONDARY,
    RejectedError,
)
from simulator.model.bins import (
    DayGrid,
    IntArray,
    Resolution,
    bin_peaks,
    bin_sums,
    day_grid,
    local_midnight,
)
from simulator.model.counter import Counts, Restart, count, occupancy, partial
from simulator.model.crowd import day_rng, simulate_crowd
from simulator.scenario import DeviceConfig, installed_date
from simulator.store import Action, Store


class DayCache:
    """A bounded LRU of computed device-days, shared by a fleet."""

    def __init__(self, max_days: int = 4096) -> None:
        self.max_days = max_days
        self._days: OrderedDict[tuple[int, date], Counts] = OrderedDict()

    def get(self, key: tuple[int, date]) -> Counts | None:
        """A cached day, marked as recently used."""
        hit = self._days.get(key)
        if hit is not None:
            self._days.move_to_end(key)
        return hit

    def put(self, key: tuple[int, date], counts: Counts) -> None:
        """Cache a day, evicting the least recently used beyond the bound."""
        self._days[key] = counts
        if len(self._days) > self.max_days:
            self._days.popitem(last=False)

    def clear(self) -> None:
        """Drop everything."""
        self._days.clear()


@dataclass(frozen=True)
class Realtime:
    """The real-time occupancy reading."""

    occupancy: int
    total_in: int
    total_out: int
    at: float


@dataclass(frozen=True, eq=False)
class Chunk:
    """The bins of one local day that an export returns, with their values."""

    grid: DayGrid
    starts: IntArray  # minute index of each bin start, all bins of the day
    keep: slice  # which of those bins are returned
    values: tuple[IntArray, ...]  # per returned bin


class Device:
    """One simulated device: counts from the crowd model plus recorded operator actions."""

    def __init__(
        self,
        cfg: DeviceConfig,
        index: int,
        seed: int,
        clock: SimClock,
        store: Store,
        cache: DayCache | None = None,
        sim_start: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.index = index
        self.seed = seed
        self.clock = clock
        self.store = store
        self.cache = cache if cache is not None else DayCache(64)
        self.tz = cfg.tz
        self.installed = installed_date(cfg, clock.now() if sim_start is None else sim_start)
        self.installed_at = local_midnight(self.tz, self.installed)
        self._reset_minute = cfg.occupancy.reset_time.hour * 60 + cfg.occupancy.reset_time.minute

    @property
    def id(self) -> str:
        """The device's id in the scenario."""
        return self.cfg.id

    # ---- time helpers -------------------------------------------------------------------
    def local_date(self, t: float) -> date:
        """The local calendar date holding epoch time ``t``."""
        return datetime.fromtimestamp(t, UTC).astimezone(self.tz).date()

    def grid(self, day: date) -> DayGrid:
        """The minute grid of a local day."""
        return day_grid(self.cfg.timezone, day)

    # ---- counts -------------------------------------------------------------------------
    def counts(self, day: date) -> Counts:
        """The device's counts for a whole local day (the model's pure function)."""
        key = (id(self), day)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        grid = self.grid(day)
        if day < self.installed:
            z = np.zeros(grid.n, dtype=np.int64)
            result = Counts(z, z, z, z)
        else:
            rng = day_rng(self.seed, self.index, day.toordinal())
            crowd = simulate_crowd(self.cfg.crowd, grid, self.cfg.counter.child_share, rng)
            result = count(crowd, self.cfg.counter, rng)
        self.cache.put(key, result)
        return result

    def observed(self, day: date, now: float) -> Counts:
        """The counts of a day as seen at ``now``: the current minute partial, none after it."""
        full = self.counts(day)
        grid = self.grid(day)
        if now >= grid.end:
            return full
        if now <= grid.start:
            z = np.zeros(grid.n, dtype=np.int64)
            return Counts(z, z, z, z)
        i = grid.index_of(now)
        f = grid.minute_of(now)

        def cut(a: IntArray) -> IntArray:
            b = np.zeros_like(a)
            b[:i] = a[:i]
            b[i] = partial(a[i : i + 1], f)[0]
            return b

        return Counts(cut(full.in_), cut(full.out), cut(full.in_adults), cut(full.out_adults))

    # ---- occupancy ----------------------------------------------------------------------
    def _reset_index(self, grid: DayGrid) -> int:
        """Index of the daily occupancy reset in a day (first minute at/after reset time)."""
        if self._reset_minute == 0:
            return 0
        after = grid.wall_minute >= self._reset_minute
        return int(np.argmax(after)) if after.any() else grid.n

    def _occupancy_window(self, day: date, now: float) -> tuple[int, IntArray, IntArray, IntArray]:
        """Occupancy at each minute end from the last reset before ``day`` through its end.

        Returns (index of the day's first minute in the window, occupancy, in, out), the
        counts being those observed at ``now``.
        """
        grid = self.grid(day)
        first = self._reset_index(grid)
        days = [day - timedelta(days=1), day] if first > 0 else [day]
        grids = [self.grid(d) for d in days]
        obs = [self.observed(d, now) for d in days]
        full = [self.counts(d) for d in days]
        in_ = np.concatenate([o.in_ for o in obs])
        out = np.concatenate([o.out for o in obs])
        full_in = np.concatenate([c.in_ for c in full])
        full_out = np.concatenate([c.out for c in full])
        w_start = grids[0].start
        offset = grids[0].n if first > 0 else 0
        begin = self._reset_index(grids[0]) if first > 0 else 0
        restarts: list[Restart] = [Restart(offset + first - begin, 0)] if first > 0 else []
        for a in self.store.actions(self.id, "adjust", w_start + 60 * begin, min(now, grid.end)):
            idx = int((a.at - w_start) // 60)
            if idx >= len(full_in):
                continue
            frac = ((a.at - w_start) % 60) / 60.0
            skip_in = int(partial(full_in[idx : idx + 1], frac)[0])
            skip_out = int(partial(full_out[idx : idx + 1], frac)[0])
            restarts.append(Restart(idx - begin, a.value, skip_in, skip_out))
        restarts.sort(key=lambda r: r.index)  # stable: a reset precedes adjustments in its minute
        occ = occupancy(in_[begin:], out[begin:], restarts)
        return offset - begin, occ, in_[begin:], out[begin:]

    def day_occupancy(self, day: date, now: float) -> tuple[IntArray, int]:
        """Occupancy at each minute end of a local day, and the value at its start."""
        n = self.grid(day).n
        if not self.cfg.occupancy.estimation:
            return np.zeros(n, dtype=np.int64), 0
        off, occ, _, _ = self._occupancy_window(day, now)
        before = int(occ[off - 1]) if off > 0 else 0
        return occ[off : off + n], before

    def realtime(self, now: float | None = None) -> Realtime:
        """Occupancy now, and the in/out totals since the last daily reset."""
        t = self.clock.now() if now is None else now
        day = self.local_date(t)
        grid = self.grid(day)
        off, occ, in_, out = self._occupancy_window(day, t)
        pos = off + min(grid.index_of(t), grid.n - 1)
        reset = off + self._reset_index(grid)
        since = reset if pos >= reset else 0  # the window starts at the reset before today's
        total_in = int(in_[since : pos + 1].sum())
        total_out = int(out[since : pos + 1].sum())
        value = int(occ[pos]) if self.cfg.occupancy.estimation else 0
        return Realtime(value, total_in, total_out, t)

    # ---- exports ------------------------------------------------------------------------
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
        self, start: float, end: float, resolution: Resolution, now: float | None = None
    ) -> Iterator[Chunk]:
        """In/out per bin for bins starting in [start, end), up to now, day by day."""
        t = self.clock.now() if now is None else now
        for day in self._days(start, min(end, t + 86400)):
            grid = self.grid(day)
            starts = grid.starts(resolution)
            keep = self._keep(grid, starts, start, end, t)
            if keep.start >= keep.stop:
                continue
            obs = self.observed(day, t)
            values = (bin_sums(obs.in_, starts)[keep], bin_sums(obs.out, starts)[keep])
            yield Chunk(grid, starts, keep, values)

    def occupancy_peaks(
        self, start: float, end: float, resolution: Resolution, now: float | None = None
    ) -> Iterator[Chunk]:
        """Peak occupancy per bin for bins starting in [start, end), up to now, day by day."""
        t = self.clock.now() if now is None else now
        for day in self._days(start, min(end, t + 86400)):
            grid = self.grid(day)
            starts = grid.starts(resolution)
            keep = self._keep(grid, starts, start, end, t)
            if keep.start >= keep.stop:
                continue
            occ, before = self.day_occupancy(day, t)
            if grid.start <= t < grid.end:
                occ = occ.copy()
                occ[grid.index_of(t) + 1 :] = occ[grid.index_of(t)]
            yield Chunk(grid, starts, keep, (bin_peaks(occ, before, starts)[keep],))

    # ---- control methods ----------------------------------------------------------------
    def adjust_occupancy(self, value: int, now: float | None = None) -> None:
        """Set the occupancy estimate to ``value`` from now on (adjustOccupancy)."""
        if self.cfg.occupancy.role == "secondary":
            raise RejectedError(MSG_SECONDARY)
        if not self.cfg.occupancy.estimation:
            raise RejectedError(MSG_ESTIMATION_OFF)
        t = self.clock.now() if now is None else now
        self.store.add(Action(self.id, t, "adjust", value))

    def restart_passthrough(self, now: float | None = None) -> None:
        """Restart the passthrough countdown from 0 without a threshold event."""
        if not self.cfg.passthrough.events:
            raise RejectedError(MSG_PASSTHROUGH_OFF)
        t = self.clock.now() if now is None else now
        self.store.add(Action(self.id, t, "passthrough-restart", 0))
