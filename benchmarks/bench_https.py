"""HTTPS benchmark, run by hand: ``python benchmarks/bench_https.py``.

(a) Requests/s of ``GET /a3dpc/api/occupancy`` over HTTPS against HTTP, to one device of a
``serve`` process, in the same run: kept-alive connections, a fresh Digest header (its own
nc and cnonce) on every request. Prints both rates and their ratio.

(b) Start-up: seconds of ``serve_fleet`` for fleets of ``--fleets`` devices with and
without HTTPS (certificates are issued on a device's first handshake, so HTTPS adds only its
listening sockets). The open-files limit is raised for it when the process may.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from simulator.clock import SimClock
from simulator.runtime.runtime import Runtime
from simulator.schema.load import parse_scenario
from simulator.server import serve_fleet

ROOT = Path(__file__).resolve().parent.parent
PATH = "/a3dpc/api/occupancy"
T0 = 1717767020.0


class Digest:
    """Digest (MD5, qop=auth) headers for one user, a fresh nc and cnonce per request."""

    def __init__(self, challenge: str, user: str, password: str) -> None:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        self.realm, self.nonce, self.user = fields["realm"], fields["nonce"], user
        self.ha1 = hashlib.md5(f"{user}:{self.realm}:{password}".encode()).hexdigest()
        self.ha2 = hashlib.md5(f"GET:{PATH}".encode()).hexdigest()
        self.nc = 0

    def header(self) -> str:
        """The Authorization header of the next request."""
        self.nc += 1
        nc, cnonce = f"{self.nc:08x}", secrets.token_hex(8)
        resp = hashlib.md5(
            f"{self.ha1}:{self.nonce}:{nc}:{cnonce}:auth:{self.ha2}".encode()
        ).hexdigest()
        return (
            f'Digest username="{self.user}", realm="{self.realm}", nonce="{self.nonce}", '
            f'uri="{PATH}", qop=auth, nc={nc}, cnonce="{cnonce}", response="{resp}"'
        )


async def rate(url: str, ctx: ssl.SSLContext | None, seconds: float, clients: int) -> float:
    """Requests/s of ``clients`` kept-alive connections, each asking in turn, for ``seconds``."""

    async def one(session: aiohttp.ClientSession) -> int:
        async with session.get(url + PATH, ssl=ctx) as r:
            digest = Digest(r.headers["WWW-Authenticate"], "viewer", "viewer")
        done, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            async with session.get(
                url + PATH, ssl=ctx, headers={"Authorization": digest.header()}
            ) as r:
                await r.read()
                assert r.status == 200, r.status
            done += 1
        return done

    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(session) for _ in range(clients)))
        return sum(counts) / (time.perf_counter() - t0)


def serve(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """A ``serve ci`` process on free ports, and its ready file."""
    ready = tmp / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "ci", "--port", "0", "--speed", "0",
         "--ready-file", str(ready)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the simulator did not start")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


async def requests_ratio(seconds: float, clients: int, rounds: int) -> None:
    """Print the rates over HTTP and HTTPS, alternating ``rounds`` times, and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, ready = serve(Path(tmp))
        try:
            device = ready["devices"][0]  # type: ignore[index]
            ctx = ssl.create_default_context(cafile=str(ready["ca"]))
            http = https = 0.0
            for _ in range(rounds):
                http += await rate(device["url"], None, seconds, clients)
                https += await rate(device["https_url"], ctx, seconds, clients)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    http, https = http / rounds, https / rounds
    print(f"GET {PATH}, {clients} kept-alive clients, fresh Digest header per request:")
    print(f"    HTTP : {http:9.0f} req/s")
    print(f"    HTTPS: {https:9.0f} req/s   ratio HTTPS/HTTP {https / http:.2f}")


async def startup_seconds(count: int, https: bool) -> float:
    """Seconds of ``serve_fleet`` for a fleet of ``count`` devices (built beforehand)."""
    scenario = parse_scenario(f"fleet: {{count: {count}, serial_start: ACCC8E200000}}\n")
    runtime = Runtime(scenario, SimClock(start=T0, speed=0))
    t0 = time.perf_counter()
    served = await serve_fleet(runtime, "127.0.0.1", 0, https_port=0 if https else None)
    took = time.perf_counter() - t0
    await served.cleanup()
    runtime.store.close()
    return took


def raise_files_limit(needed: int) -> None:
    """Lift the open-files limit to ``needed`` if the process may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), max(hard, needed)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main() -> None:
    """Run the benchmarks the options ask for."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0, help="per measurement (3)")
    p.add_argument("--clients", type=int, default=4, help="kept-alive connections (4)")
    p.add_argument("--rounds", type=int, default=2, help="HTTP/HTTPS alternations (2)")
    p.add_argument("--fleets", default="1000,10000", help="fleet sizes for start-up ('' skips)")
    args = p.parse_args()
    await requests_ratio(args.seconds, args.clients, args.rounds)
    for count in (int(c) for c in args.fleets.split(",") if c):
        raise_files_limit(2 * count + 4096)
        plain = await startup_seconds(count, https=False)
        tls = await startup_seconds(count, https=True)
        print(
            f"start-up, {count:>6} devices: HTTP {plain:6.2f} s, HTTP+HTTPS {tls:6.2f} s "
            f"(+{tls - plain:.2f} s)"
        )


if __name__ == "__main__":
    asyncio.run(main())
