"""Every operator action and injected event is seen by the very next request, whatever the
clock does: running, scaled, frozen, or started at a fraction of a second."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp
import numpy as np
import pytest

from simulator.testing import Simulator
from tests.conftest import T0

CGI = "/axis-cgi/a3dpc.cgi"
OCCUPANCY = "/a3dpc/api/occupancy"


def session(user: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(middlewares=(aiohttp.DigestAuthMiddleware(user, user),))


async def call(s: aiohttp.ClientSession, url: str, method: str, **params: Any) -> None:
    body = {"apiVersion": "1.0", "method": method, "params": params}
    async with s.post(url + CGI, json=body) as r:
        assert r.status == 200, await r.text()
        assert "error" not in await r.json()


async def read(s: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with s.get(url + OCCUPANCY) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


@pytest.mark.parametrize(
    ("start", "speed"),
    [(T0 + 0.37, 0.0), (T0, 0.0), (T0 + 0.61, 1.0), (T0 + 0.25, 60.0)],
    ids=["frozen-fractional", "frozen-whole", "real-time", "speed-60"],
)
async def test_adjust_then_read(start: float, speed: float) -> None:
    rng = np.random.default_rng(int(speed * 100 + start % 1 * 100))
    async with Simulator(start=start, speed=speed) as sim, session("operator") as s:
        device = sim.fleet.devices[0]
        for value in rng.integers(0, 1_000_000, 250):
            await call(s, sim.url, "adjustOccupancy", occupancy=int(value))
            body = await read(s, sim.url)
            at = datetime.fromisoformat(body["timestamp"]).timestamp()
            last = sim.fleet.store.last(device.id, "adjust", at)
            assert last is not None and last.value == value, (value, body)
            if speed == 0:
                assert body["occupancy"] == value
            else:  # people may have passed since: a few at most, never the old value
                assert abs(body["occupancy"] - value) <= 50, (value, body)
                assert body["occupancy"] == device._realtime_afresh(at).occupancy


async def test_control_plane_adjustments_are_seen_at_once() -> None:
    rng = np.random.default_rng(5)
    async with Simulator(start=T0 + 0.5, speed=0) as sim, session("viewer") as s:
        for value in rng.integers(0, 1000, 50):
            await sim.acontrol.inject("adjust_occupancy", occupancy=int(value))
            assert (await read(s, sim.url))["occupancy"] == value
            await sim.acontrol.advance(7.3)  # the clock stays off the whole second


async def test_passthrough_restart_is_seen_at_once() -> None:
    async with Simulator(start=T0 + 0.5, speed=0) as sim, session("operator") as s:
        counted = 0
        for _ in range(20):
            await sim.acontrol.advance(123.4)
            counted += (await sim.acontrol.state("entrance"))["passthrough"]["count"]
            await call(s, sim.url, "restartPassthroughCountdown")
            assert (await sim.acontrol.state("entrance"))["passthrough"]["count"] == 0
        assert counted > 0  # people passed between the restarts


async def test_io_door_and_fps_events_are_seen_at_once() -> None:
    async with Simulator(start=T0 + 0.5, speed=0) as sim:
        ctl = sim.acontrol
        before = await ctl.state("entrance")
        assert not before["io_output"] and not before["door_closed"]
        await ctl.inject("io", active=True)
        await ctl.inject("door_closed")
        await ctl.inject("fps", percent=30)
        after = await ctl.state("entrance")
        assert after["io_output"] and after["door_closed"]
        assert after["fps"] < 0.5 * before["fps"]
        await ctl.inject("io", active=False)
        await ctl.inject("door_open")
        await ctl.inject("fps", percent=100)
        again = await ctl.state("entrance")
        assert not again["io_output"] and not again["door_closed"]
        assert again["fps"] == pytest.approx(before["fps"])
