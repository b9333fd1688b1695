"""The device's occupancy estimate: windows from the last reset, per-day values, real time."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from simulator.device.counts import DeviceCounts, on_grid
from simulator.device.days import PackedArray, pack, unpack
from simulator.model.bins import DayGrid, IntArray
from simulator.model.counter import Counts, Restart, occupancy, partial


@dataclass(frozen=True, eq=False)
class Window:
    """The occupancy estimate over a reset window: from the last reset before a day on."""

    start: float  # epoch time of the window's first minute
    offset: int  # index of the day's first minute in the window
    occ: IntArray  # occupancy at each minute end
    in_: IntArray  # counts in per minute (the site's doors summed)
    out: IntArray  # counts out per minute
    restarts: frozenset[int]  # minutes in which the estimate restarts (reset, adjustment)


@dataclass(frozen=True)
class Realtime:
    """The real-time occupancy reading."""

    occupancy: int
    total_in: int
    total_out: int
    at: float


@dataclass(frozen=True, slots=True)
class Minute:
    """What a reading needs of its minute, the same all minute long (a few numbers: a fleet
    keeps one per device it was asked about, rather than unpacking its day per reading)."""

    start: float  # epoch time of the reset window's first minute
    since: int  # index of the reset the totals count from
    pos: int  # index of the minute in the window
    in_before: int  # the site's counts in from ``since`` up to the minute
    out_before: int
    occ_before: int  # the estimate at the end of the minute before
    doors: tuple[tuple[int, int], ...]  # each door's in and out in the whole minute


class Occupancy(DeviceCounts):
    """Occupancy at each minute end (in − out over the site's doors, restarted at the daily
    reset and at adjustments on the site's primary) and the real-time reading."""

    # Memos, keyed by what they depend on (see :meth:`site_revision`).
    _realtime: tuple[Hashable, Realtime] | None = None
    _day_window: tuple[Hashable, float, int, frozenset[int], PackedArray] | None = None
    _minute: tuple[Hashable, Minute | None] | None = None

    @property
    def _reset_minute(self) -> int:
        reset = self.cfg.occupancy.reset_time
        return reset.hour * 60 + reset.minute

    def site_revision(self) -> Hashable:
        """What the site's counts depend on: every door's :meth:`revision`."""
        return tuple(d.revision() for d in self.site.doors)

    def _reset_index(self, grid: DayGrid) -> int:
        """Index of the daily occupancy reset in a day (first minute at/after reset time)."""
        if self._reset_minute == 0:
            return 0
        after = grid.wall_minute >= self._reset_minute
        return int(np.argmax(after)) if after.any() else grid.n

    def _occupancy_window(self, day: date, now: float, adjusted: bool = True) -> Window:
        """Occupancy at each minute end from the last reset before ``day`` through its end,
        with the counts observed at ``now`` (and the adjustments up to it, if ``adjusted``).

        The store keeps one adjustment per minute, so a window holds at most one restart
        per minute however many adjustments were made."""
        grid = self.grid(day)
        first = self._reset_index(grid)
        days = [day - timedelta(days=1), day] if first > 0 else [day]
        grids = [self.grid(d) for d in days]
        in_, out = self._site_sum(days, lambda door, d: door.observed(d, now))
        w_start = grids[0].start
        offset = grids[0].n if first > 0 else 0
        begin = self._reset_index(grids[0]) if first > 0 else 0
        restarts: list[Restart] = [Restart(offset + first - begin, 0)] if first > 0 else []
        if adjusted:
            restarts += self._adjust_restarts(days, w_start, begin, min(now, grid.end))
        restarts.sort(key=lambda r: r.index)  # stable: a reset precedes adjustments in its minute
        occ = occupancy(in_[begin:], out[begin:], restarts)
        restart_at = frozenset(r.index for r in restarts)
        w0 = w_start + 60 * begin
        return Window(w0, offset - begin, occ, in_[begin:], out[begin:], restart_at)

    def _adjust_restarts(
        self, days: list[date], w_start: float, begin: int, until: float
    ) -> list[Restart]:
        """The restarts of the adjustments from minute ``begin`` of a window until ``until``."""
        adjustments = self.store.actions(
            self.site.primary_id, "adjust", w_start + 60 * begin, until
        )
        if not adjustments:
            return []
        full_in, full_out = self._site_sum(days, lambda door, d: door.counts(d))
        at = np.array([a.at for a in adjustments]) - w_start
        idx = (at // 60).astype(np.int64)
        keep = idx < len(full_in)
        frac = (at % 60) / 60.0
        skip_in = partial(full_in[idx[keep]], frac[keep])
        skip_out = partial(full_out[idx[keep]], frac[keep])
        values = [a.value for a, k in zip(adjustments, keep, strict=True) if k]
        return [
            Restart(int(i) - begin, v, int(si), int(so))
            for i, v, si, so in zip(idx[keep], values, skip_in, skip_out, strict=True)
        ]

    def _site_sum(
        self, days: list[date], get: Callable[[DeviceCounts, date], Counts]
    ) -> tuple[IntArray, IntArray]:
        """In and out per minute over ``days``, summed over the doors of this device's site."""
        ins, outs = [], []
        for d in days:
            parts = [get(door, d) for door in self.site.doors]
            ins.append(parts[0].in_ if len(parts) == 1 else sum(p.in_ for p in parts))
            outs.append(parts[0].out if len(parts) == 1 else sum(p.out for p in parts))
        return np.concatenate(ins).astype(np.int64), np.concatenate(outs).astype(np.int64)

    def day_occupancy(self, day: date, now: float) -> tuple[IntArray, int]:
        """Occupancy at each minute end of a local day, and the value at its start."""
        n = self.grid(day).n
        if not self.cfg.occupancy.estimation:
            return np.zeros(n, dtype=np.int64), 0
        w = self._occupancy_window(day, now)
        before = int(w.occ[w.offset - 1]) if w.offset > 0 else 0
        return w.occ[w.offset : w.offset + n], before

    def realtime(self, now: float) -> Realtime:
        """Occupancy now, and the in/out totals since the last daily reset (to the second)."""
        t = on_grid(now)
        adjusted = self.store.kind_revision(self.site.primary_id, "adjust")
        revision = self.site_revision()
        key = (t, revision, adjusted)
        if self._realtime is not None and self._realtime[0] == key:
            return self._realtime[1]
        result = self._compute_realtime(t, revision)
        self._realtime = (key, result)
        return result

    def _base_window(self, day: date) -> Window:
        """The whole-day window of a day without adjustments.

        Memoised by day and the site's counts (adjustments do not change it), packed: a
        fleet holds one per device it was asked about."""
        key = (day, self.site_revision())
        memo = self._day_window
        if memo is None or memo[0] != key:
            w = self._occupancy_window(day, self.grid(day).end, adjusted=False)
            self._day_window = (key, w.start, w.offset, w.restarts, pack([w.occ, w.in_, w.out]))
            return w
        occ, in_, out = unpack(memo[4])
        return Window(memo[1], memo[2], occ, in_, out, memo[3])

    def _compute_realtime(self, t: float, revision: Hashable | None = None) -> Realtime:
        """The reading at ``t``: what its minute needs of the day (memoised for the minute),
        the partial current minute, and the walk from the latest adjustment; in a reset's
        minute, afresh.

        Only the latest adjustment at or before ``t`` matters, so the work does not grow
        with the number of adjustments. ``revision``: :meth:`site_revision`, if known."""
        day = self.local_date(t)
        grid = self.grid(day)
        i = min(grid.index_of(t), grid.n - 1)
        key = (day, i, self.site_revision() if revision is None else revision)
        memo = self._minute
        if memo is None or memo[0] != key:
            memo = self._minute = (key, self._minute_of(day, i))
        m = memo[1]
        if m is None:
            return self._realtime_afresh(t)
        # Minute ends before ``pos`` are the same whenever observed; the current minute holds
        # each door's counts so far (``partial``), and the estimate steps from the minute before.
        f = grid.minute_of(t)
        part_in = part_out = 0
        for door_in, door_out in m.doors:
            part_in += math.floor(door_in * f + 1e-9)
            part_out += math.floor(door_out * f + 1e-9)
        total_in, total_out = m.in_before + part_in, m.out_before + part_out
        if not self.cfg.occupancy.estimation:
            return Realtime(0, total_in, total_out, t)
        before = m.occ_before
        last = self.store.last(self.site.primary_id, "adjust", t)
        if last is not None and last.at >= m.start + 60 * m.since:
            w, pos = self._base_window(day), m.pos
            k = int((last.at - w.start) // 60)
            skip_in = int(partial(w.in_[k : k + 1], ((last.at - w.start) % 60) / 60)[0])
            skip_out = int(partial(w.out[k : k + 1], ((last.at - w.start) % 60) / 60)[0])
            if k == pos:  # adjusted in this minute: its counts so far after the adjustment
                value = last.value + (part_in - skip_in) - (part_out - skip_out)
                return Realtime(max(0, value), total_in, total_out, t)
            net = w.in_[k:pos] - w.out[k:pos]
            net[0] -= skip_in - skip_out
            x = last.value + np.cumsum(net)
            before = int(x[-1] - min(0, int(x.min())))
        value = max(0, before + part_in - part_out)
        return Realtime(value, total_in, total_out, t)

    def _minute_of(self, day: date, i: int) -> Minute | None:
        """What a reading in minute ``i`` of ``day`` needs of the day (None: the estimate
        restarts in that minute, the reading is made afresh)."""
        grid = self.grid(day)
        w = self._base_window(day)
        pos = w.offset + i
        if pos in w.restarts:
            return None
        reset = w.offset + self._reset_index(grid)
        since = reset if pos >= reset else 0  # the window starts at the reset before today's
        doors = []
        for door in self.site.doors:
            c = door.counts(day)
            doors.append((int(c.in_[i]), int(c.out[i])))
        return Minute(
            start=w.start,
            since=since,
            pos=pos,
            in_before=int(w.in_[since:pos].sum()),
            out_before=int(w.out[since:pos].sum()),
            occ_before=int(w.occ[pos - 1]) if pos > 0 else 0,
            doors=tuple(doors),
        )

    def _realtime_afresh(self, t: float) -> Realtime:
        """The reading at ``t`` from the counts observed at ``t`` (no memo)."""
        day = self.local_date(t)
        grid = self.grid(day)
        w = self._occupancy_window(day, t)
        pos = w.offset + min(grid.index_of(t), grid.n - 1)
        reset = w.offset + self._reset_index(grid)
        since = reset if pos >= reset else 0  # the window starts at the reset before today's
        total_in = int(w.in_[since : pos + 1].sum())
        total_out = int(w.out[since : pos + 1].sum())
        value = int(w.occ[pos]) if self.cfg.occupancy.estimation else 0
        return Realtime(value, total_in, total_out, t)
