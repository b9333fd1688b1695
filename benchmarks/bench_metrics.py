"""What counting a request in the metrics costs, in process, run by hand.

``python benchmarks/bench_metrics.py``: microseconds of :meth:`Metrics.request` (the one
call the request path makes) for an answered ``GET /a3dpc/api/occupancy`` and for a
refused one, against journaling the same request (the baseline, measured in the same run),
and the time to render a scrape of a fleet of 1,000 pushing devices (fleet-wide series).
"""

from __future__ import annotations

import asyncio
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest

from simulator.api.app import create_app
from simulator.api.common import DEVICE
from simulator.api.metrics import METRICS
from simulator.clock import SimClock
from simulator.journal import Journal
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, FleetTemplate, PushConfig, Scenario

N = 50_000
RAW = ((b"Host", b"127.0.0.1:8080"), (b"Authorization", b'Digest username="viewer"' * 8))


def per_call_us(*fns: Callable[[], object], rounds: int = 9) -> list[float]:
    """Best microseconds per call of each of ``fns``, measured in alternating rounds."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], timeit.timeit(fn, number=N))
    return [b / N * 1e6 for b in best]


def main() -> None:
    """Measure and print."""
    runtime = Runtime(Scenario(), SimClock(start=1.7e9, speed=0))
    app = create_app(runtime)
    request = make_mocked_request("GET", "/a3dpc/api/occupancy", app=app)
    info = asyncio.run(app.router.resolve(request))  # as aiohttp routes it
    info.add_app(app)
    request._match_info = info
    request[DEVICE] = runtime.fleet.devices[0]
    journal = Journal()
    assert request.app is app

    def journaled() -> None:
        journal.record("entrance", 1.0, 2.0, "GET", "/a3dpc/api/occupancy", RAW, None, 0, 200,
                       "ok", "viewer", 0.001)  # fmt: skip

    base, ok, refused = per_call_us(
        journaled,
        lambda: request.app[METRICS].request(request, 200, "ok", 0.0004),
        lambda: request.app[METRICS].request(request, 401, "bad-response", 0.0004),
    )
    print(f"journal.record (baseline): {base:.2f} µs")
    print(f"app[METRICS].request, answered: {ok:.2f} µs ({ok / base:.2f} x the journal)")
    print(f"app[METRICS].request, refused:  {refused:.2f} µs ({refused / base:.2f} x the journal)")

    push = PushConfig(url="https://127.0.0.1:9/push")
    fleet = Scenario(fleet=FleetTemplate(count=1000, template=DeviceConfig(push=push)))
    big = create_app(Runtime(fleet, SimClock(start=1.7e9, speed=0)))[METRICS]
    scrape = min(timeit.repeat(lambda: generate_latest(big.registry), number=20, repeat=3)) / 20
    print(f"scrape of 1,000 pushing devices: {scrape * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
