"""Runtime load benchmark, run by hand: ``python benchmarks/bench_fleet.py [--seconds 10]``.

One simulator process serves ``scenarios/fleet-1000.yaml`` with ``--ip-per-device`` (device i
on 127.0.1.(1+i), all on one port) at ``--speed 60``, pinned to one core. A load generator on
the other core polls ``GET /a3dpc/api/occupancy`` with a valid Digest header for each device:
first always the same device (the baseline, measured in the same run), then a random device
of the 1,000 per request. A Python load generator cannot saturate the server, so the
figure of merit is the server's CPU time per request (from /proc), fleet against one
device (target >= 0.8: a fleet's routing, caches and days must cost little more than one
device); requests/s and latencies are printed for information, with the server's memory.
Before the measures every device answers one reading, so each has worked out its day (a
once-a-day cost of a device, not of a request).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

ROOT = Path(__file__).resolve().parent.parent
PATH = "/a3dpc/api/occupancy"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


async def header(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as r:
        chal = r.headers["WWW-Authenticate"]
    auth = HTTPDigestAuth("viewer", "viewer")
    auth.init_per_thread_state()
    auth._thread_local.chal = parse_dict_header(chal.removeprefix("Digest "))
    h = auth.build_digest_header("GET", url)
    assert h is not None
    return h


async def load(targets: list[tuple[str, str]], seconds: float, workers: int) -> np.ndarray:
    """Poll random targets with ``workers`` concurrent requests; latencies in seconds.

    Like an integration polling a fleet, each device gets one keep-alive connection (one
    device alone gets ``workers`` of them, for the same concurrency).
    """
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=0, limit_per_host=1 if len(targets) > 1 else 0)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker() -> None:
            rnd = random.Random(os.getpid() ^ id(lat))
            while time.perf_counter() < stop:
                url, h = targets[rnd.randrange(len(targets))]
                t = time.perf_counter()
                async with s.get(url, headers={"Authorization": h}) as r:
                    await r.read()
                    assert r.status == 200, r.status
                lat.append(time.perf_counter() - t)

        await asyncio.gather(*(worker() for _ in range(workers)))
    return np.array(lat)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--speed", type=float, default=60, help="simulated seconds per wall second")
    args = ap.parse_args()
    port = free_port()
    sim = subprocess.Popen(
        pinned(
            0,
            [
                sys.executable,
                "-m",
                "simulator",
                "serve",
                "scenarios/fleet-1000.yaml",
                "--ip-per-device",
                "--host",
                "127.0.1.1",
                "--port",
                str(port),
                "--speed",
                str(args.speed),
            ],
        ),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = ipaddress.ip_address("127.0.1.1")
        urls = [f"http://{base + i}:{port}{PATH}" for i in range(1000)]
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as s:
            while True:
                try:
                    async with s.get(urls[-1]) as r:
                        if r.status == 401:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the fleet did not start")
                await asyncio.sleep(0.2)
            t = time.perf_counter()
            targets = [(u, await header(s, u)) for u in urls]
            setup = time.perf_counter() - t
            for u, h in targets:  # each device works out its day once, as in a running fleet
                async with s.get(u, headers={"Authorization": h}) as r:
                    assert r.status == 200, r.status
        cpu0 = cpu_seconds(sim.pid)
        one = await load(targets[:1], args.seconds, args.workers)
        cpu1 = cpu_seconds(sim.pid)
        fleet = await load(targets, args.seconds, args.workers)
        cpu2 = cpu_seconds(sim.pid)
        rss = 0
        for line in Path(f"/proc/{sim.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    finally:
        sim.terminate()
        sim.wait()
    cost = {}
    phases = (("one device", one, cpu1 - cpu0), ("1,000 devices", fleet, cpu2 - cpu1))
    for name, lat, cpu in phases:
        p50, p99 = np.percentile(lat, [50, 99]) * 1000
        cost[name] = cpu / len(lat) * 1e6
        print(
            f"{name:14}: {len(lat) / args.seconds:8.0f} req/s, p50 {p50:6.2f} ms, "
            f"p99 {p99:6.2f} ms; server CPU {cost[name]:6.1f} us/request"
        )
    ratio = cost["one device"] / cost["1,000 devices"]
    print(f"server CPU per request, one device / fleet: {ratio:.2f}   (target >= 0.80)")
    print(f"first challenge of each of 1,000 devices: {setup:.2f} s; server RSS {rss} MB")


if __name__ == "__main__":
    asyncio.run(main())
