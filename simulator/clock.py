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


def check_time(t: float, what: str = "time") -> float:
    """``t`` if it lies in the simulated calendar, else ValueError naming ``what``."""
    if not MIN_TIME <= t < MAX_TIME:
        raise ValueError(f"{what} must lie between 1971-01-01 and 9000-01-01")
    return t


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
    """Simulated time: real-time, scaled by ``speed`` from an anchor, or frozen (speed 0).

    ``now() = anchor_sim + speed * (wall() - anchor_wall)``. The wall function is read at
    call time, so ``freezegun.freeze_time(..., real_asyncio=True)`` moves the clock in tests.
    """

    def __init__(
        self,
        start: float | None = None,
        speed: float = 1.0,
        wall: Callable[[], float] = wall_time,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._wall = wall
        w = wall()
        self._anchor_wall = w
        self._anchor_sim = w if start is None else check_time(float(start), "start")
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second (0 means frozen)."""
        return self._speed

    def now(self) -> float:
        """Return the simulated time in epoch seconds (UTC)."""
        return self._anchor_sim + self._speed * (self._wall() - self._anchor_wall)

    def now_datetime(self) -> datetime:
        """Return the simulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    def _reanchor(self, sim: float) -> None:
        self._anchor_wall = self._wall()
        self._anchor_sim = sim

    def set(self, t: float) -> None:
        """Jump to simulated time ``t`` (epoch seconds); the clock keeps its speed."""
        self._reanchor(check_time(float(t)))

    def advance(self, seconds: float) -> None:
        """Move the simulated time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("cannot advance by a negative duration")
        self._reanchor(check_time(self.now() + seconds))

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on, without a jump in simulated time."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._reanchor(self.now())
        self._speed = float(speed)
