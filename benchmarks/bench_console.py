"""Web console load benchmark, run by hand: ``python benchmarks/bench_console.py``.

Serves a ``fleet:`` template of 4 devices (the baseline) and of 10,000 (one device port
served; the console lists them all), opens ``/sim/`` in Debian's Chromium with the token
already in the tab's sessionStorage, and prints the wall time from navigation to the first
rendered row of the fleet table: cold (first page: the devices' days are drawn) and warm
(a reload), with the 10,000-device fleet's ratio to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from playwright.sync_api import sync_playwright

from simulator.schema.scenario import FleetTemplate, Scenario
from simulator.testing import ThreadedSimulator

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def first_rows(page: Any, url: str) -> float:
    """Seconds from navigation to the first row of the fleet table."""
    t0 = time.perf_counter()
    page.goto(url + "/sim/")
    page.wait_for_selector("#fleet tbody tr", timeout=120_000)
    return time.perf_counter() - t0


def measure(browser: Any, count: int) -> tuple[float, float]:
    """Cold and warm seconds to the first table rows for a fleet of ``count`` devices."""
    scenario = Scenario(name=f"fleet-{count}", fleet=FleetTemplate(count=count))
    with ThreadedSimulator(scenario, speed=0, devices=["door-0000"]) as sim:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script("sessionStorage.setItem('p8815-sim-token', 'p8815-sim')")
        page = context.new_page()
        cold = first_rows(page, sim.url)
        warm = first_rows(page, sim.url)
        context.close()
    return cold, warm


def main() -> None:
    """Print the time to the first table rows per fleet size, against the baseline."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=10_000, help="the large fleet's size")
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        base = measure(browser, 4)
        big = measure(browser, args.count)
        browser.close()
    for name, (cold, warm) in (("4 devices", base), (f"{args.count:,} devices", big)):
        print(f"{name:>16}: first table render cold {cold:6.3f} s, warm {warm:6.3f} s")
    print(f"ratio {args.count:,}/4: cold {big[0] / base[0]:.2f}x, warm {big[1] / base[1]:.2f}x")


if __name__ == "__main__":
    main()
