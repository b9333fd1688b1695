"""Model benchmark, run by hand: ``python benchmarks/bench_model.py [--devices 100]``.

Generates one year of minute data (in, out, in adults, out adults per minute) for N
devices of the default store with the full model (day level, groups, dwell, sweep,
counting errors, children) and prints device-days per second (target >= 20,000 on one
core). Measured in the same run, as a yardstick: a plain numpy Poisson draw of the same
shape (one in and one out per minute at the default day's rates), which is what a model
without groups, dwell or errors would cost; the ratio says how close the full model gets.

Also: the same for a fleet of 4-door sites (doors drawn jointly, exits by another door),
and the single-day path the HTTP API uses (``site_days`` of one day, uncached).
Pinned to one core with ``taskset`` when available.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import date, timedelta

import numpy as np

from simulator.model.bins import day_grid
from simulator.model.site import site_days
from simulator.model.tables import rate_shape
from simulator.schema.scenario import CrowdConfig, DeviceConfig, Scenario
from simulator.specs import crowd_spec, site_spec


def fleet(n: int, doors: int) -> Scenario:
    """N devices of the default store: lone doors, or sites of ``doors`` doors each."""
    devices = []
    for i in range(n):
        site = f"s{i // doors}" if doors > 1 else None
        crowd = CrowdConfig(daily_visitors=1400.0 / doors, exit_share=0.6 if doors > 1 else 1.0)
        devices.append(DeviceConfig(id=f"d{i}", serial=f"ACCC8E{i:06X}", site=site, crowd=crowd))
    return Scenario(devices=devices)


def run_model(scenario: Scenario, days: list[date], chunk: int) -> tuple[float, int]:
    """Seconds to generate every device's minute data over ``days``; people counted."""
    specs = {}
    for d in scenario.devices:
        specs.setdefault(d.site or d.id, site_spec(scenario, d.id))
    people = 0
    t = time.perf_counter()
    for spec in specs.values():
        for i in range(0, len(days), chunk):
            part = site_days(spec, scenario.seed, days[i : i + chunk])
            people += sum(int(c.in_.sum()) for c in part.counts)
    return time.perf_counter() - t, people


def run_poisson(devices: int, days: list[date]) -> float:
    """Seconds for a plain Poisson draw of in and out per minute, same shape, per device."""
    grid = day_grid("Europe/Stockholm", days[0])
    profile = crowd_spec(CrowdConfig(), "Europe/Stockholm").profiles[0]
    lam = rate_shape(profile, 0.6, grid, (600, 1200)) * 1400.0
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    for _ in range(devices):
        rng.poisson(lam, size=(len(days), 2, len(lam)))
    return time.perf_counter() - t


def main() -> None:
    """Run the benchmarks and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--chunk", type=int, default=32, help="days per batch (32)")
    p.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    p.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    args = p.parse_args()
    if not args.no_pin and shutil.which("taskset") and "BENCH_PINNED" not in os.environ:
        os.environ["BENCH_PINNED"] = "1"
        os.execvp("taskset", ["taskset", "-c", "1", sys.executable, *sys.argv])
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(366)]
    n = args.devices
    device_days = n * len(days)
    lone, sites = fleet(n, 1), fleet(n, 4)
    run_model(lone, days[:40], args.chunk)  # warm the tables
    run_model(sites, days[:40], args.chunk)

    best = min(run_model(lone, days, args.chunk)[0] for _ in range(args.repeat))
    base = min(run_poisson(n, days) for _ in range(args.repeat))
    best4 = min(run_model(sites, days, args.chunk)[0] for _ in range(args.repeat))
    spec = site_spec(lone, "d0")
    t = time.perf_counter()
    for d in days[:100]:
        site_days(spec, lone.seed, [d])
    one = (time.perf_counter() - t) / 100

    print(f"one year of minute data, {n} devices = {device_days} device-days, chunk {args.chunk}")
    print(f"  full model, lone doors:   {best:6.2f} s  {device_days / best:9,.0f} device-days/s")
    print(f"  full model, 4-door sites: {best4:6.2f} s  {device_days / best4:9,.0f} device-days/s")
    print(f"  plain numpy Poisson:      {base:6.2f} s  {device_days / base:9,.0f} device-days/s")
    print(f"  ratio full model / plain Poisson (speed): {base / best:.2f}")
    print(f"  one day alone (HTTP path, uncached): {one * 1e6:.0f} µs")
    target = "met" if device_days / best >= 20_000 else "NOT met"
    print(f"  target >= 20,000 device-days/s: {target}")


if __name__ == "__main__":
    main()
