"""The simulated clock under any wall clock: it follows a test's freezegun time when the
scenario has no fixed start, stays anchored once moved, tolerates the wall going back, and
never leaves the calendar."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from freezegun import freeze_time
from requests.auth import HTTPDigestAuth

from simulator.clock import LAST_TIME, MAX_TIME, SimClock
from simulator.schema.scenario import DeviceConfig, PushConfig, Scenario
from simulator.testing import Simulator, ThreadedSimulator
from tests.conftest import T0
from tests.serving import free_port

AUTH = HTTPDigestAuth("viewer", "viewer")


def occupancy(sim: Simulator) -> dict[str, Any]:
    r = requests.get(sim.url + "/a3dpc/api/occupancy", auth=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _sthlm(t: datetime) -> str:
    """A time as the Stockholm device prints it."""
    return t.astimezone(ZoneInfo("Europe/Stockholm")).isoformat()


@pytest.fixture(scope="module")
def wall_sim() -> Any:
    """The default scenario (no fixed start) served in a thread, as the pytest plugin does."""
    with ThreadedSimulator() as sim:
        yield sim


def test_the_device_time_is_the_test_time(wall_sim: Simulator) -> None:
    wall_sim.control.reset()
    with freeze_time("2024-06-07 12:00:00", real_asyncio=True) as frozen:
        first = occupancy(wall_sim)
        assert first["timestamp"] == "2024-06-07T14:00:00+02:00"
        assert first["total_in"] > 0  # a Friday afternoon: the device has a history
        frozen.tick(3600)
        assert occupancy(wall_sim)["timestamp"] == "2024-06-07T15:00:00+02:00"
        frozen.move_to("2024-06-08 09:00:00")
        assert occupancy(wall_sim)["timestamp"] == "2024-06-08T11:00:00+02:00"
        frozen.move_to("2024-06-07 10:00:00")  # back in time: nothing breaks
        state = wall_sim.control.state("entrance")
        assert state["uptime_s"] >= 0 and state["frames"] >= 0
        assert occupancy(wall_sim)["timestamp"] == "2024-06-07T12:00:00+02:00"
        frozen.tick(90)
        later = wall_sim.control.state("entrance")
        assert later["uptime_s"] == state["uptime_s"] + 90
        assert later["frames"] > state["frames"]
    now = occupancy(wall_sim)["timestamp"]  # out of the freeze: the wall clock again
    assert abs(datetime.fromisoformat(now).timestamp() - time.time()) < 30


def test_a_moved_clock_is_anchored_until_a_reset(wall_sim: Simulator) -> None:
    wall_sim.control.reset()
    with freeze_time("2024-06-07 12:00:00", real_asyncio=True) as frozen:
        wall_sim.control.set_time("2024-01-01T00:00:00Z")
        frozen.tick(60)
        assert wall_sim.control.clock()["now"] == "2024-01-01T00:01:00Z"
        frozen.move_to("2030-01-01 00:00:00")  # anchored: moves by the wall's move
        wall_sim.control.reset()
        assert wall_sim.control.clock()["now"] == "2030-01-01T00:00:00Z"
        frozen.tick(5)
        assert occupancy(wall_sim)["timestamp"] == _sthlm(datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC))


def test_the_wall_going_back_pushes_nothing_twice(tmp_path: Path) -> None:
    port = free_port()  # nobody listens: produced intervals stay in the outbox
    push = PushConfig(url=f"http://127.0.0.1:{port}/push", allow_http=True, interval_minutes=1)
    sc = Scenario(devices=[DeviceConfig(push=push)])
    with freeze_time("2024-06-07 12:00:00", real_asyncio=True) as frozen:
        with ThreadedSimulator(sc, db=tmp_path / "sim.db") as sim:
            pusher = sim.runtime.pusher
            for step in (600, -1800, 300, 1500, -7200, 900):
                frozen.tick(step)
                time.sleep(0.15)  # the push scheduler polls every 50 ms
                assert occupancy(sim)["occupancy"] >= 0
            produced = pusher.stats("entrance").produced
            with sqlite3.connect(tmp_path / "sim.db") as db:
                rows = db.execute("SELECT due FROM push_outbox ORDER BY id").fetchall()
            dues = [float(r[0]) for r in rows]
        assert produced == len(dues) == len(set(dues)) > 0
        assert dues == sorted(dues)


def test_the_running_clock_stops_at_the_end_of_the_calendar() -> None:
    with ThreadedSimulator(start=LAST_TIME - 86400 * 365, speed=1e9) as sim:
        time.sleep(0.2)  # 2e8 simulated seconds: years past the end
        assert sim.fleet.clock.now() == LAST_TIME
        assert occupancy(sim)["timestamp"] == "9000-01-01T00:59:59+01:00"
        for path in (
            "/a3dpc/api/occupancy",
            "/a3dpc/api/export/csv?start=today&end=today&resolution=hour",
            "/a3dpc/api/export_occupancy/json?start=yesterday&end=today&resolution=day",
        ):
            r = requests.get(sim.url + path, auth=AUTH, timeout=30)
            assert r.status_code == 200, (path, r.text)
        clock = sim.control.clock()
        assert clock["epoch"] == LAST_TIME < MAX_TIME
        state = sim.control.state("entrance")
        assert state["uptime_s"] >= 0


def test_saturation_in_the_clock_itself() -> None:
    wall = [0.0]
    clock = SimClock(start=T0, speed=1e9, wall=lambda: wall[0])
    wall[0] = 1e6
    assert clock.now() == LAST_TIME
    clock.set_speed(0)  # the clock stopped at the end; it stays there
    wall[0] = 2e6
    assert clock.now() == LAST_TIME
    clock.set(T0)
    assert clock.now() == T0
