"""What the request journal costs on ``GET /a3dpc/api/occupancy``, run by hand.

``python benchmarks/bench_journal.py [--requests 20000] [--rounds 3] [--baseline DIR]``

(a) the server's CPU time per request (user + system, from /proc), and requests/s, of the
    simulator served by ``serve`` (pinned to core 0 where ``taskset`` exists), loaded by an
    aiohttp client (32 connections, one valid Digest header replayed). The client is often
    the bottleneck of requests/s; CPU time per request is what the server spends. With
    ``--baseline DIR`` (a source tree of another version, e.g. ``git archive REV | tar -x
    -C DIR``) both are measured in alternating rounds.
(b) the in-process cost of recording one such request in the journal, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import timeit
from pathlib import Path

import aiohttp
from bench_http import digest_header, free_port, pinned, wait_up  # run from benchmarks/

ROOT = Path(__file__).resolve().parent.parent


async def load(url: str, header: str, n: int, conns: int = 32) -> float:
    """Requests per second of ``n`` GETs over ``conns`` keep-alive connections."""
    headers = {"Authorization": header}
    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as s:

        async def worker(k: int) -> None:
            for _ in range(k):
                async with s.get(url) as r:
                    await r.read()
                    assert r.status == 200, r.status

        await worker(50)  # warm up
        t = time.perf_counter()
        await asyncio.gather(*(worker(n // conns) for _ in range(conns)))
        return (n // conns * conns) / (time.perf_counter() - t)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tree: Path, n: int) -> tuple[float, float]:
    """Serve from the source ``tree`` and load it: requests/s and server CPU µs per request."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "simulator", "serve", "--port", str(port), "--speed", "0",
            "--start", "2024-06-07T15:30:00+02:00"]  # fmt: skip
    sim = subprocess.Popen(
        pinned(0, argv), env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        occ = f"http://127.0.0.1:{port}/a3dpc/api/occupancy"
        wait_up(occ)
        header = digest_header(occ, "viewer", "viewer")
        asyncio.run(load(occ, header, 2000))  # warm up
        cpu = cpu_seconds(sim.pid)
        rate = asyncio.run(load(occ, header, n))
        return rate, (cpu_seconds(sim.pid) - cpu) / n * 1e6
    finally:
        sim.terminate()
        sim.wait()


def record_cost() -> float:
    """Microseconds to journal one authenticated GET with typical client headers."""
    from simulator.journal import Journal

    journal = Journal()
    raw = (
        (b"Host", b"127.0.0.1:8080"),
        (b"User-Agent", b"python-requests/2.32.3"),
        (b"Accept-Encoding", b"gzip, deflate"),
        (b"Accept", b"*/*"),
        (b"Connection", b"keep-alive"),
        (b"Authorization", b'Digest username="viewer", realm="AXIS_ACCC8E000000", ' * 4),
    )

    def one() -> None:
        journal.record("entrance", 1.0, 2.0, "GET", "/a3dpc/api/occupancy", raw, None, 0, 200,
                       "ok", "viewer", 0.001)  # fmt: skip

    n = 200_000
    return min(timeit.repeat(one, number=n, repeat=5)) / n * 1e6


def main() -> None:
    """Run the measurements and print them."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="source tree to compare with")
    args = ap.parse_args()
    trees = {"this": ROOT, **({"baseline": args.baseline} if args.baseline else {})}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            runs[name].append(measure(tree, args.requests))
    for name, r in runs.items():
        cpu = ", ".join(f"{c:.0f}" for _, c in r)
        rate = ", ".join(f"{x:.0f}" for x, _ in r)
        print(f"(a) {name:9s}: server CPU per request {min(c for _, c in r):6.0f} µs "
              f"(best; all: {cpu}); req/s: {rate}")  # fmt: skip
    print(f"(b) journal.record of one GET: {record_cost():.2f} µs")


if __name__ == "__main__":
    main()
