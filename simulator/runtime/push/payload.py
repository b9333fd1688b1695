"""The Axis Retail Data JSON document of a push, built from the device's counts (pure data).

What the outbox stores is the document without its send times (``utcSent``/``localSent``
belong to each delivery attempt); :func:`wire_body` completes it when it is sent, so a
retried push carries the time it was actually sent, in the vendor sample's key order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from simulator.device import Device
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


@lru_cache(maxsize=65536)
def _sensor_json(items: tuple[tuple[str, str], ...]) -> str:
    """The ``sensor`` object encoded (once per device: it changes only with its settings)."""
    return json.dumps(dict(items))


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


def data(start: int, end: int, counts: Counts, tz: ZoneInfo, per: str) -> str:
    """The ``data`` object (JSON) of one interval: one measurement per minute, or one in all.

    Written as ``json.dumps`` writes the document (its times are ASCII, its counts integers).
    """
    cols = (counts.in_, counts.in_adults, counts.out, counts.out_adults)
    if per == "interval":
        ms = [measurement(start, end, tz, tuple(int(a.sum()) for a in cols))]
    else:
        rows = np.stack(cols, axis=1).tolist()
        ms = [
            measurement(start + 60 * k, start + 60 * (k + 1), tz, tuple(r))
            for k, r in enumerate(rows)
        ]
    return f'{{{_span(start, end, tz)}, "measurements": [{", ".join(ms)}]}}'


def stored_body(device: Device, start: int, end: int) -> str:
    """What the outbox keeps for one interval: the document's data and sensor objects."""
    push = device.cfg.push
    if push is None:
        raise ValueError(f"device {device.id} has no push configured")
    counts = interval_counts(device, start, end)
    body = data(start, end, counts, device.tz, push.measurements)
    return f'{{"data": {body}, "sensor": {_sensor_json(tuple(sensor(device.cfg, push).items()))}}}'


def wire_body(stored: str, sent: float, tz: ZoneInfo) -> str:
    """The document as sent at ``sent``: the envelope, send times, then data and sensor."""
    return (
        f'{{"apiName": "{API_NAME}", "apiVersion": "{API_VERSION}", '
        f'"utcSent": "{utc_text(sent)}", "localSent": "{local_text(sent, tz)}", {stored[1:]}'
    )
