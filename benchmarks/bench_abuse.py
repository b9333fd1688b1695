"""Abuse benchmark, run by hand: ``python benchmarks/bench_abuse.py [--seconds 5]``.

One ``python -m simulator serve scenarios/mall.yaml`` process (four devices on free loopback
ports, clock frozen), pinned to one core, with its open-files limit lowered to
``--nofile``. A poller in its own process (the other core) asks ``GET /a3dpc/api/occupancy``
of the first device over and over, each time on a new connection with a Digest header of a
fresh ``nc``, and records its latencies during:

(a) a baseline, nothing else running;
(b) a flood of idle connections and of slow ones (a request header sent a byte a second)
    up to past the server's open-files limit;
(c) an adjustment storm: concurrent ``adjustOccupancy`` calls on another device;
(d) ten concurrent exports of a year of minutes as JSON from a third device.

It prints p50/p99 and failed polls (no answer within 10 s) per phase, with ratios against
the baseline of the same run. Then, with ``curl`` installed:

(e) the longest stall of the event loop while a year of minutes is exported as JSON: the
    application in this process, a task sleeping 1 ms in a loop records how late it wakes
    (the largest lateness is the longest time the loop was held), curl downloads.

Everything stays on 127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
import numpy as np
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
OCC = "/a3dpc/api/occupancy"
CGI = "/axis-cgi/a3dpc.cgi"
YEAR = "/a3dpc/api/export/json?start=20231202&end=20241202&resolution=minute"
POLL_TIMEOUT_S = 10.0


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive ports free on the loopback right now."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            first = int(s.getsockname()[1])
        if first + n > 65535:
            continue
        try:
            socks = [socket.create_server((HOST, first + i)) for i in range(n)]
        except OSError:
            continue
        for s in socks:
            s.close()
        return first


def pinned(core: int, argv: list[str]) -> list[str]:
    """``argv`` pinned to one CPU core (when taskset is there)."""
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


def lower_nofile(limit: int) -> Callable[[], None]:
    """A pre-exec hook that caps the child's open files (soft and hard) at ``limit``."""

    def hook() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return hook


class Signer:
    """Digest headers for one user, a fresh ``nc`` for each request (as requests makes them)."""

    def __init__(self, user: str, challenge: str) -> None:
        self.auth = HTTPDigestAuth(user, user)
        self.auth.init_per_thread_state()
        self.renew(challenge)

    def renew(self, challenge: str) -> None:
        """Take a new challenge (a 401, e.g. a stale nonce)."""
        self.auth._thread_local.chal = parse_dict_header(challenge.removeprefix("Digest "))

    def header(self, method: str, url: str) -> str:
        """The Authorization header of the next request."""
        value = self.auth.build_digest_header(method, url)
        assert value is not None
        return value


async def challenge(url: str) -> str:
    """The server's Digest challenge for ``url``."""
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.headers["WWW-Authenticate"]


# ---- the poller (its own process) -----------------------------------------------------------


async def poll(url: str, stop: Connection, out: Connection) -> tuple[list[float], int]:
    """Poll ``url`` on new connections until told to stop; latencies (s) and failures.

    Says "ready" on ``out`` once it has its first challenge.
    """
    signer = Signer("viewer", await challenge(url))
    out.send("ready")
    lat: list[float] = []
    failed = 0
    timeout = aiohttp.ClientTimeout(total=POLL_TIMEOUT_S)
    conn = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        while not stop.poll():
            t = time.perf_counter()
            try:
                async with s.get(url, headers={"Authorization": signer.header("GET", url)}) as r:
                    await r.read()
                    if r.status == 401:
                        signer.renew(r.headers["WWW-Authenticate"])
                        continue
                    ok = r.status == 200
            except (aiohttp.ClientError, TimeoutError, OSError):
                ok = False
            if ok:
                lat.append(time.perf_counter() - t)
            else:
                failed += 1
            await asyncio.sleep(0.005)
    return lat, failed


def poller(url: str, stop: Connection, out: Connection) -> None:
    """Process entry: poll until ``stop`` has a message, then send the results on ``out``."""
    out.send(asyncio.run(poll(url, stop, out)))


