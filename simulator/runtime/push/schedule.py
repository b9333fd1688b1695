"""Push interval arithmetic: boundaries are multiples of the interval in epoch (UTC) time.

Every time zone in use today has an offset of a whole number of quarter hours, so these
boundaries are also local :00/:05/:15... wall-clock boundaries, and an interval never
straddles local midnight. A device sends each interval's push a few seconds after its end
(:func:`send_time`), as real devices do, not on the boundary itself.
"""

from __future__ import annotations

from simulator.model.rng import name_key


def interval_start(t: float, minutes: int) -> int:
    """The boundary at or before ``t``: the start of the interval holding ``t``."""
    step = minutes * 60
    return int(t // step) * step


def interval_end(t: float, minutes: int) -> int:
    """The first boundary strictly after ``t``: the end of the interval holding ``t``."""
    return interval_start(t, minutes) + minutes * 60


def due_count(cursor: float, now: float, minutes: int) -> int:
    """How many intervals from ``cursor`` on have ended by ``now`` (the first may be short)."""
    last = interval_start(now, minutes)
    if last <= cursor:
        return 0
    return (last - interval_start(cursor, minutes)) // (minutes * 60)


SEND_DELAY_S = (5, 45)  # a push leaves this many seconds (inclusive range) after its interval


def send_delay(seed: int, device: str, end: int) -> int:
    """Whole seconds after the interval ending at ``end`` at which the device's push leaves.

    Seeded and a pure function of (seed, device, interval), so the same run sends the same
    ``utcSent``; always within :data:`SEND_DELAY_S`, well before the next 1-minute boundary.
    """
    low, high = SEND_DELAY_S
    return low + name_key(seed, device, "push-send", end) % (high - low + 1)


def send_time(seed: int, device: str, end: int) -> int:
    """The simulated moment the push of the interval ending at ``end`` leaves the device."""
    return end + send_delay(seed, device, end)
