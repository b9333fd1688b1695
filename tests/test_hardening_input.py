"""Hostile bodies, versions, numbers and ids get the documented answer, never a 500 or 1100."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient, TestServer
from requests.auth import HTTPDigestAuth

from simulator.api.app import AUTH, create_app
from simulator.api.common import bounded_int
from simulator.schema.scenario import AuthConfig, DeviceConfig, Scenario
from tests.conftest import T0, ClientFactory, make_fleet

Client = TestClient[Any, Any]
CGI = "/axis-cgi/a3dpc.cgi"
DISCOVERY = "/axis-cgi/apidiscovery.cgi"
TOKEN = {"Authorization": "Bearer p8815-sim"}
HUGE = "9" * 5000  # over Python's 4,300-digit limit of int()
DEEP = "[" * 1000 + "]" * 1000
ADJUST = '{"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": %s}}'


async def rpc(client: Client, body: str) -> dict[str, Any]:
    """POST a raw body to a3dpc.cgi; its JSON answer (always 200)."""
    r = await client.post(CGI, data=body, headers={"Content-Type": "application/json"})
    assert r.status == 200
    answer: dict[str, Any] = await r.json()
    return answer


def code(answer: dict[str, Any]) -> int:
    """The error code of an answer."""
    return int(answer["error"]["code"])


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail when the test logged an error (a traceback of an unexpected failure)."""
    yield
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.usefixtures("no_tracebacks")
async def test_a3dpc_cgi_bodies(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), "operator")
    assert code(await rpc(client, DEEP)) == 2101
    assert code(await rpc(client, '{"apiVersion": "1", "x": ' + DEEP + "}")) == 2101
    assert code(await rpc(client, ADJUST % "NaN")) == 2101  # not JSON
    assert code(await rpc(client, ADJUST % "-Infinity")) == 2101
    huge = await rpc(client, ADJUST % HUGE)
    assert huge["error"] == {"code": 2104, "message": "Invalid parameter value specified"}
    assert code(await rpc(client, ADJUST % ("-" + HUGE))) == 2104
    assert code(await rpc(client, ADJUST % "1e400")) == 2104
    assert "data" in await rpc(client, ADJUST % "7")


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (HUGE, 2100),  # well formed, not supported
        ("1." + HUGE, 2100),
        ("1.0000000000000000000000000000000000000000", 2000),
        ("\u0661", 2104),  # Arabic-Indic one: not an ASCII version
        ("\u0661.0", 2104),
        ("1.\u0660", 2104),
        ("\u00b9", 2104),  # superscript one
        ("1.0", 2000),
        ("2", 2100),
    ],
)
async def test_a3dpc_cgi_versions(client_for: ClientFactory, version: str, expected: int) -> None:
    client = await client_for(make_fleet(), "operator")
    body = '{"apiVersion": "' + version + '", "method": "restartPassthroughCountdown"}'
    answer = await rpc(client, body)
    assert (code(answer) if "error" in answer else 2000) == expected, answer


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (DEEP, 4000),  # the VAPIX JSON APIs' "Invalid JSON"
        ('{"method": "getApiList", "apiVersion": "1.0", "context": ' + DEEP + "}", 4000),
        ('{"method": "getApiList", "apiVersion": NaN}', 4000),
        ('{"method": "getApiList", "apiVersion": "\u0661.0"}', 4002),
        ('{"method": "getApiList", "apiVersion": "1.\u00b2"}', 4002),
        ('{"method": "getApiList", "apiVersion": "1.' + HUGE + '"}', 2003),
        ('{"method": "getApiList", "apiVersion": "' + HUGE + '"}', 2003),
        ('{"method": "getApiList", "apiVersion": ' + HUGE + "}", 2003),
        ('{"method": "getApiList", "apiVersion": "1.0"}', 0),
    ],
)
async def test_vapix_bodies(client_for: ClientFactory, body: str, expected: int) -> None:
    client = await client_for(make_fleet(), "viewer")
    r = await client.post(DISCOVERY, data=body)
    answer = await r.json()
    assert r.status == 200
    assert (code(answer) if "error" in answer else 0) == expected, answer


async def control(client: Client, method: str, path: str, body: Any = None) -> Any:
    """A control-plane call; (status, JSON answer)."""
    r = await client.request(method, "/sim/v1/" + path, json=body, headers=TOKEN)
    return r.status, await r.json()


