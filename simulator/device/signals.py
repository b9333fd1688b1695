"""A device's signals besides counts: boot and frames, the passthrough countdown, the I/O port.

Store action kinds read here (a control plane may write them): "reboot" (value = seconds
the device is away before it boots) restarts the frame counter; "fps" (value = percent of
the nominal rate) changes the rate from the next whole minute on; "io" (value 0/1) sets
the output port's level; "passthrough-restart" restarts the countdown.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Hashable
from datetime import date, timedelta

import numpy as np

from simulator.device.counts import DeviceCounts, on_grid
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


class Signals(DeviceCounts):
    """Frame rate and counter since boot, uptime, passthrough countdown, output port."""

    #: When the device's web server started (:meth:`boot`); a later reboot wins.
    booted_at: float | None = None
    # Memos, keyed by what they depend on (fps actions, the counts' revision, the boot).
    _frame_cache: tuple[Hashable, dict[date, float]] | None = None
    _rates_memo: tuple[Hashable, FloatArray] | None = None

    def boot(self, at: float) -> None:
        """The device's web server starts at ``at`` (its frame counter counts from there)."""
        self.booted_at = float(int(at))

    def boot_time(self, now: float) -> float:
        """When the device last booted: the latest recorded reboot, else its server's start.

        A clock that goes back before the boot (a test freezing time in the past) counts
        as a boot then: uptime and frame counter never go negative."""
        last = self.store.last(self.id, "reboot", now)
        if last is not None:
            return last.at + last.value
        if self.booted_at is None or now < self.booted_at:
            self.booted_at = on_grid(now)
        return self.booted_at

    def restarting(self, now: float) -> bool:
        """Whether the device is away, restarting (between a reboot and its boot)."""
        last = self.store.last(self.id, "reboot", now)
        return last is not None and now < last.at + last.value

    def boot_id(self, now: float) -> str:
        """An id of the current boot (a UUID): the same all boot long, new at every boot."""
        key = f"{self.seed}:{self.cfg.serial_upper}:{self.boot_time(now)!r}".encode()
        return str(uuid.UUID(bytes=hashlib.sha256(key).digest()[:16], version=4))

    def uptime(self, now: float) -> float:
        """Seconds since the device last booted."""
        return max(0.0, now - self.boot_time(now))

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

    def _frames_revision(self) -> Hashable:
        """What frame rates depend on: fps actions and the counts."""
        return (self.store.kind_revision(self.id, "fps"), self.revision())

    def frame_rates(self, day: date) -> FloatArray:
        """Mean frame rate of each minute of a local day (crowd dip, jitter, injected)."""
        key = (day, self._frames_revision())
        if self._rates_memo is not None and self._rates_memo[0] == key:
            return self._rates_memo[1]
        c = self.counts(day)
        rng = frames_rng(self.seed, self.index, day.toordinal())
        rates = minute_rates(c.in_ + c.out, self.frames_spec, rng, self._fps_factor(day))
        self._rates_memo = (key, rates)
        return rates

    def frame_count(self, now: float) -> int:
        """Frames rendered since boot (whole past days are cached per boot)."""
        t = now
        boot = self.boot_time(t)
        if t <= boot:
            return 0
        key = (boot, self._frames_revision())
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

    def frame_stats(self, now: float) -> FrameStats:
        """Real-time fps, the rolling averages over 5/50/100/1000 frames and the counter."""
        t = now
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

    def passthrough(self, now: float) -> Countdown:
        """The passthrough countdown now: it starts at local midnight and at each restart.

        Observed on the device's grid (whole seconds), where restarts are stamped."""
        t = on_grid(now)
        day = self.local_date(t)
        start = self.grid(day).start
        restarts = [a.at for a in self.store.actions(self.id, "passthrough-restart", start, t)]
        pt = self.cfg.passthrough
        return countdown(self.counts(day).in_, start, restarts, pt.threshold, t, pt.events)

    def io_output(self, now: float) -> bool:
        """The output port: its set level ("io" actions), driven by threshold events.

        ``pulse``: active for ``io.pulse_seconds`` after each event. ``toggle``: each of the
        day's events flips it; at midnight it returns to its set level (default inactive).
        """
        t = now
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
