"""The one simulated clock every part of the simulator asks for the time."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

#: The simulated calendar: from 1971 (the device keeps nothing before) to the year 9000, so
#: every simulated time has a local date and a printable label in every time zone.
MIN_TIME = datetime(1971, 1, 1, tzinfo=UTC).timestamp()
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
#: The last second of the calendar: a running clock that reaches it stops there.
LAST_TIME = MAX_TIME - 1.0


def check_time(t: float, what: str = "time") -> float:
    """``t`` if it lies in the simulated calendar, else ValueError naming ``what``."""
    if not MIN_TIME <= t < MAX_TIME:
        raise ValueError(f"{what} must lie between 1971-01-01 and 9000-01-01")
    return t


def in_calendar(t: float) -> float:
    """``t`` held inside the simulated calendar (a clock saturates at its bounds)."""
    return min(max(t, MIN_TIME), LAST_TIME)


_NUMBER = re.compile(r"\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*")


def epoch_seconds(v: Any, what: str = "time") -> Any:
    """A number (or numeric text) as a time: always epoch seconds, checked against the calendar.

    A pydantic ``datetime`` field would read numbers above 2e10 as milliseconds; this
    before-validator makes numbers unambiguous. Other values pass through for pydantic.
    """
    if isinstance(v, str) and _NUMBER.fullmatch(v):
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v
    return datetime.fromtimestamp(check_time(v, what), UTC)


def wall_time() -> float:
    """Return the wall-clock time in epoch seconds, read at call time (freezegun controls it)."""
    return time.time()


class SimClock:
    """Simulated time: the wall clock itself, scaled by ``speed`` from an anchor, or frozen.

    Without a fixed ``start`` and at speed 1 the clock *follows the wall*: ``now()`` is the
    wall time, read at call time, so ``freezegun.freeze_time(..., real_asyncio=True)`` (its
    ``tick``, ``move_to`` and leaving it) moves the simulated time with the test's. Once set,
    advanced or given another speed the clock is *anchored*:
    ``now() = anchor_sim + speed * (wall() - anchor_wall)``. Either way ``now()`` stays in
    the simulated calendar: a clock running past its end stops at :data:`LAST_TIME`.
    """

    def __init__(
        self,
        start: float | None = None,
        speed: float = 1.0,
        wall: Callable[[], float] = wall_time,
        anchor_wall: float | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._wall = wall
        self._fixed = None if start is None else check_time(float(start), "start")
        self._start_speed = float(speed)
        w = wall() if anchor_wall is None else anchor_wall  # processes that share one start
        #: The simulated time at start-up (a fixed start, else the wall time then).
        self.origin = in_calendar(w) if self._fixed is None else self._fixed
        self._speed = float(speed)
        self._anchor_wall = w
        self._anchor_sim = self.origin
        self._follow = self._fixed is None and self._speed == 1.0
        #: The earliest time a wall-following clock has shown (a test may freeze it earlier).
        self.earliest = self.origin
        self._listeners: list[Callable[[], None]] = []

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second (0 means frozen)."""
        return self._speed

    @property
    def follows_wall(self) -> bool:
        """Whether ``now()`` is the wall time (no fixed start, speed 1, never moved)."""
        return self._follow

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the clock is set, advanced, reset or changes speed."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def now(self) -> float:
        """Return the simulated time in epoch seconds (UTC), inside the calendar."""
        if self._follow:
            t = in_calendar(self._wall())
            if t < self.earliest:
                self.earliest = t
            return t
        return in_calendar(self._anchor_sim + self._speed * (self._wall() - self._anchor_wall))

    def wall_at(self, t: float) -> float:
        """The wall time at which the clock showed ``t`` (epoch seconds).

        A time the clock passed before its last set, advance or change of speed (or jumped
        over) maps to the wall time of that change.
        """
        if self._follow:
            return t
        if self._speed == 0 or t <= self._anchor_sim:
            return self._anchor_wall
        return self._anchor_wall + (t - self._anchor_sim) / self._speed

    def now_datetime(self) -> datetime:
        """Return the simulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    def _reanchor(self, sim: float) -> None:
        self._anchor_wall = self._wall()
        self._anchor_sim = sim
        self._follow = False

    def set(self, t: float) -> None:
        """Jump to simulated time ``t`` (epoch seconds); the clock keeps its speed."""
        self._reanchor(check_time(float(t)))
        self._changed()

    def advance(self, seconds: float) -> None:
        """Move the simulated time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("cannot advance by a negative duration")
        self._reanchor(check_time(self.now() + seconds))
        self._changed()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on, without a jump in simulated time."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._reanchor(self.now())
        self._speed = float(speed)
        self._changed()

    def reset(self) -> None:
        """Back to start-up: following the wall again if it did, else at ``origin``."""
        self._speed = self._start_speed
        self._reanchor(self.origin)
        self._follow = self._fixed is None and self._speed == 1.0
        self.earliest = self.origin
        self._changed()
