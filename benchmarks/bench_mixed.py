"""Mixed load on a big fleet, run by hand: ``python benchmarks/bench_mixed.py [--seconds 300]``.

One ``p8815-sim serve`` process serves a ``fleet:`` scenario of ``--devices`` (default
10,000) devices, each on its own address (``--ip-per-device`` from 127.1.0.1). Clients poll
a random device per request: readings (``GET /a3dpc/api/occupancy``, 70%), hourly exports
of yesterday (25%) and minute exports of today so far (5%), each with a fresh Digest
header (the next nc and a new cnonce of the device's nonce). Printed: throughput, p50/p99
latency per kind, and the server's RSS sampled every ``--sample`` seconds; RSS after the
warm-up (the first fifth of the run) should stay flat: its growth to the end is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from bench_scale import (  # run from benchmarks/
    EXPORT,
    READING,
    authed_get,
    challenge,
    proc_mb,
    start_server,
    write_scenario,
)
from requests.auth import HTTPDigestAuth

from simulator.cli import raise_open_files_limit

TODAY_MINUTES = "/a3dpc/api/export/json?start=today&end=now&resolution=minute"
MIX = ((READING, 0.70), (EXPORT, 0.25), (TODAY_MINUTES, 0.05))


async def sample_rss(pid: int, every: float, out: list[tuple[float, float]]) -> None:
    """Append (seconds since start, RSS MB) every ``every`` seconds until cancelled."""
    t0 = time.perf_counter()
    while True:
        out.append((time.perf_counter() - t0, proc_mb(pid, "VmRSS")))
        await asyncio.sleep(every)


async def run(args: argparse.Namespace, urls: list[str], pid: int) -> None:
    """Poll random devices with the mix for ``args.seconds``; print the figures."""
    lat: dict[str, list[float]] = {p: [] for p, _ in MIX}
    paths, weights = [p for p, _ in MIX], [w for _, w in MIX]
    auths: dict[str, HTTPDigestAuth] = {}
    rss: list[tuple[float, float]] = []
    conn = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=1)
    async with aiohttp.ClientSession(connector=conn) as s:
        sampler = asyncio.create_task(sample_rss(pid, args.sample, rss))
        stop = time.perf_counter() + args.seconds

        async def worker(k: int) -> None:
            rnd = random.Random(k)
            while time.perf_counter() < stop:
                base = urls[rnd.randrange(len(urls))]
                path = rnd.choices(paths, weights)[0]
                auth = auths.get(base)
                if auth is None:
                    auth = auths[base] = await challenge(s, base + READING)
                t = time.perf_counter()
                status, body = await authed_get(s, auth, base + path)
                if status == 401:  # the nonce aged out: a new one, as a client does
                    auth = auths[base] = await challenge(s, base + READING)
                    t = time.perf_counter()
                    status, body = await authed_get(s, auth, base + path)
                if status != 200:
                    raise SystemExit(f"{base + path}: {status} {body[:200]!r}")
                lat[path].append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
        wall = time.perf_counter() - t0
        sampler.cancel()
    total = sum(len(v) for v in lat.values())
    print(
        f"{len(urls)} devices, {args.concurrency} clients, {wall:.0f} s: {total} requests, "
        f"{total / wall:.0f} req/s, {len(auths)} devices asked"
    )
    for path, values in lat.items():
        if values:
            p50, p99 = np.percentile(values, [50, 99]) * 1000
            print(f"  {len(values):7} x {path}: p50 {p50:7.1f} ms, p99 {p99:7.1f} ms")
    warm = [mb for t, mb in rss if t >= args.seconds / 5]
    print("RSS MB sampled: " + " ".join(f"{mb:.0f}" for _, mb in rss))
    if warm:
        print(
            f"RSS after warm-up {warm[0]:.0f} MB, at the end {warm[-1]:.0f} MB "
            f"(growth {warm[-1] - warm[0]:+.0f} MB), peak VmHWM {proc_mb(pid, 'VmHWM'):.0f} MB"
        )


def main() -> None:
    """Start the fleet, run the mixed load, stop."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--concurrency", type=int, default=16, help="requests at a time")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    p.add_argument("--port", type=int, default=31000)
    args = p.parse_args()
    raise_open_files_limit()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = write_scenario(tmp, args.devices)
        server = start_server(Path(scenario), args.devices, "ip", args.port)
        print(f"ready in {server.start_seconds:.2f} s ({server.start_cpu:.2f} s CPU)")
        try:
            asyncio.run(run(args, server.urls, server.proc.pid))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
