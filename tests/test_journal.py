"""The request journal: what is recorded, filters, the client's verification, memory bounds."""

from __future__ import annotations

import asyncio
import base64
import random
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator.api.app import create_app
from simulator.journal import HEADER_COUNT, TARGET_LIMIT, Journal
from simulator.schema.load import parse_scenario
from simulator.testing import Simulator, ThreadedSimulator
from tests.conftest import T0, make_fleet

TOKEN = {"Authorization": "Bearer p8815-sim"}
TWO = "devices:\n  - {id: a, serial: ACCC8E000001}\n  - {id: b, serial: ACCC8E000002}"
OP = {"apiVersion": "1.0", "method": "getOccupancy", "params": {"x": 1}}


async def _journal(url: str, query: str = "") -> Any:
    async with (
        aiohttp.ClientSession(headers=TOKEN) as s,
        s.get(f"{url}/sim/v1/journal{query}") as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json()


async def test_entry_fields_headers_reduced_and_json_rpc(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    mw = (aiohttp.DigestAuthMiddleware("root", "pass"),)
    dev = await aiohttp_client(create_app(fleet), middlewares=mw)
    r = await dev.post("/axis-cgi/a3dpc.cgi?v=2", json=OP, cookies={"session": "s3cr3t"})
    assert r.status == 200
    async with aiohttp.ClientSession() as plain:  # Basic credentials, never accepted
        basic = base64.b64encode(b"root:hunter2").decode()
        hdr = {"Authorization": f"Basic {basic}"}
        await plain.get(dev.make_url("/a3dpc/api/occupancy"), headers=hdr)
        r = await plain.get(dev.make_url("/sim/v1/journal?device=entrance"), headers=TOKEN)
        text = await r.text()
    assert "hunter2" not in text and basic not in text and "s3cr3t" not in text
    unauth, ok, basic_try = (await r.json())["entries"]
    assert (unauth["status"], unauth["auth"]) == (401, "missing")
    assert unauth["rpc_method"] == "getOccupancy"
    assert unauth["body"] is not None and "getOccupancy" in unauth["body"]  # even a 401's body
    assert ok["status"] == 200 and ok["user"] == "root"
    assert ok["method"] == "POST" and ok["path"] == "/axis-cgi/a3dpc.cgi" and ok["query"] == "v=2"
    assert ok["headers"]["Authorization"] == 'Digest username="root"'
    assert ok["headers"]["Cookie"] == "session=***"
    assert ok["rpc_method"] == "getOccupancy" and ok["rpc_params"] == {"x": 1}
    assert ok["body_size"] == len(ok["body"]) and ok["body_truncated"] is False
    assert ok["sim_time"] == "2024-06-07T13:30:20Z" and ok["duration_ms"] >= 0
    assert ok["id"] > unauth["id"]
    assert basic_try["headers"]["Authorization"] == 'Basic username="root"'
    assert basic_try["status"] == 401 and basic_try["body"] is None


async def test_unknown_paths_are_recorded_and_long_bodies_cut(aiohttp_client: Any) -> None:
    fleet = make_fleet()
    mw = (aiohttp.DigestAuthMiddleware("root", "pass"),)
    dev = await aiohttp_client(create_app(fleet), middlewares=mw)
    assert (await dev.get("/nowhere")).status == 404
    op = {"method": "adjustOccupancy", "apiVersion": "1.0", "params": {"pad": "x" * 10000}}
    await dev.post("/axis-cgi/a3dpc.cgi", json=op)
    entries = fleet.journal.entries("entrance")
    first = entries[0]
    assert (first["path"], first["status"], first["auth"]) == ("/nowhere", 404, "none")
    long = entries[-1]
    assert long["body_truncated"] is True and long["body_size"] > 10000
    assert len(long["body"]) == 4096 and long["rpc_method"] == "adjustOccupancy"


async def test_filters_across_devices() -> None:
    async with Simulator(parse_scenario(TWO), start=T0, speed=0) as sim:
        a, b = sim.devices["a"].url, sim.devices["b"].url
        before = datetime.now(UTC).timestamp()
        async with aiohttp.ClientSession() as s:
            sends = ((a, "/a3dpc/api/occupancy", None), (b, "/axis-cgi/a3dpc.cgi", OP))
            for url, path, body in sends:
                auth = aiohttp.DigestAuthMiddleware("root", "pass")  # one per device
                async with aiohttp.ClientSession(middlewares=(auth,)) as d:
                    method = "GET" if body is None else "POST"
                    await (await d.request(method, url + path, json=body)).read()
            await (await s.get(b + "/a3dpc/api/export/json?start=20240607")).read()
        await sim.acontrol.advance("1h")
        async with aiohttp.ClientSession() as s:
            await (await s.get(a + "/a3dpc/api/occupancy")).read()

        def ids(body: Any) -> list[tuple[str, str, int]]:
            return [(e["device"], e["path"], e["status"]) for e in body["entries"]]

        everything = await _journal(a)
        assert len(everything["entries"]) == 6 and everything["bytes"] > 0
        order = [e["id"] for e in everything["entries"]]
        assert order == sorted(order)
        assert ids(await _journal(a, "?device=b&status=200")) == [("b", "/axis-cgi/a3dpc.cgi", 200)]
        assert len((await _journal(a, "?status=4xx"))["entries"]) == 4
        assert len((await _journal(b, "?path=/a3dpc/api/*"))["entries"]) == 4
        export = "/a3dpc/api/export/json"
        assert ids(await _journal(b, f"?path={export}")) == [("b", export, 401)]
        assert ids(await _journal(a, "?method=post&rpc_method=getOccupancy&status=200")) == [
            ("b", "/axis-cgi/a3dpc.cgi", 200)
        ]
        sim_later = "?clock=sim&since=2024-06-07T14:00:00Z"
        assert ids(await _journal(a, sim_later)) == [("a", "/a3dpc/api/occupancy", 401)]
        assert len((await _journal(a, f"?since={before}"))["entries"]) == 6
        assert (await _journal(a, f"?until={before}"))["entries"] == []
        last = await _journal(a, "?limit=2&device=a")
        assert [e["status"] for e in last["entries"]] == [200, 401]
        async with (
            aiohttp.ClientSession(headers=TOKEN) as s,
            s.get(b + "/sim/v1/journal/b?status=401") as r,
        ):
            body = await r.json()
        assert body["device"] == "b" and {e["device"] for e in body["entries"]} == {"b"}
        assert len(body["entries"]) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=%C2%B2", "limit"),  # a Unicode superscript two: a digit to str.isdigit
        ("limit=%D9%A3", "limit"),  # an Arabic-Indic three: int() would take it
        ("limit=-1", "limit"),
        ("limit=x", "limit"),
        ("status=abc", "status"),
        ("status=6xx", "status"),
        ("status=%C2%B2", "status"),
        ("since=tomorrow", "since"),
        ("since=nan", "since"),
        ("until=inf", "until"),
        ("method=G3T", "method"),
        ("path=a3dpc", "path"),
        ("clock=moon", "clock"),
        ("device=nope", "device"),
        ("stauts=200", "stauts"),
    ],
)
async def test_bad_filters_are_400_naming_the_parameter(
    aiohttp_client: Any, query: str, field: str
) -> None:
    client = await aiohttp_client(create_app(make_fleet()))
    for path in ("/sim/v1/journal", "/sim/v1/journal/entrance"):
        r = await client.get(f"{path}?{query}", headers=TOKEN)
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["field"] == field


