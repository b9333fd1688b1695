"""Runtime construction benchmark, run by hand: ``python benchmarks/bench_fleet_build.py``.

Builds the fleets of 1,000, 10,000 and 100,000 devices of a ``fleet:`` template (the
scenario is parsed first, not timed) and prints the seconds and microseconds per device of
``Runtime(...)``: building must stay linear in the number of devices.
"""

from __future__ import annotations

import argparse
import time

from simulator.clock import SimClock
from simulator.runtime.runtime import Runtime
from simulator.schema.load import parse_scenario

T0 = 1717767020.0


def build_seconds(count: int) -> float:
    """Wall seconds to build a fleet of ``count`` devices (scenario parsed beforehand)."""
    scenario = parse_scenario(
        f"seed: 5\nfleet: {{count: {count}, id_prefix: door-, serial_start: ACCC8E200000}}\n"
    )
    t0 = time.perf_counter()
    Runtime(scenario, SimClock(start=T0, speed=0))
    return time.perf_counter() - t0


def main() -> None:
    """Print the construction time of each fleet size."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--counts", default="1000,10000,100000", help="fleet sizes, comma-separated")
    args = p.parse_args()
    for count in (int(c) for c in args.counts.split(",")):
        s = build_seconds(count)
        print(f"{count:>7} devices: {s:7.3f} s  {1e6 * s / count:6.1f} us/device")


if __name__ == "__main__":
    main()
