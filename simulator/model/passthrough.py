"""The passthrough countdown: people counted in, toward a threshold that raises an event.

The countdown of a local day starts at its midnight and restarts at each
``restartPassthroughCountdown`` (without an event) and at each threshold event. Counts
inside a minute are spread evenly (the ``k``-th of ``v`` counts of a minute happens after
``k / v`` of it), as everywhere in the model, so an event has an exact time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.model.bins import IntArray

FloatArray = npt.NDArray[np.float64]

#: Slack when counting up to an instant: an event's epoch time, a float near 1.7e9, is
#: exact only to ~2e-7 s, so its own count must not fall one short of it.
EPS = 1e-6


@dataclass(frozen=True, eq=False)
class Countdown:
    """The passthrough countdown at a moment of a day."""

    count: int  # counted in since the countdown last (re)started
    threshold: int
    events: FloatArray  # epoch seconds of the day's threshold events up to the moment
    started: float  # when the running countdown started: midnight, a restart or an event


def _counted(cum: IntArray, in_: IntArray, start: float, t: float) -> int:
    """Counts from ``start`` (the day's first minute) up to and including time ``t``."""
    if t <= start:
        return 0
    i = int((t - start) // 60)
    if i >= len(in_):
        return int(cum[-1]) if len(cum) else 0
    before = int(cum[i - 1]) if i > 0 else 0
    frac = ((t - start) - 60 * i) / 60.0
    return before + int(np.floor(in_[i] * frac + EPS))


def _times(cum: IntArray, in_: IntArray, start: float, targets: IntArray) -> FloatArray:
    """When the day's running count first reaches each of ``targets``."""
    i = np.searchsorted(cum, targets, "left")
    before = np.where(i > 0, cum[np.maximum(i - 1, 0)], 0)
    v = in_[i]
    result: FloatArray = start + 60.0 * i + 60.0 * (targets - before) / v
    return result


def countdown(
    in_: IntArray,
    start: float,
    restarts: Sequence[float],
    threshold: int,
    now: float,
    events_on: bool = True,
) -> Countdown:
    """The countdown of one day at ``now``, from the day's counted-in minutes.

    ``in_`` holds the whole day's counts per minute (minute 0 starting at ``start``);
    ``restarts`` the times of the day's ``restartPassthroughCountdown`` calls up to now.
    With events off nothing fires and the count runs on from the last restart.
    """
    cum = np.cumsum(in_).astype(np.int64)
    bounds = sorted(r for r in restarts if start <= r <= now)
    origins = [start, *bounds]
    events: list[FloatArray] = []
    base_t = origins[-1]
    base = _counted(cum, in_, start, base_t)
    for k, origin in enumerate(origins):
        until = origins[k + 1] if k + 1 < len(origins) else now
        base = _counted(cum, in_, start, origin)
        base_t = origin
        if not events_on:
            continue
        reached = _counted(cum, in_, start, until)
        n = (reached - base) // threshold
        if n <= 0:
            continue
        targets = base + threshold * np.arange(1, n + 1, dtype=np.int64)
        times = _times(cum, in_, start, targets)
        # A restart at the very moment of an event comes after it; later events are its.
        keep = times <= until if k + 1 == len(origins) else times < until
        times = times[keep]
        events.append(times)
        if k + 1 == len(origins) and len(times):
            base = int(targets[len(times) - 1])
            base_t = float(times[-1])
    count = _counted(cum, in_, start, now) - base
    all_events = np.concatenate(events) if events else np.zeros(0)
    return Countdown(count, threshold, all_events, base_t)
