"""The Axis Retail Data JSON document of a push, built from the device's counts (pure data).

What the outbox stores is the document without its send times (``utcSent``/``localSent``
belong to each delivery attempt); :func:`wire_body` completes it when it is sent, so a
retried push carries the time it was actually sent, in the vendor sample's key order.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from simulator.device import Device
from simulator.model.bins import IntArray
from simulator.model.counter import Counts
from simulator.schema.scenario import DeviceConfig, PushConfig

API_NAME = "Axis Retail Data"
API_VERSION = "0.4"
APPLICATION = "AXIS 3D People Counter"
KIND = "people-counts"


@lru_cache(maxsize=8192)
def utc_text(t: float) -> str:
    """UTC time as the payload writes it: ``2020-12-08T12:19:00Z`` (memoised: a fleet's
    intervals share their boundaries)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=8192)
def local_text(t: float, tz: ZoneInfo) -> str:
    """Local wall time without offset, as the payload writes it: ``2020-12-08T13:19:00``."""
    return datetime.fromtimestamp(t, tz).strftime("%Y-%m-%dT%H:%M:%S")


#: Minutes of counts a device's :class:`Window` reads ahead from its day (within that day).
WINDOW_MINUTES = 16


@dataclass(slots=True)
class Window:
    """The next few minutes of one device's counts, read from its day at once.

    A device pushing every minute would otherwise unpack its whole day (the day cache keeps
    days compressed) for each push; the window serves the next pushes of that day from
    ``rows`` (each minute's in, in adults, out, out adults) while the counts' revision is
    unchanged. It also keeps the device's encoded ``sensor`` object.
    """

    revision: Hashable = None
    start: int = 0  # epoch seconds of the first minute held
    end: int = 0  # epoch seconds after the last minute held (``start``: none held)
    rows: IntArray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))
    sensor_of: DeviceConfig | None = None  # the settings ``sensor`` was encoded from
    sensor: str = ""

    def holds(self, device: Device, start: int, end: int) -> bool:
        """Whether ``[start, end)`` is held, as the device counts now."""
        return self.start <= start and end <= self.end and device.revision() == self.revision

    def fill(self, device: Device, start: int, end: int) -> bool:
        """Hold ``[start, end)`` and the minutes after it (a few, within its local day);
        False if the interval is not within one local day."""
        grid = device.grid(device.local_date(start))
        if end > grid.end:
            return False
        i = (start - grid.start) // 60
        j = max((end - grid.start) // 60, min(grid.n, i + WINDOW_MINUTES))
        c = device.counts(grid.day)
        self.rows = np.stack((c.in_[i:j], c.in_adults[i:j], c.out[i:j], c.out_adults[i:j]), 1)
        self.revision, self.start, self.end = device.revision(), start, start + 60 * (j - i)
        return True


def minute_rows(device: Device, start: int, end: int, window: Window | None) -> list[list[int]]:
    """Each minute's ``[in, in adults, out, out adults]`` in ``[start, end)`` (from the
    device's ``window`` when given and the interval is within one local day)."""
    if window is not None and (window.holds(device, start, end) or window.fill(device, start, end)):
        rows = window.rows[(start - window.start) // 60 : (end - window.start) // 60]
    else:
        c = interval_counts(device, start, end)
        rows = np.stack((c.in_, c.in_adults, c.out, c.out_adults), axis=1)
    minutes: list[list[int]] = rows.tolist()
    return minutes


def interval_counts(device: Device, start: int, end: int) -> Counts:
    """The device's complete per-minute counts of the minutes in ``[start, end)``."""
    parts: list[Counts] = []
    t = start
    while t < end:
        grid = device.grid(device.local_date(t))
        stop = min(end, grid.end)
        i, j = (t - grid.start) // 60, (stop - grid.start) // 60
        c = device.counts(grid.day)
        parts.append(Counts(c.in_[i:j], c.out[i:j], c.in_adults[i:j], c.out_adults[i:j]))
        t = stop
    if len(parts) == 1:
        return parts[0]
    return Counts(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("in_", "out", "in_adults", "out_adults")


def sensor(cfg: DeviceConfig, push: PushConfig) -> dict[str, str]:
    """The ``sensor`` object: the application and the device's identity."""
    return {
        "application": APPLICATION,
        "applicationVersion": cfg.application_version,
        push.timezone_key: cfg.timezone,
        "name": cfg.display_name,
        "serial": cfg.serial.lower(),
        "ipAddress": cfg.ip_address,
    }


def _sensor_json(cfg: DeviceConfig, push: PushConfig) -> str:
    """The ``sensor`` object encoded."""
    return json.dumps(sensor(cfg, push))


def _span(start: float, end: float, tz: ZoneInfo) -> str:
    """The interval's four times as JSON members, in the vendor sample's order."""
    return (
        f'"utcFrom": "{utc_text(start)}", "utcTo": "{utc_text(end)}", '
        f'"localFrom": "{local_text(start, tz)}", "localTo": "{local_text(end, tz)}"'
    )


def measurement(start: float, end: float, tz: ZoneInfo, c: tuple[int, ...]) -> str:
    """One ``people-counts`` measurement (JSON) from (in, in adults, out, out adults)."""
    return (
        f'{{"kind": "{KIND}", {_span(start, end, tz)}, "items": ['
        f'{{"direction": "in", "count": {c[0]:d}, "adults": {c[1]:d}}}, '
        f'{{"direction": "out", "count": {c[2]:d}, "adults": {c[3]:d}}}]}}'
    )


def data(start: int, end: int, rows: list[list[int]], tz: ZoneInfo, per: str) -> str:
    """The ``data`` object (JSON) of one interval: one measurement per minute, or one in all.

    ``rows`` are each minute's (in, in adults, out, out adults). Written as ``json.dumps``
    writes the document (its times are ASCII, its counts integers).
    """
    if per == "interval":
        ms = [measurement(start, end, tz, tuple(sum(col) for col in zip(*rows, strict=True)))]
    else:
        ms = [
            measurement(start + 60 * k, start + 60 * (k + 1), tz, tuple(r))
            for k, r in enumerate(rows)
        ]
    return f'{{{_span(start, end, tz)}, "measurements": [{", ".join(ms)}]}}'


def stored_body(device: Device, start: int, end: int, window: Window | None = None) -> str:
    """What the outbox keeps for one interval: the document's data and sensor objects
    (the counts, and the sensor's encoding, kept in the device's ``window`` if given)."""
    cfg = device.cfg
    push = cfg.push
    if push is None:
        raise ValueError(f"device {device.id} has no push configured")
    body = data(start, end, minute_rows(device, start, end, window), device.tz, push.measurements)
    if window is None:
        return f'{{"data": {body}, "sensor": {_sensor_json(cfg, push)}}}'
    if window.sensor_of is not cfg:
        window.sensor_of, window.sensor = cfg, _sensor_json(cfg, push)
    return f'{{"data": {body}, "sensor": {window.sensor}}}'


def wire_body(stored: str, sent: float, tz: ZoneInfo) -> str:
    """The document as sent at ``sent``: the envelope, send times, then data and sensor."""
    return (
        f'{{"apiName": "{API_NAME}", "apiVersion": "{API_VERSION}", '
        f'"utcSent": "{utc_text(sent)}", "localSent": "{local_text(sent, tz)}", {stored[1:]}'
    )
