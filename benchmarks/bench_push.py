"""Benchmark: one simulator process pushing for many devices to a local HTTPS receiver.

    python benchmarks/bench_push.py [--devices 1000] [--seconds 30] [--speed 60]

The receiver (aiohttp, a trustme test CA, 127.0.0.1) runs in a child process so this
process's CPU time is the simulator's alone. First a baseline: a plain aiohttp client
posting ready-made bodies to the same receiver, with the same connection limit. Then the
simulator: a fleet whose devices push every minute of a clock running at ``--speed``, with
a file-backed outbox, for ``--seconds`` of wall time; the clock is then frozen and the
backlog (if any) drained. The start-up (each device's counts of the day computed) runs with
the clock stopped and is reported apart; once the fleet is started, what it built is frozen out
of the garbage collector's scans (``gc.freeze``), as ``serve`` does, so "CPU per push" counts
the collections a served fleet's pushes cost (and, as ``serve`` does, the days the pusher
works out after start are frozen as they are made).
Printed: pushes/s, lateness percentiles (simulated and wall seconds after each interval's
end), CPU per push, its ratio to the baseline, and whether every interval of every device
arrived exactly once.

At scale: ``--devices 10000 --speed 6`` asks for 1,000 pushes/s (``--speed 60``: 10,000/s,
about ten cores' worth); "CPU per push" gives the pushes/s one core sustains. Lateness is
taken from the delivery logs, which keep the latest attempts of each device (at least 16).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import ssl
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import trustme
from aiohttp import web

from simulator.clock import SimClock
from simulator.runtime.push import payload
from simulator.runtime.push.schedule import due_count, send_time
from simulator.runtime.push.sender import tls_context
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, PushConfig, Scenario
from simulator.store import Store


# ---- the receiver (child process) -------------------------------------------------------
def receiver_main(cert_file: str, key_file: str, port_q: Any, stop_ev: Any) -> None:
    """Serve POST /push over HTTPS; GET /stats answers how many and which pushes arrived."""
    seen: dict[tuple[str, str], int] = {}
    total = [0]

    async def push(request: web.Request) -> web.Response:
        doc = await request.json()
        key = (doc["sensor"]["serial"], doc["data"]["utcFrom"])
        seen[key] = seen.get(key, 0) + 1
        total[0] += 1
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        dups = sum(n - 1 for n in seen.values())
        per_serial: dict[str, list[str]] = {}
        for serial, t in seen:
            per_serial.setdefault(serial, []).append(t)
        return web.json_response(
            {"requests": total[0], "unique": len(seen), "duplicates": dups, "per": per_serial}
        )

    async def reset(request: web.Request) -> web.Response:
        seen.clear()
        total[0] = 0
        return web.Response(status=204)

    async def main() -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_file, key_file)
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/push", push)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx, backlog=1024)
        await site.start()
        port_q.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        while not stop_ev.is_set():
            await asyncio.sleep(0.1)
        await runner.cleanup()

    asyncio.run(main())


# ---- helpers ---------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def get_json(url: str, ca_file: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url, ssl=tls_context(ca_file)) as r:
        return await r.json()


async def post(url: str, ca_file: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(url, ssl=tls_context(ca_file)) as r:
        await r.read()


def scenario(n: int, url: str, ca_file: str) -> Scenario:
    push = PushConfig(url=url, interval_minutes=1, ca_file=ca_file)
    devices = [DeviceConfig(id=f"dev{i:04d}", serial=f"ACCC8E{i:06X}", push=push) for i in range(n)]
    return Scenario(seed=1, devices=devices)


# ---- baseline: a plain client posting ready-made bodies -------------------------------------
async def baseline(url: str, ca_file: str, bodies: list[str], connections: int) -> dict[str, float]:
    ctx = tls_context(ca_file)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    headers = {"Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with s.post(url, data=body.encode(), headers=headers, ssl=ctx) as r:
                    await r.read()
                    assert r.status == 204

        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        "posts": len(bodies),
        "cpu_per_post_ms": 1000 * cpu / len(bodies),
        "posts_per_s": len(bodies) / wall,
    }


# ---- the simulator --------------------------------------------------------------------------
async def run(args: argparse.Namespace, url: str, ca_file: str, db: Path) -> None:
    sc = scenario(args.devices, url + "/push", ca_file)
    # Start one simulated second after a minute boundary: the first pushes are due in 59 s.
    start = datetime(2024, 6, 5, 10, 0, 1, tzinfo=UTC).timestamp()
    clock = SimClock(start=start, speed=args.speed)
    fleet = Runtime(sc, clock, Store(db))
    pusher = fleet.pusher

    # Baseline bodies: what the simulator will send, built once, sent by a plain client.
    dev = fleet.fleet.devices[0]
    bodies = [
        payload.wire_body(
            payload.stored_body(dev, int(start) - 60 * k, int(start) - 60 * k + 60), start, dev.tz
        )
        for k in range(args.baseline)
    ]
    base = await baseline(url + "/push", ca_file, bodies, pusher.connections)
    await post(url + "/reset", ca_file)

    # Start-up (each device's day of counts computed) with the clock stopped, measured
    # apart: a once-a-day cost per device, not a cost of each push.
    clock.set(start)
    clock.set_speed(0)
    s0, sw0 = time.process_time(), time.perf_counter()
    await fleet.start()
    gc.collect()  # as ``serve`` does once the fleet is built and started
    gc.freeze()
    fleet.pusher.on_warm = gc.freeze
    while pusher.warming:  # each device's day and the next, worked out after start
        await asyncio.sleep(0.05)
    startup_cpu, startup_wall = time.process_time() - s0, time.perf_counter() - sw0
    clock.set_speed(args.speed)
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        await asyncio.sleep(args.seconds)
        clock.set_speed(0)
        sim_end = clock.now()
        produce_wall = time.perf_counter() - w0
        await pusher.wait_idle(timeout=args.drain)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        await fleet.stop()

    # Every interval ended by the stop whose push was due by then (its seeded send delay).
    ends = [int(start) - 1 + 60 * k for k in range(1, due_count(start - 1, sim_end, 1) + 1)]
    expected = {
        dv.serial.lower(): sum(send_time(fleet.seed, dv.id, e) <= sim_end for e in ends)
        for dv in sc.devices
    }
    deliveries = [d for dv in fleet.fleet.devices for d in pusher.deliveries(dv.id)]
    ok = [d for d in deliveries if d.ok]
    late_sim = [d.sim_time - d.interval_end for d in ok]
    late_wall = [x / args.speed for x in late_sim]
    stats = await get_json(url + "/stats", ca_file)
    missing = 0
    for i in range(args.devices):
        got = len(stats["per"].get(f"accc8e{i:06x}", []))
        missing += max(0, expected[f"accc8e{i:06x}"] - got)
    produced = sum(pusher.stats(dv.id).produced for dv in fleet.fleet.devices)
    failed = sum(pusher.stats(dv.id).failed_attempts for dv in fleet.fleet.devices)
    interval_s = 60.0
    cpu_ms = 1000 * cpu / max(1, len(ok))
    print(
        f"devices {args.devices}, 1-minute interval, speed {args.speed:g}, "
        f"{produce_wall:.1f} wall s pushing ({sim_end - start:.0f} simulated s)"
    )
    print(
        f"start-up (clock stopped): {startup_wall:.1f} wall s, {startup_cpu:.1f} CPU s "
        f"({1000 * startup_cpu / args.devices:.2f} ms a device)"
    )
    print(
        f"baseline (plain aiohttp client, same receiver, {base['posts']:.0f} POSTs): "
        f"{base['posts_per_s']:.0f} POST/s, {base['cpu_per_post_ms']:.3f} ms CPU per POST"
    )
    print(
        f"expected intervals {sum(expected.values())} (ended and due by the stop), "
        f"produced {produced}, delivered {len(ok)}, "
        f"failed attempts {failed}"
    )
    print(
        f"receiver: requests {stats['requests']}, unique {stats['unique']}, "
        f"duplicates {stats['duplicates']}, intervals missed {missing}"
    )
    print(f"pushes/s achieved {len(ok) / wall:.0f} (target {args.devices * args.speed / 60:.0f})")
    print(
        "lateness after the interval's end, simulated s: "
        f"p50 {pct(late_sim, 50):.2f}, p90 {pct(late_sim, 90):.2f}, "
        f"p99 {pct(late_sim, 99):.2f}, max {max(late_sim, default=float('nan')):.2f} "
        f"(one interval = {interval_s:.0f})"
    )
    print(
        "lateness, wall ms: "
        f"p50 {1000 * pct(late_wall, 50):.1f}, p90 {1000 * pct(late_wall, 90):.1f}, "
        f"p99 {1000 * pct(late_wall, 99):.1f}, "
        f"max {1000 * max(late_wall, default=float('nan')):.1f}"
    )
    by_end: dict[float, list[float]] = {}
    for d, x in zip(ok, late_sim, strict=True):
        by_end.setdefault(d.interval_end, []).append(x)
    print(
        "p99 lateness of each interval in turn, simulated s: "
        + " ".join(f"{pct(v, 99):.0f}" for _, v in sorted(by_end.items()))
    )
    print(
        f"CPU per push {cpu_ms:.3f} ms (whole simulator process after start-up: schedule, "
        f"payload, outbox, HTTPS), ratio to baseline POST {cpu_ms / base['cpu_per_post_ms']:.2f}"
        f", so one core: {1000 / cpu_ms:.0f} pushes/s"
    )
    verdict = missing == 0 and pct(late_sim, 99) < interval_s
    print(
        json.dumps(
            {
                "no_interval_missed": missing == 0,
                "p99_under_one_interval": pct(late_sim, 99) < interval_s,
                "ok": verdict,
            }
        )
    )
    fleet.store.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30.0, help="wall seconds of pushing")
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument(
        "--drain", type=float, default=120, help="wall s allowed to deliver the backlog after"
    )
    p.add_argument("--baseline", type=int, default=3000, help="POSTs in the baseline")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        ca_file, cert_file, key_file = (str(Path(tmp) / n) for n in ("ca.pem", "c.pem", "k.pem"))
        ca.cert_pem.write_to_path(ca_file)
        cert.cert_chain_pems[0].write_to_path(cert_file)
        cert.private_key_pem.write_to_path(key_file)
        ctx = mp.get_context("spawn")
        port_q, stop_ev = ctx.Queue(), ctx.Event()
        proc = ctx.Process(target=receiver_main, args=(cert_file, key_file, port_q, stop_ev))
        proc.start()
        try:
            port = port_q.get(timeout=30)
            asyncio.run(run(args, f"https://127.0.0.1:{port}", ca_file, Path(tmp) / "sim.db"))
        finally:
            stop_ev.set()
            proc.join(10)
            if proc.is_alive():
                proc.kill()


if __name__ == "__main__":
    main()
