"""The real-time reading: its memoised fast path agrees with computing it afresh."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path

import numpy as np
import pytest

from simulator.api.a3dpc import local_iso, realtime_body
from simulator.device import Device
from simulator.device.occupancy import Realtime
from simulator.schema.load import load_scenario
from simulator.schema.scenario import DeviceConfig, OccupancyConfig, Scenario
from simulator.store import Action
from tests.conftest import T0, make_fleet

ROOT = Path(__file__).resolve().parent.parent


def instants(device: Device, n: int = 400) -> list[float]:
    """Whole seconds over two days, many inside busy minutes, some on minute edges."""
    rng = np.random.default_rng(3)
    start = device.grid(device.local_date(T0)).start - 86400
    ts = start + rng.integers(0, 2 * 86400, n)
    edges = start + 60 * rng.integers(0, 2 * 1440, 50)
    return sorted(float(t) for t in np.concatenate([ts, edges]))


def check(device: Device) -> None:
    for t in instants(device):
        device.clock.set(t)
        assert device._compute_realtime(t) == device._realtime_afresh(t), t


@pytest.mark.parametrize("reset", [time(0, 0), time(3, 30), time(16, 0)])
def test_fast_path_equals_afresh_with_resets(reset: time) -> None:
    cfg = DeviceConfig(occupancy=OccupancyConfig(reset_time=reset))
    check(make_fleet(Scenario(devices=[cfg])).fleet.devices[0])


def test_fast_path_equals_afresh_with_adjustments() -> None:
    fleet = make_fleet()
    device = fleet.fleet.devices[0]
    start = device.grid(device.local_date(T0)).start
    for k, at in enumerate([start - 50000.5, start + 37000.25, start + 37030, start + 50000]):
        fleet.store.add(Action(device.id, at, "adjust", 40 * k))
    check(device)  # includes instants before adjustments recorded "later" (afresh path)


def test_fast_path_equals_afresh_for_site_doors() -> None:
    fleet = make_fleet(load_scenario(ROOT / "scenarios" / "mall.yaml"), at=1733140800.0)
    for door in ("parking", "metro"):
        check(fleet.fleet.by_id[door])


def test_estimation_off() -> None:
    cfg = DeviceConfig(occupancy=OccupancyConfig(estimation=False))
    check(make_fleet(Scenario(devices=[cfg])).fleet.devices[0])


def test_readings_within_a_minute_agree_with_afresh_before_and_after_an_adjustment() -> None:
    # Readings of one minute share what the minute needs of the day (memoised); an
    # adjustment recorded once that memo is warm must still be seen at once.
    fleet = make_fleet()
    device = fleet.fleet.devices[0]
    start = device.grid(device.local_date(T0)).start
    busy = [start + 60 * m + s for m in range(660, 700) for s in range(0, 60, 5)]

    def agree() -> None:
        for t in busy:
            device.clock.set(t)
            assert device._compute_realtime(t) == device._realtime_afresh(t), t

    agree()
    fleet.store.add(Action(device.id, start + 60 * 670 + 20, "adjust", 55))
    agree()
    fleet.store.add(Action(device.id, start + 60 * 690 + 0.5, "adjust", 3))
    agree()


def test_the_occupancy_body_is_what_json_dumps_writes() -> None:
    # The body is formatted directly; it must stay byte for byte json.dumps's document.
    fleet = make_fleet(load_scenario(ROOT / "scenarios" / "mall.yaml"), at=1733140800.0)
    device = fleet.fleet.by_id["parking"]
    rng = np.random.default_rng(5)
    for occupancy, total_in, total_out, at in zip(
        [0, 7, 999_999, 10**12],
        [0, 12, 345_678, 10**15],
        [0, 5, 345_600, 1],
        [0.0, 1.5e9, 1.7e9, 4e9],
        strict=True,
    ):
        r = Realtime(occupancy, total_in, total_out, at + float(rng.integers(0, 86400)))
        doc = {
            "occupancy": occupancy,
            "serial": device.mac,
            "timestamp": local_iso(device, r.at),
            "total_in": total_in,
            "total_out": total_out,
        }
        assert realtime_body(device, r) == json.dumps(doc).encode()