@dataclass
class Phase:
    """One phase's polls and what its load did."""

    name: str
    lat: list[float] = field(default_factory=list)
    failed: int = 0
    note: str = ""


async def measured(name: str, url: str, load: Callable[[], Awaitable[str]]) -> Phase:
    """Run ``load`` while the poller process polls; the phase's figures."""
    ctx = mp.get_context("spawn")
    stop_r, stop_w = ctx.Pipe(duplex=False)
    out_r, out_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=poller, args=(url, stop_r, out_w), daemon=True)
    proc.start()
    assert await asyncio.to_thread(out_r.recv) == "ready"
    try:
        note = await load()
    finally:
        stop_w.send(True)
    lat, failed = await asyncio.to_thread(out_r.recv)
    proc.join(timeout=POLL_TIMEOUT_S + 5)
    return Phase(name, lat, failed, note)


# ---- the loads ------------------------------------------------------------------------------


async def idle_and_slow(port: int, count: int, seconds: float) -> str:
    """Open ``count`` connections (half idle, half dribbling a header) and hold them."""
    writers: list[asyncio.StreamWriter] = []
    refused = 0

    async def connect() -> None:
        nonlocal refused
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), 2)
        except (TimeoutError, OSError):
            refused += 1
            return
        writers.append(w)

    for i in range(0, count, 64):
        await asyncio.gather(*(connect() for _ in range(min(64, count - i))))
    slow = writers[: len(writers) // 2]
    for w in slow:
        w.write(f"GET {OCC} HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode())
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        for w in slow:
            with contextlib.suppress(OSError):
                w.write(b"a")
        await asyncio.sleep(1)
    for w in writers:
        w.close()
    return f"{len(writers)} held, {refused} not connected"


async def storm(url: str, seconds: float, workers: int) -> str:
    """``workers`` concurrent operators calling adjustOccupancy for ``seconds``."""
    calls = 0
    stop = time.monotonic() + seconds
    auth = aiohttp.DigestAuthMiddleware("operator", "operator")
    async with aiohttp.ClientSession(middlewares=(auth,)) as s:

        async def worker(n: int) -> None:
            nonlocal calls
            while time.monotonic() < stop:
                body = {"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": n}}
                async with s.post(url, json=body) as r:
                    await r.read()
                    assert r.status == 200, r.status
                calls += 1

        await asyncio.gather(*(worker(n) for n in range(workers)))
    return f"{calls} calls ({calls / seconds:.0f}/s)"


async def exports(url: str, count: int, limit_s: float) -> str:
    """``count`` concurrent downloads of a year of minutes; how long they took."""
    auth = aiohttp.DigestAuthMiddleware("viewer", "viewer")
    timeout = aiohttp.ClientTimeout(total=limit_s)
    t = time.perf_counter()
    sizes: list[int] = []
    async with aiohttp.ClientSession(middlewares=(auth,), timeout=timeout) as s:

        async def one() -> None:
            size = 0
            async with s.get(url) as r:
                assert r.status == 200, r.status
                async for piece in r.content.iter_chunked(1 << 16):
                    size += len(piece)
            sizes.append(size)

        await asyncio.gather(*(one() for _ in range(count)))
    took = time.perf_counter() - t
    return f"{count} x {sizes[0] / 1e6:.0f} MB in {took:.1f} s"


# ---- main -----------------------------------------------------------------------------------


async def wait_up(url: str) -> None:
    """Until the server answers (a 401 challenge)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            await challenge(url)
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"the simulator at {url} did not start")


def table(phases: list[Phase]) -> None:
    """Print p50/p99 and failures per phase, with ratios against the first (the baseline)."""
    base50, base99 = np.percentile(phases[0].lat, [50, 99]) * 1000
    print(
        f"{'phase':28} {'polls':>6} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50 x':>6} {'p99 x':>6}  load"
    )
    for p in phases:
        p50, p99 = (np.percentile(p.lat, [50, 99]) * 1000) if p.lat else (np.nan, np.nan)
        print(
            f"{p.name:28} {len(p.lat):6d} {p.failed:6d} {p50:8.2f} {p99:8.2f} "
            f"{p50 / base50:6.1f} {p99 / base99:6.1f}  {p.note}"
        )


async def lateness(done: asyncio.Event, late: list[float]) -> None:
    """Sleep 1 ms over and over until ``done``, recording how late each wake-up is (s)."""
    while not done.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        late.append(time.perf_counter() - t - 0.001)


async def loop_stall(repeats: int) -> list[tuple[float, float, float]]:
    """(e): per export, its seconds and the probe's largest and p99 lateness (ms)."""
    from aiohttp.test_utils import TestServer

    from simulator.api.app import create_app
    from simulator.clock import SimClock
    from simulator.runtime.runtime import Runtime
    from simulator.schema.scenario import Scenario

    start = datetime(2024, 12, 2, 12, tzinfo=UTC).timestamp()  # YEAR ends that day
    fleet = Runtime(Scenario(), SimClock(start=start, speed=0))
    server = TestServer(create_app(fleet), host=HOST)
    await server.start_server()
    url = str(server.make_url(YEAR))
    out = []
    try:
        for _ in range(repeats):
            late: list[float] = []
            done = asyncio.Event()
            task = asyncio.create_task(lateness(done, late))
            t = time.perf_counter()
            curl = await asyncio.create_subprocess_exec(
                "curl", "-sf", "--digest", "-u", "viewer:viewer", "-o", "/dev/null", url
            )
            assert await curl.wait() == 0, "the export failed"
            took = time.perf_counter() - t
            done.set()
            await task
            worst, p99 = float(np.max(late)), float(np.percentile(late, 99))
            out.append((took, worst * 1000, p99 * 1000))
    finally:
        await server.close()
    return out


async def main() -> None:
    """Start the simulator, run the four phases, print the table; then the loop stall."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5, help="length of phases a-c")
    ap.add_argument("--nofile", type=int, default=256, help="the server's open-files limit")
    ap.add_argument("--workers", type=int, default=16, help="concurrent adjusting clients")
    ap.add_argument("--exports", type=int, default=10, help="concurrent year exports")
    ap.add_argument("--stall-repeats", type=int, default=3, help="year exports in (e)")
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the flood needs many sockets
    port = free_ports(4)
    argv = [
        sys.executable,
        "-m",
        "simulator",
        "serve",
        "scenarios/mall.yaml",
        "--port",
        str(port),
        "--speed",
        "0",
    ]
    sim = subprocess.Popen(
        pinned(0, argv),
        cwd=ROOT,
        preexec_fn=lower_nofile(args.nofile),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.sched_setaffinity(0, {1 if (os.cpu_count() or 1) > 1 else 0})  # the server has core 0
    poll_url = f"http://{HOST}:{port}{OCC}"  # parking
    storm_url = f"http://{HOST}:{port + 3}{CGI}"  # shop
    export_url = f"http://{HOST}:{port + 1}{YEAR}"  # street
    flood = args.nofile + 64
    try:
        await wait_up(poll_url)

        async def idle() -> str:
            await asyncio.sleep(args.seconds)
            return ""

        phases = [
            await measured("(a) baseline", poll_url, idle),
            await measured(
                f"(b) {flood} idle+slow conns",
                poll_url,
                lambda: idle_and_slow(port, flood, args.seconds),
            ),
            await measured(
                f"(c) adjust storm x{args.workers}",
                poll_url,
                lambda: storm(storm_url, args.seconds, args.workers),
            ),
            await measured(
                f"(d) {args.exports} year exports",
                poll_url,
                lambda: exports(export_url, args.exports, 300),
            ),
        ]
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    print(f"server: scenarios/mall.yaml on {HOST}:{port}.., open-files limit {args.nofile}")
    table(phases)
    if shutil.which("curl") is None:
        print("(e) skipped: needs curl")
        return
    for n, (took, worst, p99) in enumerate(await loop_stall(args.stall_repeats), 1):
        first = " (the process's first: cold model)" if n == 1 else ""
        print(
            f"(e) year of minutes as JSON #{n}: {took:5.2f} s, loop held at most "
            f"{worst:7.1f} ms (p99 of the 1 ms probe's lateness {p99:5.1f} ms){first}"
        )


if __name__ == "__main__":
    asyncio.run(main())
