"""POST /axis-cgi/a3dpc.cgi and the real-time occupancy API."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from simulator.errors import ERROR_CODES
from simulator.schema.scenario import DeviceConfig, OccupancyConfig, PassthroughConfig, Scenario
from tests.conftest import T0, ClientFactory, make_fleet

Client = TestClient[Any, Any]
CGI = "/axis-cgi/a3dpc.cgi"


async def rpc(client: Client, body: Any) -> dict[str, Any]:
    data = body if isinstance(body, (str, bytes)) else None
    r = await client.post(CGI, data=data, json=None if data is not None else body)
    assert r.status == 200
    assert r.content_type == "application/json"
    result: dict[str, Any] = await r.json()
    return result


async def occupancy_now(client: Client) -> dict[str, Any]:
    r = await client.get("/a3dpc/api/occupancy")
    assert r.status == 200
    result: dict[str, Any] = await r.json()
    return result


async def test_realtime_shape(viewer: Client) -> None:
    body = await occupancy_now(viewer)
    assert list(body) == ["occupancy", "serial", "timestamp", "total_in", "total_out"]
    assert body["serial"] == "ac:cc:8e:f3:d9:2e"
    assert body["timestamp"] == "2024-06-07T15:30:20+02:00"
    assert body["total_in"] > body["occupancy"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", body["timestamp"])


async def test_adjust_occupancy_as_documented(operator: Client) -> None:
    before = await occupancy_now(operator)
    body = await rpc(
        operator,
        {
            "apiVersion": "1",
            "context": "95eb9c7a",
            "method": "adjustOccupancy",
            "params": {"occupancy": 0},
        },
    )
    assert body == {
        "apiVersion": "1.0",
        "context": "95eb9c7a",
        "data": {
            "message": "Request received, use the occupancy API to confirm that the changes "
            "have taken effect."
        },
        "method": "adjustOccupancy",
    }
    after = await occupancy_now(operator)
    assert after["occupancy"] == 0
    assert (after["total_in"], after["total_out"]) == (before["total_in"], before["total_out"])


async def test_adjustment_moves_later_readings_and_peaks(client_for: ClientFactory) -> None:
    fleet = make_fleet()
    client = await client_for(fleet, "operator")
    await rpc(
        client, {"apiVersion": "1.0", "method": "adjustOccupancy", "params": {"occupancy": 500}}
    )
    fleet.clock.set(T0 + 600)  # ten minutes later
    now = await occupancy_now(client)
    assert 400 < now["occupancy"] < 600
    rows = await client.get(
        "/a3dpc/api/export_occupancy/json",
        params={"start": "today", "end": "now", "resolution": "hour"},
    )
    peaks = [r["peak"] for r in (await rows.json())["data"]]
    assert peaks[-1] >= 500  # 15:00-16:00 holds the adjustment
    assert max(peaks[:-1]) < 500


async def test_adjustment_is_cleared_by_the_daily_reset(client_for: ClientFactory) -> None:
    fleet = make_fleet()
    client = await client_for(fleet, "operator")
    await rpc(
        client, {"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 900}}
    )
    fleet.clock.set(T0 + 86400)
    assert (await occupancy_now(client))["occupancy"] < 900


async def test_reset_time_other_than_midnight(client_for: ClientFactory) -> None:
    from datetime import time

    cfg = DeviceConfig(occupancy=OccupancyConfig(reset_time=time(16, 0)))
    fleet = make_fleet(Scenario(devices=[cfg]))
    client = await client_for(fleet)
    before = await occupancy_now(client)  # 15:30, window since yesterday 16:00
    fleet.clock.set(T0 + 31 * 60)  # 16:01:20 local, just after today's reset
    after = await occupancy_now(client)
    assert after["total_in"] < before["total_in"]
    assert after["occupancy"] <= after["total_in"]


@pytest.mark.parametrize(
    ("config", "method", "message"),
    [
        (
            OccupancyConfig(role="secondary"),
            "adjustOccupancy",
            "Device is configured as occupancy secondary, adjust occupancy on primary device.",
        ),
        (
            OccupancyConfig(estimation=False),
            "adjustOccupancy",
            "Occupancy estimation is off, turn it on to use this feature.",
        ),
        (
            PassthroughConfig(events=False),
            "restartPassthroughCountdown",
            "Allow passthrough threshold events is turned off.",
        ),
    ],
)
async def test_1200_rejections(
    client_for: ClientFactory, config: Any, method: str, message: str
) -> None:
    key = "occupancy" if isinstance(config, OccupancyConfig) else "passthrough"
    fleet = make_fleet(Scenario(devices=[DeviceConfig(**{key: config})]))
    client = await client_for(fleet, "operator")
    before = await occupancy_now(client)
    body = await rpc(
        client, {"apiVersion": "1", "context": "34b2", "method": method, "params": {"occupancy": 0}}
    )
    assert body == {
        "apiVersion": "1.0",
        "context": "34b2",
        "error": {"code": 1200, "message": message},
        "method": method,
    }
    assert await occupancy_now(client) == before
    assert fleet.store.actions("entrance", "adjust", 0, T0 + 1) == []


async def test_restart_passthrough(operator: Client, fleet: Any) -> None:
    body = await rpc(
        operator, {"apiVersion": "1", "context": "d661", "method": "restartPassthroughCountdown"}
    )
    assert body == {
        "apiVersion": "1.0",
        "context": "d661",
        "data": {},
        "method": "restartPassthroughCountdown",
    }
    assert len(fleet.store.actions("entrance", "passthrough-restart", 0, T0 + 1)) == 1


async def test_context_is_optional(operator: Client) -> None:
    body = await rpc(operator, {"apiVersion": "1", "method": "restartPassthroughCountdown"})
    assert body == {"apiVersion": "1.0", "data": {}, "method": "restartPassthroughCountdown"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", 2101),
        (b"\xff\xfe", 2101),
        ("[1, 2]", 2101),
        ("", 2101),
        ({"method": "adjustOccupancy", "params": {"occupancy": 1}}, 2103),
        ({"apiVersion": "2", "method": "adjustOccupancy", "params": {"occupancy": 1}}, 2100),
        ({"apiVersion": "1.1", "method": "adjustOccupancy", "params": {"occupancy": 1}}, 2100),
        ({"apiVersion": 1, "method": "adjustOccupancy", "params": {"occupancy": 1}}, 2104),
        ({"apiVersion": "one", "method": "adjustOccupancy"}, 2104),
        ({"apiVersion": "1"}, 2103),
        ({"apiVersion": "1", "method": "getOccupancy"}, 2102),
        ({"apiVersion": "1", "method": 5}, 2102),
        ({"apiVersion": "1", "method": "adjustOccupancy"}, 2103),
        ({"apiVersion": "1", "method": "adjustOccupancy", "params": {}}, 2103),
        ({"apiVersion": "1", "method": "adjustOccupancy", "params": [1]}, 2103),
        ({"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": -1}}, 2104),
        ({"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 2.5}}, 2104),
        ({"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": "3"}}, 2104),
        ({"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": True}}, 2104),
        ({"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 10**12}}, 2104),
        (
            {
                "apiVersion": "1",
                "method": "adjustOccupancy",
                "context": 5,
                "params": {"occupancy": 1},
            },
            2104,
        ),
    ],
)
async def test_general_error_codes(operator: Client, fleet: Any, body: Any, code: int) -> None:
    reply = await rpc(operator, body)
    assert reply["apiVersion"] == "1.0"
    assert reply["error"] == {"code": code, "message": ERROR_CODES[code]}  # the page's text
    assert fleet.store.actions("entrance", "adjust", 0, T0 + 1) == []


async def test_error_details_go_to_the_log_not_the_answer(
    operator: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="simulator.api")
    body = {"apiVersion": "2", "method": "adjustOccupancy", "params": {"occupancy": 1}}
    assert (await rpc(operator, body))["error"] == {
        "code": 2100,
        "message": "API version not supported",
    }
    body = {"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 10**7}}
    assert (await rpc(operator, body))["error"]["message"] == "Invalid parameter value specified"
    logged = [r.getMessage() for r in caplog.records if r.name == "simulator.api"]
    assert any("2100" in m and "2" in m.split(":")[-1] for m in logged)
    assert any("0..1000000" in m for m in logged)


async def test_error_echoes_context_and_method(operator: Client) -> None:
    reply = await rpc(operator, {"apiVersion": "1", "context": "abc", "method": "nope"})
    assert reply["context"] == "abc" and reply["method"] == "nope"
    assert list(reply) == ["apiVersion", "context", "error", "method"]


async def test_unexpected_failure_is_1100(operator: Client, fleet: Any, monkeypatch: Any) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fleet.fleet.devices[0], "adjust_occupancy", boom)
    reply = await rpc(
        operator,
        {
            "apiVersion": "1",
            "context": "x",
            "method": "adjustOccupancy",
            "params": {"occupancy": 1},
        },
    )
    assert reply == {
        "apiVersion": "1.0",
        "context": "x",
        "error": {"code": 1100, "message": "Internal error"},
        "method": "adjustOccupancy",
    }


async def test_viewer_may_not_control(viewer: Client, fleet: Any) -> None:
    r = await viewer.post(
        CGI, json={"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 0}}
    )
    assert r.status == 401
    assert fleet.store.actions("entrance", "adjust", 0, T0 + 1) == []


async def test_administrator_may_control(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), "root")
    reply = await rpc(client, {"apiVersion": "1", "method": "restartPassthroughCountdown"})
    assert reply["data"] == {}


async def test_estimation_off_reports_zero(client_for: ClientFactory) -> None:
    fleet = make_fleet(
        Scenario(devices=[DeviceConfig(occupancy=OccupancyConfig(estimation=False))])
    )
    client = await client_for(fleet)
    body = await occupancy_now(client)
    assert body["occupancy"] == 0 and body["total_in"] > 0
