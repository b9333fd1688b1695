"""GET /sim/v1/metrics: Prometheus text after known traffic, per-application registries."""

from __future__ import annotations

from typing import Any

import aiohttp
import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from simulator.api.metrics import PER_DEVICE_LIMIT, Metrics
from simulator.clock import SimClock
from simulator.runtime.events import EVENT
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, FleetTemplate, PushConfig, Scenario
from simulator.testing import Simulator
from tests.conftest import T0
from tests.receivers import Receiver
from tests.test_auth_http import header_for

OCC = "/a3dpc/api/occupancy"
EXPORT = "/a3dpc/api/export/csv?start=today&end=now&resolution=hour"
TOKEN = {"Authorization": "Bearer p8815-sim"}
FAST = {"interval_minutes": 1, "backoff_initial_s": 0.01, "backoff_max_s": 0.04}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(got: Samples, name: str, **labels: str) -> float:
    """One sample's value (KeyError when it is absent)."""
    return got[(name, frozenset(labels.items()))]


def named(got: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of one name, by labels."""
    return {labels: v for (n, labels), v in got.items() if n == name}


async def scrape(session: aiohttp.ClientSession, url: str) -> Samples:
    """Scrape the metrics with the control token; check the content type."""
    async with session.get(f"{url}/sim/v1/metrics", headers=TOKEN) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return samples(await r.text())


async def get(
    session: aiohttp.ClientSession, url: str, user: str, password: str, path: str = OCC
) -> tuple[int, str]:
    """GET a device path with a Digest header for a fresh challenge (two requests)."""
    async with session.get(url + path) as r:
        chal = r.headers["WWW-Authenticate"]
    auth = header_for(chal, "GET", url + path, user, password)
    async with session.get(url + path, headers={"Authorization": auth}) as r:
        return r.status, await r.text()


async def test_scrape_after_known_traffic(receiver: Receiver, ca_file: str) -> None:
    push = PushConfig(url=receiver.url, ca_file=ca_file, **FAST)
    scenario = Scenario(devices=[DeviceConfig(id="entrance", push=push)])
    receiver.statuses = [503]  # the first attempt fails, the retry is delivered
    conn = aiohttp.TCPConnector(limit=1)
    async with (
        Simulator(scenario, start=T0, speed=0) as sim,
        aiohttp.ClientSession(connector=conn) as s,
    ):
        url = sim.url
        good = [(await get(s, url, "viewer", "viewer"))[0] for _ in range(3)]
        bad = [(await get(s, url, "viewer", "wrong"))[0] for _ in range(2)]
        bad.append((await get(s, url, "nobody", "x"))[0])
        assert (good, bad) == ([200] * 3, [401] * 3)
        status, export = await get(s, url, "viewer", "viewer", EXPORT)
        assert status == 200
        async with s.post(f"{url}/sim/v1/clock/advance", json={"by": 85}, headers=TOKEN) as r:
            assert r.status == 200  # 13:31:45: the 13:31 interval sent (5–45 s late)
        await sim.runtime.pusher.wait_idle()
        got = await scrape(s, url)

    requests = named(got, "p8815_sim_http_requests_total")  # 7 challenges, 3 refused
    model = "P8815-2"
    assert requests == {
        frozenset({("api", "a3dpc"), ("status", "401"), ("model", model)}): 7 + 3,
        frozenset({("api", "a3dpc"), ("status", "200"), ("model", model)}): 3 + 1,
        frozenset({("api", "control"), ("status", "200"), ("model", "none")}): 1,
    }
    assert value(got, "p8815_sim_http_request_duration_seconds_count", api="a3dpc") == 14
    inf = value(got, "p8815_sim_http_request_duration_seconds_bucket", api="a3dpc", le="+Inf")
    assert inf == 14
    assert named(got, "p8815_sim_digest_failures_total") == {
        frozenset({("reason", "missing")}): 7,  # every first request of the seven
        frozenset({("reason", "bad-response")}): 2,
        frozenset({("reason", "unknown-user")}): 1,
    }
    rows = len(export.splitlines()) - 1  # the CSV's header line, then one line per bin
    assert rows == 16  # 00:00 to 15:00 local, the bin holding 15:30:20 last
    assert named(got, "p8815_sim_export_rows_total") == {
        frozenset({("api", "a3dpc"), ("format", "csv"), ("resolution", "hour")}): rows
    }
    assert value(got, "p8815_sim_push_deliveries_total", device="entrance") == 1
    assert value(got, "p8815_sim_push_failures_total", device="entrance") == 1
    assert value(got, "p8815_sim_push_backlog", device="entrance") == 0
    late = named(got, "p8815_sim_push_lateness_seconds_count")
    assert late == {frozenset({("device", "entrance")}): 1}
    assert value(got, "p8815_sim_push_lateness_seconds_sum", device="entrance") > 0  # a retry
    assert value(got, "p8815_sim_scheduler_lag_seconds") == 0
    assert value(got, "p8815_sim_open_connections") == 1  # the scrape's own
    assert value(got, "p8815_sim_devices") == 1
    assert value(got, "p8815_sim_process_resident_memory_bytes") > 1e6


async def test_the_control_token_is_asked() -> None:
    async with Simulator(None, start=T0, speed=0) as sim, aiohttp.ClientSession() as s:
        async with s.get(f"{sim.url}/sim/v1/metrics") as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        async with s.get(f"{sim.url}/sim/v1/metrics", headers={"Authorization": "Bearer no"}) as r:
            assert r.status == 401
        got = await scrape(s, sim.url)
    refused = frozenset({("api", "control"), ("status", "401"), ("model", "none")})
    assert named(got, "p8815_sim_http_requests_total") == {refused: 2}


async def test_each_simulator_has_its_own_registry() -> None:
    async with (
        Simulator(None, start=T0, speed=0) as a,
        Simulator(None, start=T0, speed=0) as b,
        aiohttp.ClientSession() as s,
    ):
        for _ in range(3):
            async with s.get(a.url + OCC) as r:
                assert r.status == 401
        got_a, got_b = await scrape(s, a.url), await scrape(s, b.url)
    key = frozenset({("api", "a3dpc"), ("status", "401"), ("model", "P8815-2")})
    assert named(got_a, "p8815_sim_http_requests_total") == {key: 3}
    assert named(got_b, "p8815_sim_http_requests_total") == {}
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "p8815_sim" not in default


def pushing_fleet(n: int, url: str) -> Scenario:
    """``n`` devices pushing every minute to ``url`` (plain HTTP)."""
    push = PushConfig(url=url, allow_http=True, **FAST)
    template = FleetTemplate(count=n, template=DeviceConfig(push=push))
    return Scenario(fleet=template)


async def push_scrape(n: int) -> Samples:
    """Serve ``n`` pushing devices (one served), deliver one interval each, scrape."""
    plain = Receiver(None)
    await plain.start()
    try:
        scenario = pushing_fleet(n, plain.url)
        sim = Simulator(scenario, start=T0, speed=0, devices=["door-0000"])
        async with sim, aiohttp.ClientSession() as s:
            body: dict[str, Any] = {"by": 85}  # past 13:31:00 and its send delay
            async with s.post(f"{sim.url}/sim/v1/clock/advance", json=body, headers=TOKEN) as r:
                assert r.status == 200
            await sim.runtime.pusher.wait_idle(timeout=30)
            return await scrape(s, sim.url)
    finally:
        await plain.stop()


async def test_push_metrics_per_device_up_to_the_limit() -> None:
    got = await push_scrape(PER_DEVICE_LIMIT)
    delivered = named(got, "p8815_sim_push_deliveries_total")
    assert len(delivered) == PER_DEVICE_LIMIT
    assert delivered[frozenset({("device", "door-0042")})] == 1
    assert sum(named(got, "p8815_sim_push_lateness_seconds_count").values()) == PER_DEVICE_LIMIT


async def test_push_metrics_fleet_wide_beyond_the_limit() -> None:
    n = PER_DEVICE_LIMIT + 1
    got = await push_scrape(n)
    assert named(got, "p8815_sim_push_deliveries_total") == {frozenset(): n}
    assert named(got, "p8815_sim_push_failures_total") == {frozenset(): 0}
    assert named(got, "p8815_sim_push_backlog") == {frozenset(): 0}
    assert named(got, "p8815_sim_push_lateness_seconds_count") == {frozenset(): n}


def test_scheduler_lag_behind_the_clock() -> None:
    rt = Runtime(Scenario(), SimClock(start=T0, speed=0))
    metrics = Metrics(rt)
    rt.events.add(EVENT.validate_python({"kind": "door_closed", "after": "10s"}))
    rt.clock.set(T0 + 100)  # the clock jumps; nothing ran what fell due on the way
    got = samples(prometheus_client.generate_latest(metrics.registry).decode())
    assert value(got, "p8815_sim_scheduler_lag_seconds") == 90
    assert 0 <= value(got, "p8815_sim_scheduler_lag_wall_seconds") < 60
    rt.scheduler.run_due()
    got = samples(prometheus_client.generate_latest(metrics.registry).decode())
    assert value(got, "p8815_sim_scheduler_lag_seconds") == 0
