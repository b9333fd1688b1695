"""The loop at a pushing fleet's local midnight: ``python benchmarks/bench_midnight.py``.

A fleet of ``--devices`` pushing every minute, its receiver held down (a simulated outage:
the production is what is measured, not the delivery), runs its clock from 23:58 local time
across midnight at ``--speed``. Served, each device's next day is worked out ahead (one
device per turn of the loop); without that, past midnight every device works out its new
day (about 1 ms each) when its first interval of the day is produced. A ticker task
measures how long the event loop was held: the longest gap between its 1 ms ticks, i.e. how
long a request arriving at the wrong moment would have waited (what was built before is
frozen out of the garbage collector's scans, as ``serve`` does). Run three times in the
same process: as served; with the new day worked out at midnight and production batches
bounded at 20 ms of wall time; and bounded only by their size (2,000 intervals: the
baseline, as before either).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from datetime import UTC, datetime

from simulator.clock import SimClock
from simulator.runtime.push.pusher import BATCH_S
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, PushConfig, Scenario

#: 23:58 in Stockholm (CEST) on a Friday.
START = datetime(2024, 6, 7, 21, 58, tzinfo=UTC).timestamp()


async def longest_hold(
    devices: int, speed: float, batch_s: float, seconds: float, ahead: bool
) -> float:
    """The longest the loop was held (s) while the fleet's clock crossed midnight."""
    push = PushConfig(url="http://127.0.0.1:9/push", allow_http=True, interval_minutes=1)
    cfgs = [
        DeviceConfig(id=f"d{k}", serial=f"ACCC8E{k:06X}", timezone="Europe/Stockholm", push=push)
        for k in range(devices)
    ]
    clock = SimClock(start=START, speed=0)
    fleet = Runtime(Scenario(seed=1, devices=cfgs), clock)
    fleet.pusher.batch_s = batch_s
    fleet.pusher.warm_ahead = ahead
    fleet.pusher.receiver_down = lambda device: True  # intervals wait in the outbox
    fleet.pusher.on_warm = gc.freeze  # as ``serve`` does
    await fleet.start()
    while fleet.pusher.warming:  # the days worked out after start
        await asyncio.sleep(0.05)
    gc.collect()
    gc.freeze()
    worst, stop = 0.0, time.perf_counter() + seconds
    clock.set_speed(speed)
    fleet.scheduler.wake()
    last = time.perf_counter()
    while (now := time.perf_counter()) < stop:
        worst, last = max(worst, now - last), now
        await asyncio.sleep(0.001)
    await fleet.stop()
    gc.unfreeze()
    return worst


async def main() -> None:
    """Measure and print."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=2000)
    p.add_argument("--speed", type=float, default=60)
    p.add_argument("--seconds", type=float, default=8, help="wall seconds (from 23:58 local)")
    args = p.parse_args()
    served = await longest_hold(args.devices, args.speed, BATCH_S, args.seconds, True)
    bounded = await longest_hold(args.devices, args.speed, BATCH_S, args.seconds, False)
    neither = await longest_hold(args.devices, args.speed, float("inf"), args.seconds, False)
    print(f"{args.devices} pushing devices crossing local midnight at speed {args.speed:g}:")
    print(f"  as served (new day ready, batches of 20 ms): held at most {1000 * served:7.1f} ms")
    print(f"  new day at midnight, batches of 20 ms     : held at most {1000 * bounded:7.1f} ms")
    print(f"  new day at midnight, batches of 2,000     : held at most {1000 * neither:7.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
