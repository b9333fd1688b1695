"""The device's own work for a real-time reading: ``python benchmarks/bench_readings.py``.

A fleet of ``--devices`` (default 1,000) whose days are worked out first; readings are then
taken as a poller at ``--rate`` requests/s against a clock at ``--speed`` would see them:
first always the same device (the baseline, measured in the same run), then a random device
per reading. Printed: µs per reading of each and their ratio. No HTTP: this is the part of
``benchmarks/bench_fleet.py``'s fleet cost that is the device's, without the machine's noise
of a server and a load generator.
"""

from __future__ import annotations

import argparse
import random
import time

from simulator.clock import SimClock
from simulator.runtime.runtime import Runtime
from simulator.schema.load import parse_scenario

T0 = 1717767020.0  # a Friday afternoon in June 2024


def per_reading(runtime: Runtime, count: int, one: bool, step: float) -> float:
    """µs per reading: ``count`` readings ``step`` simulated seconds apart."""
    devices = runtime.fleet.devices
    rnd = random.Random(1)
    t = T0
    start = time.perf_counter()
    for _ in range(count):
        t += step
        device = devices[0] if one else devices[rnd.randrange(len(devices))]
        device.realtime(t)
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    """Measure and print."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--rate", type=float, default=6500, help="readings per wall second")
    p.add_argument("--speed", type=float, default=60, help="simulated seconds per wall second")
    p.add_argument("--readings", type=int, default=60000)
    args = p.parse_args()
    scenario = parse_scenario(f"seed: 3\nfleet: {{count: {args.devices}}}\n")
    runtime = Runtime(scenario, SimClock(start=T0, speed=0), seed=3)
    for device in runtime.fleet.devices:
        device.realtime(T0)  # each device's day, worked out once
    step = args.speed / args.rate
    one = per_reading(runtime, args.readings, True, step)
    fleet = per_reading(runtime, args.readings, False, step)
    print(f"{args.devices} devices, a reading every {step:.4f} simulated s")
    print(f"  one device   : {one:7.1f} µs a reading")
    print(f"  random device: {fleet:7.1f} µs a reading   (one / fleet {one / fleet:.2f})")


if __name__ == "__main__":
    main()
