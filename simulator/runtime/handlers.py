"""What each kind of device event does, as a table: kind -> a small handler.

``IN_MEMORY`` handlers change state that lives in memory (a site's bursts, receiver
outages): they run again when the simulator restarts and rebuilds it from the applied
events. ``RECORDED`` handlers write store actions stamped with the event's due time: they
run once, when the event is first applied.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

from simulator.device import Device
from simulator.schema.scenario import Burst
from simulator.schema.timeline import (
    AdjustEvent,
    BurstEvent,
    DoorClosedEvent,
    DoorOpenEvent,
    FpsEvent,
    IOEvent,
    PushOutageEvent,
    PushRestoreEvent,
    RebootEvent,
)


class PushOutages:
    """Simulated outages of devices' push receivers: windows of simulated time."""

    def __init__(self) -> None:
        self.windows: dict[str, list[tuple[float, float]]] = {}

    def add(self, device: str, start: float, end: float) -> None:
        """The receiver of ``device`` is down from ``start`` until ``end``."""
        self.windows.setdefault(device, []).append((start, end))

    def restore(self, device: str, at: float) -> None:
        """Every outage of the device ends at ``at``."""
        self.windows[device] = [(a, min(b, at)) for a, b in self.windows.get(device, [])]

    def down(self, device: str, t: float) -> bool:
        """Whether the device's receiver is down at ``t``."""
        return any(a <= t < b for a, b in self.windows.get(device, ()))


Handler = Callable[[Device, Any, float, PushOutages], None]


def burst(d: Device, ev: BurstEvent, t: float, outages: PushOutages) -> None:
    """Extra visitors at the device's site from the local minute of ``t`` on."""
    local = datetime.fromtimestamp(t, UTC).astimezone(d.tz)
    at = time(local.hour, local.minute)
    d.site.bursts.add(Burst(day=d.local_date(t), at=at, minutes=ev.minutes, visitors=ev.visitors))


def push_outage(d: Device, ev: PushOutageEvent, t: float, outages: PushOutages) -> None:
    """The device's receiver is down from ``t`` (for ``minutes``, or until restored)."""
    outages.add(d.id, t, t + 60 * ev.minutes if ev.minutes is not None else math.inf)


def push_restore(d: Device, ev: PushRestoreEvent, t: float, outages: PushOutages) -> None:
    """The device's receiver is up again from ``t``."""
    outages.restore(d.id, t)


def door_closed(d: Device, ev: DoorClosedEvent, t: float, outages: PushOutages) -> None:
    """The door closes at ``t`` (and opens ``minutes`` later, if given)."""
    d.record("door", 0, t)
    if ev.minutes is not None:
        d.record("door", 1, t + 60 * ev.minutes)


def door_open(d: Device, ev: DoorOpenEvent, t: float, outages: PushOutages) -> None:
    """The door opens at ``t``."""
    d.record("door", 1, t)


def fps(d: Device, ev: FpsEvent, t: float, outages: PushOutages) -> None:
    """The frame rate changes at ``t`` (back to normal ``minutes`` later, if given)."""
    d.record("fps", ev.percent, t)
    if ev.minutes is not None:
        d.record("fps", 100, t + 60 * ev.minutes)


def io(d: Device, ev: IOEvent, t: float, outages: PushOutages) -> None:
    """The output port's set level changes at ``t``."""
    d.record("io", int(ev.active), t)


def adjust_occupancy(d: Device, ev: AdjustEvent, t: float, outages: PushOutages) -> None:
    """The occupancy estimate is set at ``t``."""
    d.adjust_occupancy(ev.occupancy, t)


def reboot(d: Device, ev: RebootEvent, t: float, outages: PushOutages) -> None:
    """The device goes down at ``t`` and is up ``down_s`` seconds later."""
    d.record("reboot", ev.down_s, t)


IN_MEMORY: dict[str, Handler] = {
    "burst": burst,
    "push_outage": push_outage,
    "push_restore": push_restore,
}
RECORDED: dict[str, Handler] = {
    "door_closed": door_closed,
    "door_open": door_open,
    "fps": fps,
    "io": io,
    "adjust_occupancy": adjust_occupancy,
    "reboot": reboot,
}