def test_calls_and_assert_called_with_the_blocking_client() -> None:
    with ThreadedSimulator(None, start=T0, speed=0) as sim:
        ctl, url = sim.control, sim.url
        requests.get(url + "/a3dpc/api/occupancy", auth=HTTPDigestAuth("root", "pass"), timeout=10)
        wrong = HTTPDigestAuth("root", "wrong")
        requests.post(url + "/axis-cgi/a3dpc.cgi", json=OP, auth=wrong, timeout=10)
        assert [c["status"] for c in ctl.calls(path="/a3dpc/api/occupancy")] == [401, 200]
        assert len(ctl.calls(status="4xx")) == 3
        assert ctl.calls(device="entrance", method="GET", status=200)[0]["user"] == "root"
        ok = ctl.assert_called(path="/a3dpc/api/occupancy", status=200, times=1)
        assert ok[0]["headers"]["Authorization"] == 'Digest username="root"'
        ctl.assert_called(rpc_method="getOccupancy", since=datetime.fromtimestamp(0, UTC))
        with pytest.raises(AssertionError) as exc:
            ctl.assert_called(method="POST", rpc_method="getOccupancy", status=200)
        message = str(exc.value)
        assert "0 of the 4 recorded match" in message
        assert "status is 401, not 200" in message and "POST /axis-cgi/a3dpc.cgi" in message
        with pytest.raises(AssertionError, match=r"exactly 1 request.*2 of the 4"):
            ctl.assert_called(path="/a3dpc/api/*", times=1)
        with pytest.raises(ValueError, match="not a status"):
            ctl.assert_called(status="teapot")
        ctl.clear_journal()
        assert ctl.calls() == []
        with pytest.raises(AssertionError, match="the journal is empty"):
            ctl.assert_called()


