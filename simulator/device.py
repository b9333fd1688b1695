"""A simulated device: the domain API every wire format is rendered from."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

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
from simulator.model.counter import Counts, Restart, occupancy, partial
from simulator.model.crowd import SiteSpec
from simulator.model.frames import (
    WINDOWS,
    FloatArray,
    FrameStats,
    frame_stats,
    frames_until,
    interval_noise,
    minute_rates,
)
from simulator.model.frames import day_rng as frames_rng
from simulator.model.passthrough import Countdown, countdown
from simulator.model.site import BLOCK_DAYS, shared_site_days, site_days
from simulator.scenario import Burst, DeviceConfig, installed_date
from simulator.specs import burst_spec, doors_spec, frames_spec
from simulator.store import Action, Store

if TYPE_CHECKING:
    from simulator.replay import Recording


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

    def drop(self, key: tuple[int, date]) -> None:
        """Forget one cached day."""
        self._days.pop(key, None)


def on_grid(t: float) -> float:
    """The device's time resolution: the whole second holding ``t``.

    Readings observe, and actions are stamped, on this grid, so an action is seen by every
    reading taken at or after the moment it was recorded, whatever the clock does.
    """
    return float(math.floor(t))


@dataclass(frozen=True, eq=False)
class Window:
    """The occupancy estimate over a reset window: from the last reset before a day on."""

    start: float  # epoch time of the window's first minute
    offset: int  # index of the day's first minute in the window
    occ: IntArray  # occupancy at each minute end
    in_: IntArray  # counts in per minute (the site's doors summed)
    out: IntArray  # counts out per minute
    restarts: frozenset[int]  # minutes in which the estimate restarts (reset, adjustment)


_DayKey = tuple[date, tuple[int, ...]]


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
        self.mac = cfg.mac
        self._start = clock.now() if sim_start is None else sim_start
        self._since = self._start  # the time the installation date is reckoned from
        self._installed = installed_date(cfg, self._start)
        self._installed_at = local_midnight(self.tz, self._installed)
        self._reset_minute = cfg.occupancy.reset_time.hour * 60 + cfg.occupancy.reset_time.minute
        self._realtime: tuple[tuple[float, int], Realtime] | None = None
        # The whole-day window of the current day without adjustments, by (day, door actions).
        self._day_window: tuple[_DayKey, Window, IntArray, IntArray] | None = None
        # The site this door belongs to (set by the fleet): doors drawn together, the doors
        # whose counts make the site's occupancy, and the primary that holds adjustments.
        self.site_spec: SiteSpec = doors_spec([cfg])
        self.frames_spec = frames_spec(cfg.frames)
        self.site_doors: list[Device] = [self]
        self.site_primary: Device = self

    @property
    def id(self) -> str:
        """The device's id in the scenario."""
        return self.cfg.id

    @property
    def installed(self) -> date:
        """The date the device started counting: configured, or a year before the start.

        On a clock that follows the wall clock, "the start" is the earliest time the clock
        has shown, so a test that freezes time before the simulator started sees a device
        with a history (the days whose counting changed are forgotten from the cache).
        """
        since = min(self._start, self.clock.earliest)
        if since != self._since:
            self._since = since
            new = installed_date(self.cfg, since)
            if new != self._installed:
                old, self._installed = self._installed, new
                self._installed_at = local_midnight(self.tz, new)
                d = min(old, new)
                while d < max(old, new):
                    self.cache.drop((id(self), d))
                    d += timedelta(days=1)
                self.forget_derived()
        return self._installed

    @property
    def installed_at(self) -> int:
        """Epoch time of the local midnight the device started counting at."""
        self.installed  # noqa: B018 - brings the date up to date
        return self._installed_at

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
        hit = self.cache.get((id(self), day))
        return hit if hit is not None else self._compute([day])[0]

    def prefetch(self, days: list[date]) -> None:
        """Compute the days not cached yet in aligned blocks (vectorised), caching each.

        Exports of long ranges call this; a single request (real-time readings) computes
        only its own day, so a fleet's hot days are not evicted by their neighbours.
        """
        missing = [d for d in days if self.cache.get((id(self), d)) is None]
        for i in range(0, len(missing), BLOCK_DAYS):
            self._compute(missing[i : i + BLOCK_DAYS])

    def _compute(self, days: list[date]) -> list[Counts]:
        """Draw some days of this door (with the other doors of its site), caching each.

        Every day's arrays are the same whether drawn alone or with others.
        """
        out: dict[date, Counts] = {}
        drawn = [d for d in days if d >= self.installed]
        if self.replay is not None:  # counts from a recording (simulator/replay.py)
            out.update((d, self.replay.day(d, self.grid(d))) for d in drawn)
            drawn = []
        for d in days:
            if d < self.installed:
                z = np.zeros(self.grid(d).n, dtype=np.int64)
                out[d] = Counts(z, z, z, z)
        if drawn:
            extra = {
                d: [burst_spec(b) for b in self.extra_bursts[d]]
                for d in drawn
                if d in self.extra_bursts
            }
            if extra:  # bursts injected at run time (simulator/events.py)
                batch = site_days(self.site_spec, self.seed, drawn, extra)
            else:
                batch = shared_site_days(self.site_spec, self.seed, drawn)
            door = self.site_spec.door(self.id)
            out.update((d, batch.day(door, k)) for k, d in enumerate(drawn))
        for d in days:
            out[d] = self.doors_closed(d, out[d])
            self.cache.put((id(self), d), out[d])
        return [out[d] for d in days]

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
            self.site_primary.id, "adjust", w_start + 60 * begin, until
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
        self, days: list[date], get: Callable[[Device, date], Counts]
    ) -> tuple[IntArray, IntArray]:
        """In and out per minute over ``days``, summed over the doors of this device's site."""
        ins, outs = [], []
        for d in days:
            parts = [get(door, d) for door in self.site_doors]
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

    def realtime(self, now: float | None = None) -> Realtime:
        """Occupancy now, and the in/out totals since the last daily reset (to the second)."""
        t = on_grid(self.clock.now() if now is None else now)
        key = (t, self.store.revision)
        if self._realtime is not None and self._realtime[0] == key:
            return self._realtime[1]
        result = self._compute_realtime(t)
        self._realtime = (key, result)
        return result

    def _base_window(self, day: date) -> tuple[Window, IntArray, IntArray]:
        """The whole-day window of a day without adjustments, with cumulative in/out.

        Memoised by day and the site's door actions (adjustments do not change it; events
        that change counts drop it through :meth:`forget_derived`)."""
        doors = tuple(self.store.kind_revision(d.id, "door") for d in self.site_doors)
        key = (day, doors)
        if self._day_window is None or self._day_window[0] != key:
            grid = self.grid(day)
            w = self._occupancy_window(day, grid.end, adjusted=False)
            cin = np.concatenate(([0], np.cumsum(w.in_)))
            cout = np.concatenate(([0], np.cumsum(w.out)))
            self._day_window = (key, w, cin, cout)
        return self._day_window[1], self._day_window[2], self._day_window[3]

    def _compute_realtime(self, t: float) -> Realtime:
        """The reading at ``t``: the day's whole-day window (memoised), the partial current
        minute, and the walk from the latest adjustment; in a reset's minute, afresh.

        Only the latest adjustment at or before ``t`` matters, so the work does not grow
        with the number of adjustments."""
        day = self.local_date(t)
        grid = self.grid(day)
        w, cin, cout = self._base_window(day)
        i = min(grid.index_of(t), grid.n - 1)
        pos = w.offset + i
        if pos in w.restarts:
            return self._realtime_afresh(t)
        # Minute ends before ``pos`` are the same whenever observed; the current minute holds
        # each door's counts so far (``partial``), and the estimate steps from the minute before.
        f = grid.minute_of(t)
        part_in = part_out = 0
        for door in self.site_doors:
            c = door.counts(day)
            part_in += math.floor(int(c.in_[i]) * f + 1e-9)
            part_out += math.floor(int(c.out[i]) * f + 1e-9)
        reset = w.offset + self._reset_index(grid)
        since = reset if pos >= reset else 0  # the window starts at the reset before today's
        total_in = int(cin[pos] - cin[since]) + part_in
        total_out = int(cout[pos] - cout[since]) + part_out
        if not self.cfg.occupancy.estimation:
            return Realtime(0, total_in, total_out, t)
        before = int(w.occ[pos - 1]) if pos > 0 else 0
        last = self.store.last(self.site_primary.id, "adjust", t)
        if last is not None and last.at >= w.start + 60 * since:
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

        def values(day: date, starts: IntArray, t: float) -> tuple[IntArray, ...]:
            obs = self.observed(day, t)
            return bin_sums(obs.in_, starts), bin_sums(obs.out, starts)

        return self._export(start, end, resolution, now, [self], values)

    def occupancy_peaks(
        self, start: float, end: float, resolution: Resolution, now: float | None = None
    ) -> Iterator[Chunk]:
        """Peak occupancy per bin for bins starting in [start, end), up to now, day by day."""

        def values(day: date, starts: IntArray, t: float) -> tuple[IntArray, ...]:
            grid = self.grid(day)
            occ, before = self.day_occupancy(day, t)
            if grid.start <= t < grid.end:  # the rest of today holds the value now
                occ = occ.copy()
                occ[grid.index_of(t) + 1 :] = occ[grid.index_of(t)]
            return (bin_peaks(occ, before, starts),)

        return self._export(start, end, resolution, now, self.site_doors, values)

    def _export(
        self,
        start: float,
        end: float,
        resolution: Resolution,
        now: float | None,
        doors: list[Device],
        values: Callable[[date, IntArray, float], tuple[IntArray, ...]],
    ) -> Iterator[Chunk]:
        """The chunks of the days with returned bins; ``doors`` are drawn ahead in blocks."""
        t = self.clock.now() if now is None else now
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

    # ---- control methods ----------------------------------------------------------------
    def record(self, kind: str, value: int, at: float) -> None:
        """Record an action of this device at ``at``, stamped on the device's grid."""
        self.store.add(Action(self.id, on_grid(at), kind, value))

    def adjust_occupancy(self, value: int, now: float | None = None) -> None:
        """Set the occupancy estimate to ``value`` from now on (adjustOccupancy)."""
        if self.cfg.occupancy.role == "secondary":
            raise RejectedError(MSG_SECONDARY)
        if not self.cfg.occupancy.estimation:
            raise RejectedError(MSG_ESTIMATION_OFF)
        self.record("adjust", value, self.clock.now() if now is None else now)

    def restart_passthrough(self, now: float | None = None) -> None:
        """Restart the passthrough countdown from 0 without a threshold event."""
        if not self.cfg.passthrough.events:
            raise RejectedError(MSG_PASSTHROUGH_OFF)
        self.record("passthrough-restart", 0, self.clock.now() if now is None else now)

    # ---- frame rate, passthrough countdown and I/O output ---------------------------------
    # Store action kinds read here (a control plane may write them): "reboot" (value unused)
    # restarts the frame counter; "fps" (value = percent of the nominal rate) changes the
    # rate from the next whole minute on; "io" (value 0/1) sets the output port's level.

    #: When the device's web server started (set by ``create_app``); a later reboot wins.
    booted_at: float | None = None
    _frame_cache: tuple[tuple[float, int], dict[date, float]] | None = None
    _rates_memo: tuple[tuple[date, int], FloatArray] | None = None

    def boot_time(self, now: float | None = None) -> float:
        """When the device last booted: the latest recorded reboot, else its server's start.

        A clock that goes back before the boot (a test freezing time in the past) counts
        as a boot then: uptime and frame counter never go negative."""
        t = self.clock.now() if now is None else now
        last = self.store.last(self.id, "reboot", t)
        if last is not None:
            return last.at
        if self.booted_at is None or t < self.booted_at:
            self.booted_at = on_grid(t)
        return self.booted_at

    def _fps_factor(self, day: date) -> FloatArray | None:
        """Injected frame-rate changes per minute of a day ("fps" actions), or None."""
        grid = self.grid(day)
        before = self.store.last(self.id, "fps", grid.start - 60)
        during = self.store.actions(self.id, "fps", grid.start - 60, grid.end)
        if before is None and not during:
            return None
        factor = np.full(grid.n, (before.value if before is not None else 100) / 100.0)
        for a in during:
            factor[max(0, math.ceil((a.at - grid.start) / 60)) :] = a.value / 100.0
        return factor

    def frame_rates(self, day: date) -> FloatArray:
        """Mean frame rate of each minute of a local day (crowd dip, jitter, injected)."""
        key = (day, self.store.kind_revision(self.id, "fps"))
        if self._rates_memo is not None and self._rates_memo[0] == key:
            return self._rates_memo[1]
        c = self.counts(day)
        rng = frames_rng(self.seed, self.index, day.toordinal())
        rates = minute_rates(c.in_ + c.out, self.frames_spec, rng, self._fps_factor(day))
        self._rates_memo = (key, rates)
        return rates

    def frame_count(self, now: float | None = None) -> int:
        """Frames rendered since boot (whole past days are cached per boot)."""
        t = self.clock.now() if now is None else now
        boot = self.boot_time(t)
        if t <= boot:
            return 0
        key = (boot, self.store.kind_revision(self.id, "fps"))
        if self._frame_cache is None or self._frame_cache[0] != key:
            self._frame_cache = (key, {})
        done = self._frame_cache[1]
        total = 0.0
        day, last = self.local_date(boot), self.local_date(t)
        while day <= last:
            grid = self.grid(day)
            whole = t >= grid.end
            if whole and day in done:
                total += done[day]
            else:
                rates = self.frame_rates(day)
                part = frames_until(rates, grid.start, min(t, grid.end)) - frames_until(
                    rates, grid.start, boot
                )
                if whole:
                    done[day] = part
                total += part
            day += timedelta(days=1)
        return math.floor(total + 1e-9)

    def _rate_at(self, day: date, minute: int, percent: int) -> float:
        """The frame rate of a minute of a day with ``percent`` of the nominal rate."""
        c = self.counts(day)
        rng = frames_rng(self.seed, self.index, day.toordinal())
        factor = np.full(len(c.in_), percent / 100.0)
        return float(minute_rates(c.in_ + c.out, self.frames_spec, rng, factor)[minute])

    def frame_stats(self, now: float | None = None) -> FrameStats:
        """Real-time fps, the rolling averages over 5/50/100/1000 frames and the counter."""
        t = self.clock.now() if now is None else now
        frames = self.frame_count(t)
        day = self.local_date(t)
        grid = self.grid(day)
        i = min(grid.index_of(t), grid.n - 1)
        into = t - (grid.start + 60 * i)
        lookback = math.ceil(max(WINDOWS) / (60 * self.cfg.frames.min_fps)) + 1
        recent = self.frame_rates(day)[max(0, i + 1 - lookback) : i + 1]
        changed = self.store.last(self.id, "fps", t)
        if changed is not None and changed.at > grid.start + 60 * i:
            recent = recent.copy()  # changed in this minute: the rate now is the new one
            recent[-1] = self._rate_at(day, i, changed.value)
        if len(recent) < lookback:
            before = self.frame_rates(day - timedelta(days=1))
            recent = np.concatenate([before[len(before) - (lookback - len(recent)) :], recent])
        n = min(frames, max(WINDOWS))
        key = (self.seed, self.index, int(self.boot_time(t)))
        noise = interval_noise(key, frames - n, frames, self.cfg.frames.frame_jitter)
        return frame_stats(recent, into, frames, noise)

    def totals_today(self, now: float | None = None) -> tuple[int, int]:
        """Counted in and out since local midnight, up to now."""
        t = self.clock.now() if now is None else now
        obs = self.observed(self.local_date(t), t)
        return int(obs.in_.sum()), int(obs.out.sum())

    def passthrough(self, now: float | None = None) -> Countdown:
        """The passthrough countdown now: it starts at local midnight and at each restart.

        Observed on the device's grid (whole seconds), where restarts are stamped."""
        t = on_grid(self.clock.now() if now is None else now)
        day = self.local_date(t)
        start = self.grid(day).start
        restarts = [a.at for a in self.store.actions(self.id, "passthrough-restart", start, t)]
        pt = self.cfg.passthrough
        return countdown(self.counts(day).in_, start, restarts, pt.threshold, t, pt.events)

    def io_output(self, now: float | None = None) -> bool:
        """The output port: its set level ("io" actions), driven by threshold events.

        ``pulse``: active for ``io.pulse_seconds`` after each event. ``toggle``: each of the
        day's events flips it; at midnight it returns to its set level (default inactive).
        """
        t = self.clock.now() if now is None else now
        io = self.cfg.io
        last_set = self.store.last(self.id, "io", t)
        level = bool(last_set.value) if last_set is not None else False
        since = last_set.at if last_set is not None else -math.inf
        events = self.passthrough(t).events
        events = events[events > since]
        if io.output == "toggle":
            return level != bool(len(events) % 2)
        if level:
            return True
        if len(events):
            return bool(t - events[-1] < io.pulse_seconds)
        start = self.grid(self.local_date(t)).start
        if t - start < io.pulse_seconds and since < start:
            earlier = self.passthrough(start - 1e-3).events
            return bool(len(earlier) and earlier[-1] > since and t - earlier[-1] < io.pulse_seconds)
        return False

    # ---- run-time events and replay (simulator/events.py, simulator/replay.py) -----------
    #: Bursts injected at run time, by local day; the fleet shares one dict among a site's
    #: doors (this class default is never written to).
    extra_bursts: dict[date, list[Burst]] = {}  # noqa: RUF012
    #: A recording the counts are replayed from instead of the crowd model (or None).
    replay: Recording | None = None

    def doors_closed(self, day: date, c: Counts) -> Counts:
        """The counts with the minutes the door was closed ("door" actions, 0 = closed) zeroed."""
        if self.store.last(self.id, "door", math.inf) is None:
            return c
        grid = self.grid(day)
        before = self.store.last(self.id, "door", grid.start)
        state = before is not None and before.value == 0
        closed = np.zeros(grid.n, dtype=bool)
        pos = 0
        for a in self.store.actions(self.id, "door", grid.start, grid.end):
            idx = min(grid.n, max(0, math.ceil((a.at - grid.start) / 60)))
            closed[pos:idx] = state
            state, pos = a.value == 0, max(pos, idx)
        closed[pos:] = state
        if not closed.any():
            return c
        z = [np.where(closed, 0, a) for a in (c.in_, c.out, c.in_adults, c.out_adults)]
        return Counts(z[0], z[1], z[2], z[3])

    def is_door_closed(self, now: float | None = None) -> bool:
        """Whether the door is closed now."""
        t = self.clock.now() if now is None else now
        last = self.store.last(self.id, "door", t)
        return last is not None and last.value == 0

    def uptime(self, now: float | None = None) -> float:
        """Seconds since the device last booted."""
        t = self.clock.now() if now is None else now
        return max(0.0, t - self.boot_time(t))

    def forget_derived(self) -> None:
        """Drop memoised values derived from the store (after events changed it)."""
        self._realtime = None
        self._day_window = None
        self._rates_memo = None
        self._frame_cache = None
