"""Fault injection: every kind, composition, path/device matching, probability, times."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from simulator.api.app import create_app
from simulator.api.faults import FAULTS, Faults
from simulator.runtime.runtime import Runtime
from simulator.schema.load import parse_scenario
from simulator.schema.timeline import FaultSpec
from tests.conftest import make_fleet

OCC = "/a3dpc/api/occupancy"


async def client(aiohttp_client: Any, fleet: Runtime) -> Any:
    mw = (aiohttp.DigestAuthMiddleware("viewer", "viewer"),)
    return await aiohttp_client(create_app(fleet), middlewares=mw)


def on(fleet: Runtime, **spec: Any) -> None:
    fleet.faults.add(FaultSpec.model_validate(spec))


async def test_error_status_and_journal(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    on(fleet, path="/a3dpc/*", status=503)
    c = await client(aiohttp_client, fleet)
    assert (await c.get(OCC)).status == 503
    assert (await c.get("/axis-cgi/basicdeviceinfo.cgi")).status != 503  # other paths
    assert fleet.journal.entries("entrance")[-2]["status"] == 503


async def test_latency_fixed_and_distributed(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    on(fleet, latency={"ms": 80})
    c = await client(aiohttp_client, fleet)
    await c.get(OCC)  # the challenge round trip
    t = time.perf_counter()
    assert (await c.get(OCC)).status == 200
    assert time.perf_counter() - t >= 0.08
    fleet.faults.remove()
    on(fleet, latency={"ms": 20, "dist": "uniform", "spread_ms": 10})
    rule = next(iter(c.app[FAULTS].rules.values()))
    from simulator.api.faults import Latency

    lat = rule.chain.faults[0]
    assert isinstance(lat, Latency)
    draws = [lat.seconds() for _ in range(200)]
    assert min(draws) >= 0.01 and max(draws) <= 0.03 and len(set(draws)) > 100


async def test_connection_reset(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    on(fleet, reset=True, times=1)
    c = await client(aiohttp_client, fleet)
    with pytest.raises(aiohttp.ClientError):
        await c.get(OCC)
    assert (await c.get(OCC)).status == 200  # fired once
    assert any(e["status"] == 0 for e in fleet.journal.entries("entrance"))


async def test_malformed_and_truncated_and_dribbled_bodies(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    c = await client(aiohttp_client, fleet)
    good = await (await c.get(OCC)).read()
    on(fleet, malformed=True, times=1)
    bad = await (await c.get(OCC)).read()
    assert bad != good
    with pytest.raises(ValueError):  # JSONDecodeError or UnicodeDecodeError
        json.loads(bad)
    on(fleet, truncate=0.5, times=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        await (await c.get(OCC)).read()
    fleet.faults.remove()
    on(fleet, dribble_bytes_per_s=4000, dribble_chunk=20)
    t = time.perf_counter()
    assert await (await c.get(OCC)).read() == good
    assert time.perf_counter() - t >= 0.9 * len(good) / 4000


async def test_body_faults_reach_streamed_exports(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    c = await client(aiohttp_client, fleet)
    path = "/a3dpc/api/export/csv?start=yesterday&end=today&resolution=hour"
    good = await (await c.get(path)).read()
    assert good.startswith(b"start,end,in,out\n") and good.count(b"\n") == 25
    on(fleet, path="/a3dpc/api/export/*", malformed=True, times=1)
    assert await (await c.get(path)).read() != good
    on(fleet, path="/a3dpc/api/export/*", truncate=0.5, times=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        await (await c.get(path)).read()
    assert await (await c.get(path)).read() == good  # both fired once: streamed again


async def test_composed_latency_then_status(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    on(fleet, latency={"ms": 50}, status=500)
    c = await client(aiohttp_client, fleet)
    t = time.perf_counter()
    assert (await c.get(OCC)).status == 500
    assert time.perf_counter() - t >= 0.05


def test_probability_is_seeded_and_device_matching() -> None:
    sc = parse_scenario(
        "devices:\n  - {id: a, serial: ACCC8E000001}\n  - {id: b, serial: ACCC8E000002}\n"
        "faults:\n  - {device: a, probability: 0.3, status: 503}\n"
    )

    def draws() -> list[bool]:
        fleet = make_fleet(sc)
        table = Faults(seed=fleet.seed)
        fleet.faults.attach(table)
        assert table.pick("b", OCC) is None
        return [table.pick("a", OCC) is not None for _ in range(400)]

    one, two = draws(), draws()
    assert one == two and 80 < sum(one) < 160


async def test_faults_through_the_control_plane(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    c = await aiohttp_client(create_app(fleet))
    tok = {"Authorization": "Bearer p8815-sim"}
    r = await c.post("/sim/v1/faults", json={"id": "slow", "latency": {"ms": 1}}, headers=tok)
    assert r.status == 201
    listed = (await (await c.get("/sim/v1/faults", headers=tok)).json())["faults"]
    assert [f["id"] for f in listed] == ["slow"]
    assert (await c.delete("/sim/v1/faults/slow", headers=tok)).status == 200
    assert (await c.delete("/sim/v1/faults/slow", headers=tok)).status == 404
    await c.post("/sim/v1/faults", json={"status": 502}, headers=tok)
    assert (await (await c.delete("/sim/v1/faults", headers=tok)).json())["removed"] == 1
    assert not c.app[FAULTS].active