async def test_assert_called_with_the_async_client() -> None:
    async with Simulator(parse_scenario(TWO), start=T0, speed=0) as sim:
        async with aiohttp.ClientSession() as s:
            await (await s.get(sim.devices["b"].url + "/stereo/fps.json")).read()
        calls = await sim.acontrol.calls(device="b")
        assert [c["path"] for c in calls] == ["/stereo/fps.json"]
        with pytest.raises(AssertionError, match=r"device is 'b', not 'a'"):
            await sim.acontrol.assert_called(device="a", path="/stereo/fps.json")
        await sim.acontrol.clear_journal("b")
        assert await sim.acontrol.calls() == []


async def test_budget_bounds_the_journal_and_entries_are_cut(aiohttp_client: Any) -> None:
    sc = parse_scenario("control: {journal_size: 100000, journal_bytes: 131072}")
    fleet = make_fleet(sc)
    client = await aiohttp_client(create_app(fleet))
    many = {f"X-Pad-{i}": "y" * 100 for i in range(40)}
    for i in range(300):  # unauthenticated, 8 KB queries: every one a 401
        target = f"/a3dpc/api/occupancy?n={i}&q={'z' * 8000}"
        r = await client.get(target, headers=many if i % 2 else None)
        assert r.status == 401
    journal = fleet.journal
    assert 0 < journal.bytes <= journal.budget == 131072
    body = await (await client.get("/sim/v1/journal", headers=TOKEN)).json()
    entries = body["entries"]
    assert body["bytes"] == journal.bytes and body["budget_bytes"] == 131072
    assert 10 < len(entries) < 300
    assert entries[-1]["query"].startswith("n=299&")  # the oldest went first
    numbers = [int(e["query"].split("&")[0][2:]) for e in entries]
    assert numbers == list(range(300 - len(entries), 300))
    for e in entries:
        assert e["path_truncated"] is True and len(e["path"]) + len(e["query"]) + 1 == TARGET_LIMIT
    cut = [e for e in entries if e["headers_truncated"]]
    assert cut and all(len(e["headers"]) <= HEADER_COUNT for e in cut)
    await client.delete("/sim/v1/journal", headers=TOKEN)
    assert journal.bytes == 0 and journal.entries() == []


def _headers(n: int) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((f"X-H{i}".encode(), f"v{n}-{i}".encode() * 3) for i in range(6))


def test_accounting_matches_what_is_held_through_bounds_and_clears() -> None:
    rng = random.Random(7)
    journal = Journal(size=20, budget=200_000)
    devices = [f"d{i}" for i in range(5)]
    seqs: list[int] = []
    for n in range(5000):
        device = rng.choice(devices)
        if rng.random() < 0.005:
            journal.clear(device)
        else:
            target = "/p?" + "q" * rng.randrange(0, 5000)
            body = None if rng.random() < 0.5 else b"{}" * rng.randrange(0, 3000)
            journal.record(
                device, 0.0, 0.0, "GET", target, _headers(n), body, 0, 200, "ok", None, 0.0
            )
        held = [e for log in journal.logs.values() for e in log]
        assert journal.bytes == sum(e[-1] for e in held) <= journal.budget
        assert all(len(log) <= 20 for log in journal.logs.values())
        seqs = sorted(e[0] for e in held)
    assert len(journal._order) <= 2 * len(seqs) + 1024  # forgotten places are compacted away
    journal.clear()
    assert journal.bytes == 0 and journal.count() == 0 and not journal._order


def test_accounted_bytes_cover_the_memory_held() -> None:
    journal = Journal(size=100_000, budget=2**40)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(3000):
            target = f"/a3dpc/api/occupancy?n={n}&pad={'p' * (n % 300)}"
            body = None if n % 3 else f'{{"method": "m{n}"}}'.encode()
            t = float(n)
            journal.record(
                "door", t, t, "POST", target, _headers(n), body, 0, 401, "missing", None, 0.1
            )
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= journal.bytes, (held, journal.bytes)
    assert journal.bytes < 2 * held  # and not wildly over


async def test_recording_never_fails_a_request_whose_body_is_not_read() -> None:
    async with Simulator(None, start=T0, speed=0) as sim:
        loop = asyncio.get_running_loop()

        def send() -> int:
            big = b"{" + b" " * (2 * 2**20)  # more than aiohttp reads into memory
            return requests.post(sim.url + "/axis-cgi/a3dpc.cgi", data=big, timeout=30).status_code

        assert await loop.run_in_executor(None, send) == 401
        (entry,) = await sim.acontrol.calls()
        assert entry["status"] == 401 and entry["body_size"] == 2 * 2**20 + 1
        assert entry["body_truncated"] is True and len(entry["body"]) <= 4096
