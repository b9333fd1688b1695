"""A device's counts: the crowd model's pure function of (scenario, seed, device, day), cached;
the site whose doors are drawn together and the bursts injected into it."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from simulator.clock import SimClock
from simulator.device.days import DayCache
from simulator.model.bins import DayGrid, IntArray, day_grid, local_midnight
from simulator.model.counter import Counts, partial
from simulator.model.crowd import SiteSpec
from simulator.model.site import BLOCK_DAYS, shared_site_days, site_days
from simulator.schema.scenario import Burst, DeviceConfig
from simulator.specs import burst_spec, doors_spec, frames_spec
from simulator.store import Store

if TYPE_CHECKING:
    from simulator.replay import Recording


def on_grid(t: float) -> float:
    """The device's time resolution: the whole second holding ``t``.

    Readings observe, and actions are stamped, on this grid, so an action is seen by every
    reading taken at or after the moment it was recorded, whatever the clock does.
    """
    return float(math.floor(t))


def installed_date(device: DeviceConfig, sim_start: float) -> date:
    """The date the device started counting: configured, or one year before the start."""
    if device.installed is not None:
        return device.installed
    local = datetime.fromtimestamp(sim_start, UTC).astimezone(device.tz).date()
    return local - timedelta(days=365)


class Bursts:
    """Bursts injected at run time into one site, by local day, with a revision."""

    def __init__(self) -> None:
        self._by_day: dict[date, list[Burst]] = {}
        self.revision = 0  # bumped on every change: the site's cached days are stale

    def add(self, burst: Burst) -> None:
        """One more burst on its day."""
        self._by_day.setdefault(burst.day, []).append(burst)
        self.revision += 1

    def on(self, day: date) -> list[Burst]:
        """The bursts of a day (none: empty)."""
        return self._by_day.get(day, [])

    def clear(self) -> None:
        """Forget every burst."""
        if self._by_day:
            self._by_day.clear()
            self.revision += 1


@dataclass(eq=False)
class Site:
    """The doors of one site: drawn together, summed for occupancy, adjusted on the primary.

    Doors join as they are built (:class:`~simulator.device.Device` joins the site it is
    given); ``primary_id`` names the door that holds adjustments.
    """

    spec: SiteSpec
    primary_id: str
    bursts: Bursts = field(default_factory=Bursts)
    doors: list[DeviceCounts] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The site's name (``site:<name>``, or ``device:<id>`` for a lone door)."""
        return self.spec.name

    @property
    def primary(self) -> DeviceCounts:
        """The door holding the site's occupancy adjustments."""
        return next((d for d in self.doors if d.id == self.primary_id), self.doors[0])

    def join(self, door: DeviceCounts) -> None:
        """A door of this site is built."""
        self.doors.append(door)


class DeviceCounts:
    """One door's identity, calendar and per-minute counts (crowd model, doors closed)."""

    def __init__(
        self,
        cfg: DeviceConfig,
        index: int,
        seed: int,
        clock: SimClock,
        store: Store,
        *,
        site: Site | None = None,
        cache: DayCache | None = None,
        replay: Recording | None = None,
        sim_start: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.index = index
        self.seed = seed
        self.clock = clock
        self.store = store
        self.cache = cache if cache is not None else DayCache(64)
        #: A recording the counts are replayed from instead of the crowd model (or None).
        self.replay = replay
        #: The site this door belongs to (a site of its own unless given).
        self.site = site if site is not None else Site(doors_spec([cfg]), cfg.id)
        self.site.join(self)
        self.tz = cfg.tz
        self.frames_spec = frames_spec(cfg.frames)
        self._start = clock.now() if sim_start is None else sim_start
        self._since = self._start  # the time the installation date is reckoned from
        self._installed = installed_date(cfg, self._start)
        self._installed_at = local_midnight(self.tz, self._installed)
        self._epoch = 0  # bumped when the installation date moves: every day is stale

    @property
    def id(self) -> str:
        """The device's id in the scenario."""
        return self.cfg.id

    @cached_property
    def mac(self) -> str:
        """The device's MAC address (worked out when first asked: a fleet has thousands)."""
        return self.cfg.mac

    @property
    def installed(self) -> date:
        """The date the device started counting: configured, or a year before the start.

        On a clock that follows the wall clock, "the start" is the earliest time the clock
        has shown, so a test that freezes time before the simulator started sees a device
        with a history (its cached days and readings are then recomputed).
        """
        since = min(self._start, self.clock.earliest)
        if since != self._since:
            self._since = since
            new = installed_date(self.cfg, since)
            if new != self._installed:
                self._installed = new
                self._installed_at = local_midnight(self.tz, new)
                self._epoch += 1
        return self._installed

    @property
    def installed_at(self) -> int:
        """Epoch time of the local midnight the device started counting at."""
        self.installed  # noqa: B018 - brings the date up to date
        return self._installed_at

    def revision(self) -> Hashable:
        """What this door's counts depend on besides the model: its door actions, the
        site's injected bursts, its installation date. Every memo of counts is keyed by it."""
        self.installed  # noqa: B018 - brings the installation date up to date first
        return (self.store.kind_revision(self.id, "door"), self.site.bursts.revision, self._epoch)

    # ---- time helpers -------------------------------------------------------------------
    def local_date(self, t: float) -> date:
        """The local calendar date holding epoch time ``t``."""
        return datetime.fromtimestamp(t, UTC).astimezone(self.tz).date()

    def grid(self, day: date) -> DayGrid:
        """The minute grid of a local day."""
        return day_grid(self.cfg.timezone, day)

    # ---- counts -------------------------------------------------------------------------
    def cached(self, day: date) -> Counts | None:
        """A day's counts if they are cached and current."""
        return self.cache.get((self.index, day, self.revision()))

    def counts(self, day: date) -> Counts:
        """The device's counts for a whole local day (the model's pure function)."""
        hit = self.cached(day)
        return hit if hit is not None else self._compute([day])[0]

    def prefetch(self, days: list[date]) -> None:
        """Compute the days not cached yet in aligned blocks (vectorised), caching each.

        Exports of long ranges call this; a single request (real-time readings) computes
        only its own day, so a fleet's hot days are not evicted by their neighbours.
        """
        rev = self.revision()
        missing = [d for d in days if (self.index, d, rev) not in self.cache]
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
            bursts = self.site.bursts
            extra = {d: [burst_spec(b) for b in bursts.on(d)] for d in drawn if bursts.on(d)}
            spec = self.site.spec
            if extra:  # bursts injected at run time (simulator/runtime/handlers.py)
                batch = site_days(spec, self.seed, drawn, extra)
            else:
                batch = shared_site_days(spec, self.seed, drawn)
            door = spec.door(self.id)
            out.update((d, batch.day(door, k)) for k, d in enumerate(drawn))
        rev = self.revision()
        for d in days:
            out[d] = self.doors_closed(d, out[d])
            self.cache.put((self.index, d, rev), out[d])
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

    def totals_today(self, now: float) -> tuple[int, int]:
        """Counted in and out since local midnight, up to now."""
        obs = self.observed(self.local_date(now), now)
        return int(obs.in_.sum()), int(obs.out.sum())

    # ---- the door ------------------------------------------------------------------------
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

    def is_door_closed(self, now: float) -> bool:
        """Whether the door is closed now."""
        last = self.store.last(self.id, "door", now)
        return last is not None and last.value == 0
