"""A big fleet in one process: packed days, bounded caches, what a device asked once keeps."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import aiohttp
import numpy as np
import pytest

from simulator.clock import SimClock
from simulator.device import DayCache
from simulator.device.days import ENTRY_OVERHEAD, pack
from simulator.model.counter import Counts
from simulator.runtime.push import pusher
from simulator.runtime.push.sender import Attempt
from simulator.runtime.runtime import Runtime
from simulator.schema.load import parse_scenario
from simulator.server import serve_fleet
from tests.conftest import T0, make_fleet

EXPORT = "/a3dpc/api/export/json?start=yesterday&end=today&resolution=hour"


def day_counts(top: int, seed: int = 0) -> Counts:
    """A day of minute counts up to ``top``."""
    rng = np.random.default_rng(seed)
    a = [rng.integers(0, top + 1, 1440).astype(np.int64) for _ in range(4)]
    return Counts(a[0], a[1], a[2], a[3])


def test_day_cache_keeps_days_packed_and_gives_them_back_as_int64() -> None:
    cache = DayCache()
    for top, size in ((200, 1), (60_000, 2), (100_000, 4)):
        c = day_counts(top)
        cache.put((top, c.in_.tolist()[0], 0), c)  # type: ignore[arg-type]
        packed = pack([c.in_, c.out, c.in_adults, c.out_adults])
        assert packed.dtype == np.dtype(f"u{size}").str
        assert cache.bytes == packed.nbytes + ENTRY_OVERHEAD
        got = cache.get((top, c.in_.tolist()[0], 0))  # type: ignore[arg-type]
        assert got is not None and got.in_.dtype == np.int64
        for a, b in zip(
            (got.in_, got.out, got.in_adults, got.out_adults),
            (c.in_, c.out, c.in_adults, c.out_adults),
            strict=True,
        ):
            assert np.array_equal(a, b)
        cache = DayCache()


def test_a_cached_day_of_a_door_holds_under_two_kibibytes() -> None:
    """A day of a door (small counts, quiet nights) is kept compressed: its real size (the
    cache counts it) is a fraction of its 4 x 1,440 bytes (5.6 KiB before), so a fleet of
    10,000 devices keeps its readings' and exports' days in a few tens of MiB."""
    runtime = make_fleet(parse_scenario("seed: 3\nfleet: {count: 3, id_prefix: door-}\n"))
    for device in runtime.fleet.devices:
        device.realtime(runtime.clock.now())
    cache = runtime.fleet.cache
    assert len(cache) == 3
    assert cache.bytes / len(cache) < 2048 + ENTRY_OVERHEAD, cache.bytes / len(cache)


def test_day_cache_is_bounded_by_bytes_least_recently_used_first() -> None:
    c = day_counts(100)
    entry = pack([c.in_, c.out, c.in_adults, c.out_adults]).nbytes + ENTRY_OVERHEAD
    cache = DayCache(max_bytes=3 * entry)
    for k in range(3):
        cache.put((k, None, 0), c)  # type: ignore[arg-type]
    assert cache.get((0, None, 0)) is not None  # (0) is now the most recently used
    cache.put((3, None, 0), c)  # type: ignore[arg-type]
    assert len(cache) == 3 and cache.bytes == 3 * entry
    assert (1, None, 0) not in cache and (0, None, 0) in cache and (3, None, 0) in cache


async def ask(url: str) -> None:
    """A device answers a reading and yesterday's hourly export (a new Digest client)."""
    auth = aiohttp.DigestAuthMiddleware("viewer", "viewer")
    async with aiohttp.ClientSession(middlewares=(auth,)) as s:
        for path in ("/a3dpc/api/occupancy", EXPORT):
            async with s.get(url + path) as r:
                assert r.status == 200, await r.text()


async def test_a_device_asked_once_keeps_little_memory() -> None:
    """Every device of a fleet answers a reading and yesterday's hourly export over HTTP;
    what stays in memory afterwards is a few KiB per device (it was ~160 KiB)."""
    warm, n = 5, 40
    scenario = parse_scenario(
        f"seed: 3\nfleet: {{count: {warm + n}, id_prefix: door-, serial_start: ACCC8E300000}}\n"
    )
    runtime = make_fleet(scenario)
    served = await serve_fleet(runtime, "127.0.0.1", 0)
    devices = runtime.fleet.devices
    try:
        for device in devices[:warm]:  # the model's shared tables are built once
            await ask(served.url(device.id))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for device in devices[warm:]:
            await ask(served.url(device.id))
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
        assert grown / n < 48 * 1024, f"{grown / n / 1024:.0f} KiB kept per device"
    finally:
        await served.cleanup()
    assert not served.runner.sites  # every device's site stopped


def test_the_delivery_logs_of_a_big_fleet_are_bounded_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fleet's push keeps LOG_TOTAL delivery attempts in all (each device at least LOG_MIN),
    not ``log_size`` per device: 10,000 devices pushing each minute stay in bounded memory."""
    monkeypatch.setattr(pusher, "LOG_TOTAL", 40)
    push = "push: {url: 'http://127.0.0.1:9/push', interval_minutes: 1, allow_http: true}"
    scenario = parse_scenario(
        f"seed: 3\nfleet: {{count: 2, id_prefix: door-, serial_start: ACCC8E300000,"
        f" template: {{{push}}}}}\n"
    )
    runtime = make_fleet(scenario)
    p = runtime.pusher
    device = runtime.fleet.devices[0].id
    for k in range(100):
        p._record(p._channels[device], k, 60.0 * k, 1, Attempt(200, None, 0.01))
    assert len(p.deliveries(device)) == 20  # 40 over 2 devices
    assert [d.entry for d in p.deliveries(device)] == list(range(80, 100))  # the latest


def test_devices_of_one_template_share_their_frozen_specs() -> None:
    scenario = parse_scenario(
        "seed: 3\nfleet: {count: 3, id_prefix: door-, serial_start: ACCC8E300000}\n"
    )
    a, b, c = make_fleet(scenario).fleet.devices
    assert a.frames_spec is b.frames_spec is c.frames_spec
    assert a.site.spec.counters[0] is b.site.spec.counters[0] is c.site.spec.counters[0]
    assert a.site.spec.crowd is b.site.spec.crowd
    assert (a.mac, c.mac) == ("ac:cc:8e:30:00:00", "ac:cc:8e:30:00:02")


async def test_a_pushing_fleet_starts_without_holding_the_loop() -> None:
    """Each pushing device's day is worked out at start, but one device per turn of the
    loop: other work (requests, the readiness) runs meanwhile, not after all of them."""
    doc = """
fleet: {count: 40, template: {push: {url: "http://127.0.0.1:9/", allow_http: true}}}
"""
    rt = Runtime(parse_scenario(doc), SimClock(start=T0, speed=0))
    cache = rt.fleet.cache
    seen: list[int] = []
    asyncio.get_running_loop().call_soon(lambda: seen.append(len(cache)))
    await rt.start()
    try:
        async with asyncio.timeout(30):
            while len(cache) < 40:
                await asyncio.sleep(0.01)
        assert seen and seen[0] < 40  # the loop ran before the last device was worked out
    finally:
        await rt.stop()
