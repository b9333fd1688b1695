"""Push interval arithmetic: boundaries are multiples of the interval in epoch (UTC) time.

Every time zone in use today has an offset of a whole number of quarter hours, so these
boundaries are also local :00/:05/:15... wall-clock boundaries, and an interval never
straddles local midnight.
"""

from __future__ import annotations


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
