"""The passthrough countdown, its threshold events and the output port they drive."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simulator.model.passthrough import countdown
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, IOConfig, PassthroughConfig, Scenario
from simulator.store import Action
from tests.conftest import T0, ClientFactory, make_fleet

DAY0 = 1_717_711_200.0  # some local midnight; the pure model only needs minute 0's time


def minutes(*counts: int, n: int = 1440) -> Any:
    a = np.zeros(n, dtype=np.int64)
    a[: len(counts)] = counts
    return a


# ---- the pure countdown -------------------------------------------------------------------


def test_event_exactly_once_per_threshold() -> None:
    rng = np.random.default_rng(1)
    in_ = rng.poisson(3.0, 1440).astype(np.int64)
    cd = countdown(in_, DAY0, [], 100, DAY0 + 86400)
    total = int(in_.sum())
    assert len(cd.events) == total // 100
    assert cd.count == total % 100
    assert np.all(np.diff(cd.events) > 0)
    # At each event the running count is a multiple of the threshold, and one tick before
    # it is one short of it.
    cum = np.concatenate([[0], np.cumsum(in_)])
    for k, t in enumerate(cd.events, start=1):
        i = int((t - DAY0) // 60)
        frac = (t - DAY0 - 60 * i) / 60
        assert cum[i] + np.floor(in_[i] * frac + 1e-6) == 100 * k


def test_event_time_within_the_minute() -> None:
    # 4 in minute 0, 6 in minute 1: the 5th count is the 1st of minute 1's six, at 10 s.
    cd = countdown(minutes(4, 6), DAY0, [], 5, DAY0 + 120)
    assert cd.events.tolist() == [DAY0 + 70.0, DAY0 + 120.0]
    assert cd.count == 0
    assert cd.started == DAY0 + 120.0


def test_nothing_fires_before_its_time() -> None:
    cd = countdown(minutes(4, 6), DAY0, [], 5, DAY0 + 69.9)
    assert len(cd.events) == 0
    assert cd.count == 4


def test_restart_counts_from_zero_without_an_event() -> None:
    in_ = minutes(*([10] * 20))  # 10 a minute for 20 minutes
    no_restart = countdown(in_, DAY0, [], 100, DAY0 + 1200)
    assert len(no_restart.events) == 2
    restarted = countdown(in_, DAY0, [DAY0 + 570], 100, DAY0 + 1200)
    # 95 counted by 9:30; the restart drops them without an event; 100 more by 19:30.
    assert restarted.events.tolist() == [DAY0 + 1170.0]
    assert restarted.count == 5
    just_after = countdown(in_, DAY0, [DAY0 + 570], 100, DAY0 + 570)
    assert (just_after.count, len(just_after.events)) == (0, 0)


def test_events_off_means_no_events() -> None:
    cd = countdown(minutes(*([10] * 20)), DAY0, [], 100, DAY0 + 1200, events_on=False)
    assert len(cd.events) == 0
    assert cd.count == 200


# ---- on a device --------------------------------------------------------------------------


def fleet_with(**changes: Any) -> Runtime:
    return make_fleet(Scenario(devices=[DeviceConfig(**changes)]))


def test_device_countdown_counts_today_from_midnight() -> None:
    fleet = fleet_with(passthrough=PassthroughConfig(threshold=50))
    device = fleet.fleet.devices[0]
    cd = device.passthrough(T0)
    in_today, _ = device.totals_today(T0)
    assert len(cd.events) == in_today // 50 > 3
    assert cd.count == in_today % 50
    assert all(device.local_date(t) == device.local_date(T0) for t in cd.events)


async def test_restart_over_http_restarts_the_countdown(client_for: ClientFactory) -> None:
    fleet = fleet_with()
    device = fleet.fleet.devices[0]
    before = device.passthrough(T0)
    assert before.count > 0
    client = await client_for(fleet, "operator")
    r = await client.post(
        "/axis-cgi/a3dpc.cgi", json={"apiVersion": "1", "method": "restartPassthroughCountdown"}
    )
    assert (await r.json())["data"] == {}
    after = device.passthrough(T0)
    assert after.count == 0
    assert len(after.events) == len(before.events)  # no event for the restart
    fleet.clock.advance(3600)
    later = device.passthrough(device.clock.now())
    in_then, in_now = device.totals_today(T0)[0], device.totals_today(device.clock.now())[0]
    assert later.count == (in_now - in_then) % 100


# ---- the output port ----------------------------------------------------------------------


def test_pulse_output() -> None:
    fleet = fleet_with(passthrough=PassthroughConfig(threshold=20), io=IOConfig(pulse_seconds=5))
    device = fleet.fleet.devices[0]
    events = device.passthrough(T0).events
    gaps = np.diff(events)
    k = int(np.argmax(gaps > 10))  # an event with a quiet 10 s after it
    t = float(events[k])
    assert device.io_output(t) is True
    assert device.io_output(t + 4.9) is True
    assert device.io_output(t + 5.1) is False
    assert device.io_output(t - 0.1) is bool(k > 0 and t - 0.1 - events[k - 1] < 5)


def test_toggle_output_flips_at_each_event() -> None:
    fleet = fleet_with(passthrough=PassthroughConfig(threshold=20), io=IOConfig(output="toggle"))
    device = fleet.fleet.devices[0]
    events = device.passthrough(T0).events
    for k, t in enumerate(events[:6]):
        assert device.io_output(float(t)) is (k % 2 == 0)
    day_start = device.grid(device.local_date(T0)).start
    assert device.io_output(day_start) is False  # the daily reset


@pytest.mark.parametrize("mode", ["pulse", "toggle"])
def test_injected_io_level(mode: str) -> None:
    fleet = fleet_with(passthrough=PassthroughConfig(events=False), io=IOConfig(output=mode))
    device = fleet.fleet.devices[0]
    assert device.io_output(T0) is False
    fleet.store.add(Action(device.id, T0 - 60, "io", 1))
    assert device.io_output(T0) is True
    fleet.store.add(Action(device.id, T0 - 30, "io", 0))
    assert device.io_output(T0) is False
