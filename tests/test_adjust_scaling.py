"""Readings do not grow with the number of adjustments: one is kept per device and minute,
and a reading looks only at the latest one before it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from simulator.device import Device
from simulator.store import Store
from tests.conftest import T0, make_fleet


class Counting:
    """Wraps a store, counting the actions its look-ups hand out."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.items = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def actions(self, *args: Any) -> Any:
        found = self.store.actions(*args)
        self.items += len(found)
        return found

    def last(self, *args: Any) -> Any:
        found = self.store.last(*args)
        self.items += found is not None
        return found


def adjust_many(device: Device, n: int, seed: int) -> tuple[float, int]:
    """``n`` adjustments spread over today's reset window up to T0, the last at T0."""
    rng = np.random.default_rng(seed)
    start = device.grid(device.local_date(T0)).start  # the default resets at midnight
    times = np.sort(rng.uniform(start, T0, n - 1))
    for t in times:
        device.adjust_occupancy(int(rng.integers(0, 5000)), now=float(t))
    device.adjust_occupancy(1234, now=T0)
    return start, 1234


def scanned_per_read(n: int) -> tuple[int, int, int]:
    """(items a reading and an export look at, stored actions, reading) after ``n`` adjustments."""
    fleet = make_fleet()
    device = fleet.fleet.devices[0]
    start, value = adjust_many(device, n, seed=n)
    counting = Counting(fleet.store)
    device.store = counting  # type: ignore[assignment]
    reading = device.realtime(T0)
    per_read = counting.items
    assert reading.occupancy == value == device._realtime_afresh(T0).occupancy
    counting.items = 0
    device.adjust_occupancy(77, now=T0 + 30)  # replaces the one at T0 (same minute)
    assert device.realtime(T0 + 30).occupancy == 77
    assert device.realtime(T0 + 39).occupancy == 77 + _net(device, T0 + 30, T0 + 39)
    per_read = max(per_read, counting.items // 2)
    counting.items = 0
    list(device.occupancy_peaks(start, T0 + 60, "hour", T0 + 30))
    assert counting.items <= math.ceil((T0 + 30 - start) / 60) + 1  # one per minute at most
    stored = len(fleet.store.actions(device.id, "adjust", -math.inf, math.inf))
    assert fleet.store.action_rows() == stored
    return per_read, stored, reading.occupancy


def _net(device: Device, a: float, b: float) -> int:
    """People in minus out between two instants of one minute."""
    day = device.local_date(a)
    grid = device.grid(day)
    full = device.counts(day)
    c = (full.in_, full.out)
    i = grid.index_of(a)
    fa, fb = grid.minute_of(a), grid.minute_of(b)
    moved = [math.floor(int(x[i]) * fb + 1e-9) - math.floor(int(x[i]) * fa + 1e-9) for x in c[:2]]
    return moved[0] - moved[1]


def test_reads_do_not_grow_with_adjustments() -> None:
    few, stored_few, _ = scanned_per_read(400)
    many, stored_many, _ = scanned_per_read(40_000)
    assert many == few <= 2
    minutes = math.ceil((T0 - (T0 - T0 % 86400)) / 60) + 1440  # bound: minutes of the window
    assert stored_few <= stored_many <= minutes


def test_an_adjustment_replaces_the_one_of_its_minute_durably(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    fleet = make_fleet()
    store = Store(db)
    device = fleet.fleet.devices[0]
    device.store = store
    for k in range(300):  # 300 adjustments over 6 minutes: one per minute remains
        device.adjust_occupancy(k, now=T0 + k)
    assert store.action_rows() == 6
    store.close()
    again = Store(db)
    kept = again.actions(device.id, "adjust", -math.inf, math.inf)
    assert [a.value for a in kept] == [k for k in range(300) if (T0 + k) % 60 == 59 or k == 299]
    again.close()