@pytest.mark.usefixtures("no_tracebacks")
async def test_event_ids_are_ascii_whole_numbers(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(make_fleet()))
    for bad in ("%C2%B2", "%D9%A1", "1.0", "-1", "0x1"):
        status, answer = await control(client, "DELETE", "events/" + bad)
        assert (status, answer["error"]["field"]) == (400, "id"), bad
    for unknown in (HUGE, "0" * 5000 + "1"):
        status, answer = await control(client, "DELETE", "events/" + unknown)
        assert status == 404 and answer["error"]["field"] == "id"
    status, event = await control(client, "POST", "events", {"kind": "door_closed", "after": "1d"})
    assert status == 201
    status, answer = await control(client, "DELETE", f"events/{event['id']}")
    assert (status, answer) == (200, {"cancelled": event["id"]})


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("when", [253402300799, "253402300799", 1e400, -1, 2**70])
async def test_clock_set_numbers_are_seconds(aiohttp_client: Any, when: Any) -> None:
    """9999-12-31 as epoch seconds lies outside the calendar, not in 1978 (as milliseconds)."""
    client = await aiohttp_client(create_app(make_fleet()))
    status, answer = await control(client, "POST", "clock/set", {"time": when})
    assert (status, answer["error"]["field"]) == (400, "time")
    status, clock = await control(client, "GET", "clock")
    assert clock["epoch"] == T0  # unchanged


async def test_clock_set_epoch_seconds_of_any_size(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(make_fleet()))
    for when in (32503680000, "32503680000", 32503680000.5):  # 3000-01-01, above 2e10
        status, clock = await control(client, "POST", "clock/set", {"time": when})
        assert status == 200 and clock["now"].startswith("3000-01-01T00:00:00"), clock
    status, clock = await control(client, "POST", "clock/set", {"time": T0})
    assert status == 200 and clock["epoch"] == T0


@pytest.mark.usefixtures("no_tracebacks")
async def test_event_at_numbers_are_seconds(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(make_fleet()))
    body = {"kind": "door_closed", "at": 253402300799}
    status, answer = await control(client, "POST", "events", body)
    assert (status, answer["error"]["field"]) == (400, "at")
    status, event = await control(client, "POST", "events", {**body, "at": T0 + 3600})
    assert status == 201 and event["due"] == "2024-06-07T14:30:20Z"


def test_bounded_int() -> None:
    assert bounded_int("-0042") == -42
    assert bounded_int("0" * 5000 + "7") == 7  # int() would count the zeros to its limit
    assert bounded_int(HUGE) == -bounded_int("-" + HUGE) > 10**20


# ---- strict_nc: a replay after the nonce table filled up -----------------------------------


def _replay_story(url: str) -> None:
    """A victim logs in, others fill the nc table, the victim's captured request replays."""
    victim = HTTPDigestAuth("viewer", "viewer")  # its nonce state is per thread: one thread
    first = requests.get(url, auth=victim, timeout=30)
    assert first.status_code == 200
    captured = {"Authorization": first.request.headers["Authorization"]}
    replay = requests.get(url, headers=captured, timeout=30)
    assert replay.status_code == 401  # the table still knows the nonce
    for _ in range(5):  # other clients log in: the victim's nonce is evicted
        other = requests.get(url, auth=HTTPDigestAuth("viewer", "viewer"), timeout=30)
        assert other.status_code == 200
    replay = requests.get(url, headers=captured, timeout=30)
    assert replay.status_code == 401
    assert replay.headers["WWW-Authenticate"].endswith("stale=true")
    again = requests.get(url, auth=victim, timeout=30)  # nc 2 on the forgotten nonce
    assert again.status_code == 200  # stale, then re-authenticated with a new nonce
    assert [r.status_code for r in again.history] == [401]


async def test_strict_nc_replay_after_the_table_fills() -> None:
    """A captured request replayed after other logins evicted its nonce is stale, not fresh."""
    fleet = make_fleet(Scenario(devices=[DeviceConfig(auth=AuthConfig(strict_nc=True))]))
    app = create_app(fleet)
    app[AUTH][fleet.fleet.devices[0].id].nc_table_size = 3
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await asyncio.to_thread(_replay_story, str(server.make_url("/a3dpc/api/occupancy")))
    finally:
        await server.close()
    reasons = [e["auth"] for e in fleet.journal.entries(fleet.fleet.devices[0].id)]
    assert reasons.count("forgotten-nonce") == 2
