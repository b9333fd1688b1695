"""The push under stress: a database locked by another process, huge or dripping answers,
and a receiver that stays down while the bounded outbox keeps dropping its head."""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient
from requests.auth import HTTPDigestAuth

from simulator.clock import SimClock
from simulator.runtime.push.sender import READ_LIMIT, post
from simulator.schema.scenario import PushConfig
from simulator.store import Store
from tests.conftest import ClientFactory
from tests.receivers import Receiver
from tests.test_control import TOKEN
from tests.test_push_delivery import BOUNDARY, make_fleet, minutes, until, utc

# Holds the write lock of the database given as argv[1] for argv[2] seconds.
LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


async def control(
    client: TestClient[Any, Any], method: str, path: str, status: int = 200, **kw: Any
) -> Any:
    """A control-plane request (bearer token, no Digest) to the client's server; its JSON."""
    async with (
        aiohttp.ClientSession(headers=TOKEN) as session,
        session.request(method, client.make_url(path), **kw) as r,
    ):
        assert r.status == status
        return await r.json()


def read_for(url: str, seconds: float) -> list[float]:
    """GET ``url`` (Digest, viewer) from another thread for ``seconds``: each answer's time."""
    times: list[float] = []
    end = time.monotonic() + seconds
    with requests.Session() as session:
        session.auth = HTTPDigestAuth("viewer", "viewer")
        while time.monotonic() < end:
            t = time.perf_counter()
            r = session.get(url, timeout=10)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200
            time.sleep(0.05)
    return times


