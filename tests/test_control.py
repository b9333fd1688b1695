"""The control plane /sim/v1/: token, clock, bad input, journal, state, reset, OpenAPI."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from simulator.api.app import create_app
from simulator.clock import SimClock
from simulator.runtime.runtime import Runtime
from simulator.schema.load import parse_scenario
from simulator.testing import Simulator
from tests.conftest import T0, make_fleet

TOKEN = {"Authorization": "Bearer p8815-sim"}


@pytest.fixture
async def ctl(aiohttp_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(make_fleet()))
    return client


async def test_token_required_and_separate_from_digest(ctl: TestClient[Any, Any]) -> None:
    r = await ctl.get("/sim/v1/clock")
    assert r.status == 401
    assert "field" not in (await r.json())["error"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = await ctl.get("/sim/v1/clock", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await ctl.get("/sim/v1/clock", headers=TOKEN)  # no Digest credentials needed
    assert r.status == 200
    assert (await r.json())["epoch"] == T0


async def test_openapi_served_without_token(ctl: TestClient[Any, Any]) -> None:
    r = await ctl.get("/sim/v1/openapi.json")
    doc = await r.json()
    assert doc["openapi"].startswith("3.")
    assert "/sim/v1/clock/advance" in doc["paths"]
    assert "Event" in doc["components"]["schemas"]


async def test_clock_set_advance_speed_freeze(ctl: TestClient[Any, Any]) -> None:
    r = await ctl.post("/sim/v1/clock/advance", json={"by": "1h30m"}, headers=TOKEN)
    assert (await r.json())["epoch"] == T0 + 5400
    r = await ctl.post("/sim/v1/clock/set", json={"time": "2024-06-08T00:00:00Z"}, headers=TOKEN)
    assert (await r.json())["now"] == "2024-06-08T00:00:00Z"
    r = await ctl.post("/sim/v1/clock/set", json={"time": "2024-06-01T00:00:00"}, headers=TOKEN)
    assert (await r.json())["now"] == "2024-06-01T00:00:00Z"  # no offset: UTC; backwards ok
    r = await ctl.post("/sim/v1/clock/speed", json={"speed": 60}, headers=TOKEN)
    assert (await r.json())["speed"] == 60
    r = await ctl.post("/sim/v1/clock/freeze", headers=TOKEN)
    body = await r.json()
    assert body["frozen"] is True and body["speed"] == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sim/v1/clock/advance", {"by": "soon"}, "by"),
        ("/sim/v1/clock/advance", {"by": -5}, "by"),
        ("/sim/v1/clock/advance", {}, "by"),
        ("/sim/v1/clock/advance", {"by": 1, "extra": 2}, "extra"),
        ("/sim/v1/clock/advance", {"by": "9999999999d"}, "by"),
        ("/sim/v1/clock/advance", {"by": "1e400"}, "by"),
        ("/sim/v1/events", {"kind": "clock_jump", "by": "1e12"}, "by"),
        ("/sim/v1/events", {"kind": "clock_jump", "by": "99y"}, "by"),
        ("/sim/v1/events", {"kind": "clock_jump", "to": "9999-12-31T00:00:00Z"}, "to"),
        ("/sim/v1/events", {"kind": "reboot", "at": "0001-01-01T00:00:00Z"}, "at"),
        ("/sim/v1/clock/set", {"time": "9999-12-31T23:59:59Z"}, "time"),
        ("/sim/v1/events", {"kind": "burst", "visitors": 1e12}, "visitors"),
        ("/sim/v1/events", {"kind": "adjust_occupancy", "occupancy": 10**9}, "occupancy"),
        ("/sim/v1/events", {"kind": "push_outage", "minutes": 1e300}, "minutes"),
        ("/sim/v1/faults", {"status": 503, "latency": {"ms": 1e300}}, "latency.ms"),
        ("/sim/v1/clock/set", {"time": "tomorrow"}, "time"),
        ("/sim/v1/clock/speed", {"speed": -1}, "speed"),
        ("/sim/v1/clock/speed", {"speed": "fast"}, "speed"),
        ("/sim/v1/events", {"kind": "meteor"}, "kind"),
        ("/sim/v1/events", {"visitors": 3}, "kind"),
        ("/sim/v1/events", {"kind": "burst"}, "visitors"),
        ("/sim/v1/events", {"kind": "burst", "visitors": 5, "device": "nope"}, "device"),
        ("/sim/v1/events", {"kind": "fps", "percent": 0}, "percent"),
        ("/sim/v1/events", {"kind": "clock_jump"}, "body"),
        ("/sim/v1/events", {"kind": "reboot", "at": "2024-06-07T10:00:00"}, "at"),
        ("/sim/v1/events", {"kind": "reboot", "after": "x"}, "after"),
        ("/sim/v1/faults", {"path": "/a3dpc/*"}, "body"),
        ("/sim/v1/faults", {"status": 99}, "status"),
        ("/sim/v1/faults", {"status": 503, "device": "nope"}, "device"),
        ("/sim/v1/reset", {"clock": "maybe"}, "clock"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    ctl: TestClient[Any, Any], path: str, body: dict[str, Any], field: str
) -> None:
    r = await ctl.post(path, json=body, headers=TOKEN)
    assert r.status == 400
    err = (await r.json())["error"]
    assert err["field"] == field, err
    assert err["message"]


async def test_invalid_json_and_unknown_routes(ctl: TestClient[Any, Any]) -> None:
    r = await ctl.post("/sim/v1/clock/advance", data=b"{nope", headers=TOKEN)
    assert r.status == 400
    assert (await r.json())["error"]["field"] == "body"
    r = await ctl.post("/sim/v1/events", data=b"[1,", headers=TOKEN)
    assert (await r.json())["error"]["field"] == "body"
    for path in ("/sim/v1/clock/set", "/sim/v1/events", "/sim/v1/faults", "/sim/v1/reset"):
        r = await ctl.post(path, data=b"\xff\xfe{", headers=TOKEN)  # not UTF-8
        assert r.status == 400 and (await r.json())["error"]["field"] == "body"
    r = await ctl.get("/sim/v1/nothing", headers=TOKEN)
    assert r.status == 404 and "error" in await r.json()
    r = await ctl.delete("/sim/v1/clock", headers=TOKEN)
    assert r.status == 405 and r.headers["Allow"] == "GET,HEAD"
    r = await ctl.get("/sim/v1/devices/nope", headers=TOKEN)
    assert r.status == 404 and (await r.json())["error"]["field"] == "device"
    r = await ctl.delete("/sim/v1/events/abc", headers=TOKEN)
    assert (await r.json())["error"]["field"] == "id"
    r = await ctl.get("/sim/v1/journal/entrance?limit=x", headers=TOKEN)
    assert (await r.json())["error"]["field"] == "limit"
    r = await ctl.get("/sim/v1/push/entrance", headers=TOKEN)
    assert r.status == 404


async def test_secondary_cannot_be_adjusted(aiohttp_client: Any) -> None:
    sc = parse_scenario(
        "devices:\n  - {id: a, site: s}\n  - {id: b, site: s, occupancy: {role: secondary}}\n"
    )
    client = await aiohttp_client(create_app(make_fleet(sc)))
    body = {"kind": "adjust_occupancy", "device": "b", "occupancy": 3}
    r = await client.post("/sim/v1/events", json=body, headers=TOKEN)
    assert r.status == 400 and (await r.json())["error"]["field"] == "device"


async def test_journal_records_auth_outcome_and_is_bounded(aiohttp_client: Any) -> None:
    sc = parse_scenario("control: {journal_size: 3}")
    fleet = make_fleet(sc)
    mw = (aiohttp.DigestAuthMiddleware("viewer", "viewer"),)
    dev = await aiohttp_client(create_app(fleet), middlewares=mw)
    assert (await dev.get("/a3dpc/api/occupancy")).status == 200
    entries = fleet.journal.entries("entrance")
    assert [(e["status"], e["auth"]) for e in entries] == [(401, "missing"), (200, "ok")]
    assert entries[1]["user"] == "viewer"
    op = {"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 1}}
    await dev.post("/axis-cgi/a3dpc.cgi", json=op)  # a viewer may not: forbidden
    entries = fleet.journal.entries("entrance")
    assert len(entries) == 3 and entries[-1]["auth"] == "forbidden"
    async with aiohttp.ClientSession(headers=TOKEN) as plain:  # no Digest middleware
        r = await plain.get(dev.make_url("/sim/v1/journal/entrance?limit=1"))
        assert len((await r.json())["entries"]) == 1
        await plain.delete(dev.make_url("/sim/v1/journal"))
    assert fleet.journal.entries("entrance") == []


async def test_state_and_reset_device_and_all(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    c = await aiohttp_client(create_app(fleet))
    await c.post("/sim/v1/events", json={"kind": "adjust_occupancy", "occupancy": 7}, headers=TOKEN)
    await c.post("/sim/v1/events", json={"kind": "io", "active": True}, headers=TOKEN)
    state = await (await c.get("/sim/v1/devices/entrance", headers=TOKEN)).json()
    assert state["occupancy"] == 7 and state["io_output"] is True
    r = await c.post("/sim/v1/devices/entrance/reset", headers=TOKEN)
    state = await r.json()
    assert state["occupancy"] != 7 and state["io_output"] is False
    await c.post("/sim/v1/clock/advance", json={"by": "2h"}, headers=TOKEN)
    await c.post("/sim/v1/clock/speed", json={"speed": 5}, headers=TOKEN)
    r = await c.post("/sim/v1/reset", headers=TOKEN)
    body = await r.json()
    assert body["epoch"] == T0 and body["speed"] == 0
    r = await c.post("/sim/v1/clock/advance", json={"by": 60}, headers=TOKEN)
    await c.post("/sim/v1/reset", json={"clock": False}, headers=TOKEN)
    assert fleet.clock.now() == T0 + 60
    devices = await (await c.get("/sim/v1/devices", headers=TOKEN)).json()
    assert devices["devices"][0]["id"] == "entrance"


async def test_every_device_port_answers_the_control_plane() -> None:
    sc = parse_scenario(
        "devices:\n  - {id: a, serial: ACCC8E000001}\n  - {id: b, serial: ACCC8E000002}"
    )
    async with Simulator(sc, start=T0, speed=0) as sim, aiohttp.ClientSession() as s:
        for info in sim.devices.values():
            async with s.get(info.url + "/sim/v1/devices", headers=TOKEN) as r:
                urls = {d["id"]: d["url"] for d in (await r.json())["devices"]}
                assert urls == {k: v.url for k, v in sim.devices.items()}


async def test_control_token_override_and_none(aiohttp_client: Any) -> None:
    async with Simulator(None, start=T0, speed=0, control_token="s3cret") as sim:
        assert (await sim.acontrol.clock())["epoch"] == T0
        assert sim.control_token == "s3cret"
    fleet = Runtime(parse_scenario("control: {token: null}"), SimClock(start=T0, speed=0))
    c = await aiohttp_client(create_app(fleet))
    assert (await c.get("/sim/v1/clock")).status == 200