class LoopLag:
    """The longest time the event loop was kept from running a 10 ms timer."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.perf_counter() - t - 0.01)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


# ---- a database locked by another process ----------------------------------------------------
async def test_a_locked_database_loses_no_push_and_blocks_no_reading(
    receiver: Receiver,
    ca_file: str,
    tmp_path: Path,
    client_for: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="simulator.runtime.push")
    db = tmp_path / "sim.db"
    clock = SimClock(start=BOUNDARY + 1, speed=60)  # a 1-minute push every wall second
    fleet = make_fleet(receiver.url, clock, Store(db), ca_file=ca_file)
    client = await client_for(fleet, "viewer")  # serves the device and runs its push
    await until(lambda: len(receiver.requests) >= 1)
    lag = LoopLag()
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, str(db), "6", stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"locked\n"
    locked_at = clock.now()
    readings = asyncio.create_task(
        asyncio.to_thread(read_for, str(client.make_url("/a3dpc/api/occupancy")), 5.5)
    )
    errors_seen = set()
    while holder.returncode is None:
        state = await control(client, "GET", "/sim/v1/push/entrance")
        errors_seen.add(state["store"]["error"])
        await asyncio.sleep(0.2)
    unlocked_at = clock.now()
    times = await readings
    slowest = max(times)
    await lag.stop()
    await until(lambda: receiver.requests[-1].doc["data"]["utcTo"] > utc(unlocked_at))
    n = len(receiver.requests)
    assert receiver.froms() == minutes(BOUNDARY, n)  # every interval once, in order
    lock_span = (utc(locked_at), utc(unlocked_at))
    during = [f for f in receiver.froms() if lock_span[0] <= f < lock_span[1]]
    assert len(during) >= 5  # six simulated minutes of lock: none of them lost
    assert len(times) >= 10 and slowest < 1.0  # readings answer while the database is locked
    assert lag.worst < 1.0  # (the default 5 s busy timeout froze the loop for 5 s)
    health = fleet.pusher.store_health
    assert health.total_failures >= 2 and health.error is None  # the lock was met, then left
    assert any(e is not None and "locked" in e for e in errors_seen)  # shown while it lasted
    failed = [r for r in caplog.records if getattr(r, "push", {}).get("event") == "store_failed"]
    assert len(failed) == 1  # logged once per failure streak, not once per retry
    print(
        f"\nlock 6 s: {len(during)} intervals produced during the lock, delivered once; "
        f"{len(times)} readings, slowest {slowest * 1000:.1f} ms; "
        f"worst loop lag {lag.worst * 1000:.1f} ms; "
        f"{health.total_failures} failed commits"
    )


async def test_writes_on_a_request_path_fail_promptly_while_locked(
    tmp_path: Path, client_for: ClientFactory
) -> None:
    db = tmp_path / "sim.db"
    clock = SimClock(start=BOUNDARY + 1, speed=0)
    fleet = make_fleet("https://127.0.0.1:9/p", clock, Store(db))
    device = await client_for(fleet, "operator")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, str(db), "30", stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    try:
        assert await holder.stdout.readline() == b"locked\n"
        t = time.perf_counter()
        body = {"apiVersion": "1.0", "method": "adjustOccupancy", "params": {"occupancy": 5}}
        r = await device.post("/axis-cgi/a3dpc.cgi", json=body)
        assert r.status == 200
        assert (await r.json())["error"] == {"code": 1100, "message": "Internal error"}
        event = {"kind": "burst", "visitors": 5}
        answer = await control(device, "POST", "/sim/v1/events", json=event, status=503)
        assert "locked" in answer["error"]["message"]
        assert time.perf_counter() - t < 1.0  # not SQLite's default 5 s wait, twice
    finally:
        holder.kill()
        await holder.wait()
    r = await device.post("/axis-cgi/a3dpc.cgi", json=body)
    assert "error" not in await r.json()  # the lock is gone: the same write works


# ---- a receiver's answer: huge, endless, dripping -------------------------------------------
class Answers:
    """A receiver answering 200 with an endless fast body, or one dripping a byte at a time."""

    def __init__(self) -> None:
        self.sent = 0
        self.done = asyncio.Event()

    async def endless(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        chunk = b"x" * (1 << 20)
        try:
            while True:
                await resp.write(chunk)
                self.sent += len(chunk)
                await asyncio.sleep(0.001)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            return resp
        finally:
            self.done.set()

    async def drip(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        try:
            while True:
                await resp.write(b"x")
                await asyncio.sleep(0.05)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            return resp


@pytest.fixture
async def answers(server_ssl: ssl.SSLContext) -> AsyncIterator[tuple[Answers, int]]:
    a = Answers()
    app = web.Application()
    app.router.add_post("/endless", a.endless)
    app.router.add_post("/drip", a.drip)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
    await site.start()
    port = runner.addresses[0][1]
    yield a, port
    await runner.cleanup()


async def test_an_endless_answer_is_read_only_up_to_a_bound(
    answers: tuple[Answers, int], ca_file: str
) -> None:
    a, port = answers
    cfg = PushConfig(url=f"https://127.0.0.1:{port}/endless", ca_file=ca_file, timeout_s=2.0)
    async with aiohttp.ClientSession() as session:
        result = await post(session, cfg, "{}")
        await asyncio.wait_for(a.done.wait(), 5)
    assert (result.status, result.error) == (200, None)
    assert result.received == READ_LIMIT
    assert result.latency_s < cfg.timeout_s
    assert a.sent < 64 << 20  # the receiver could write no more than socket buffers hold


async def test_a_dripping_answer_ends_at_the_timeout(
    answers: tuple[Answers, int], ca_file: str
) -> None:
    _, port = answers
    cfg = PushConfig(url=f"https://127.0.0.1:{port}/drip", ca_file=ca_file, timeout_s=0.5)
    async with aiohttp.ClientSession() as session:
        t = time.perf_counter()
        result = await post(session, cfg, "{}")
        took = time.perf_counter() - t
    assert (result.status, result.error) == (None, "timeout after 0.5s")
    assert took < cfg.timeout_s + 1.0
    assert result.latency_s >= cfg.timeout_s


# ---- backoff while the outbox drops its head ------------------------------------------------
async def test_backoff_grows_while_the_full_outbox_drops_the_head(
    receiver: Receiver, ca_file: str
) -> None:
    await receiver.stop()  # connection refused from now on
    clock = SimClock(start=BOUNDARY + 1, speed=0)
    fleet = make_fleet(
        receiver.url,
        clock,
        ca_file=ca_file,
        outbox_limit=2,
        backoff_initial_s=0.02,
        backoff_max_s=0.16,
        backoff_jitter=0,
    )
    pusher = fleet.pusher
    await fleet.start()
    try:
        while pusher.stats("entrance").failed_attempts < 8:
            clock.advance(60)  # a new interval every 5 ms: the head is dropped under the retry
            await asyncio.sleep(0.005)
    finally:
        await fleet.stop()
    log = pusher.deliveries("entrance")
    assert len({d.entry for d in log}) >= 4  # the head changed between retries
    assert pusher.stats("entrance").dropped > 0
    gaps = [b.wall_time - a.wall_time for a, b in itertools.pairwise(log)]
    grown = [0.02 * 2**k for k in range(3)] + [0.16] * (len(gaps) - 3)
    assert all(g >= 0.95 * d for g, d in zip(gaps, grown, strict=True))  # never reset
