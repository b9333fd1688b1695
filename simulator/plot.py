"""``p8815-sim plot``: a picture of a scenario's crowd, so an author sees it at a glance.

Top: arrivals and departures per 15 minutes as the device counts them. Bottom: how many
people are inside (the truth) and the device's occupancy estimate (counted in − out,
never below zero, reset daily), which drifts away from the truth with counting errors.
Holidays and special days are named, closed days shaded. Needs matplotlib (the ``plot``
extra: ``pip install 'p8815-sim[plot]'``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from simulator.model.bins import IntArray, day_grid
from simulator.model.calendar import day_plan
from simulator.model.counter import Restart, occupancy
from simulator.model.site import SiteDays, site_days
from simulator.schema.scenario import DeviceConfig, Scenario
from simulator.specs import site_specs

BIN = 15  # minutes per bar of the arrivals panel


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plot`` subcommand to the command line."""
    p = sub.add_parser("plot", help="draw arrivals, departures and occupancy over some days")
    p.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO",
        help="a shipped scenario's name or a scenario file (default: the built-in store)",
    )
    p.add_argument("--start", required=True, type=date.fromisoformat, help="first day, YYYY-MM-DD")
    p.add_argument("--days", type=int, default=7, help="how many days (default 7)")
    p.add_argument("--device", help="device id (default: the scenario's first)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("-o", "--output", default="crowd.png", help="PNG file (default crowd.png)")


def series(
    scenario: Scenario, device: DeviceConfig, first: date, n_days: int, seed: int
) -> tuple[SiteDays, dict[str, Any]]:
    """The days' model output and what the picture shows, per minute on one axis."""
    spec = site_specs(scenario)[device.id]
    days = [first + timedelta(days=i) for i in range(n_days)]
    sd = site_days(spec, seed, days)
    g = sd.groups
    door = spec.door(device.id)
    c = sd.counts[door]
    # The truth: everybody inside the site, whichever door they use.
    size = g.size
    at = np.repeat(g.offsets[:-1], g.per_day)
    inside = np.cumsum(
        np.bincount(at + g.arrive, size, g.minutes) - np.bincount(at + g.leave, size, g.minutes)
    )
    # The estimate: the site's doors' counts, reset daily (on a lone door: its own counts).
    in_ = np.sum([x.in_ for x in sd.counts], axis=0)
    out = np.sum([x.out for x in sd.counts], axis=0)
    reset = device.occupancy.reset_time.hour * 60 + device.occupancy.reset_time.minute
    restarts = []
    for k, d in enumerate(days):
        wall = day_grid(spec.timezone, d).wall_minute
        after = np.flatnonzero(wall >= reset)
        if len(after):
            restarts.append(Restart(int(g.offsets[k] + after[0]), 0))
    estimate = occupancy(in_, out, restarts)
    times = np.concatenate(
        [
            day_grid(spec.timezone, d).start + 60 * np.arange(day_grid(spec.timezone, d).n)
            for d in days
        ]
    )
    plans = [day_plan(spec.crowd, d) for d in days]
    return sd, {
        "times": times,
        "in": c.in_,
        "out": c.out,
        "inside": inside,
        "estimate": estimate,
        "plans": plans,
        "offsets": g.offsets,
        "tz": spec.timezone,
    }


def _bins(a: IntArray) -> IntArray:
    """Sums over consecutive ``BIN``-minute bins (every local day divides evenly)."""
    result: IntArray = a.reshape(-1, BIN).sum(axis=1)
    return result


def draw(data: dict[str, Any], title: str, path: str) -> None:
    """Draw the two panels and save them as a PNG."""
    # matplotlib is an optional extra: loaded by name, so type checks pass without it.
    importlib.import_module("matplotlib").use("Agg")
    mdates: Any = importlib.import_module("matplotlib.dates")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    tz = ZoneInfo(data["tz"])
    t = data["times"].astype("datetime64[s]")
    tb = t[::BIN] + np.timedelta64(BIN * 30, "s")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 6.5), sharex=True, layout="constrained")
    top.step(tb, _bins(data["in"]), where="mid", lw=0.9, color="tab:blue", label="in (counted)")
    top.step(tb, _bins(data["out"]), where="mid", lw=0.9, color="tab:orange", label="out (counted)")
    top.set_ylabel(f"people / {BIN} min")
    top.legend(loc="upper left", frameon=False)
    bottom.plot(t, data["inside"], lw=1.0, color="tab:green", label="inside (truth)")
    bottom.plot(t, data["estimate"], lw=1.0, color="tab:red", label="occupancy estimate (device)")
    bottom.set_ylabel("people inside")
    bottom.legend(loc="upper left", frameon=False)
    offsets = data["offsets"]
    for k, plan in enumerate(data["plans"]):
        a, b = t[offsets[k]], t[offsets[k + 1] - 1]
        if plan.hours is None:
            for ax in (top, bottom):
                ax.axvspan(a, b, color="0.92", lw=0)
        label = plan.name or ("closed" if plan.hours is None else "")
        if label:
            top.annotate(
                label, (a, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                textcoords="offset points", fontsize=8, color="0.3",
            )  # fmt: skip
    bottom.xaxis.set_major_locator(mdates.DayLocator(tz=tz))
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=tz))
    bottom.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 12, 18], tz=tz))
    for ax in (top, bottom):
        ax.grid(True, which="major", axis="x", color="0.8", lw=0.6)
        ax.set_ylim(bottom=0)
        ax.spines[["top", "right"]].set_visible(False)
    top.set_title(title, loc="left", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace, scenario: Scenario) -> int:
    """Run ``p8815-sim plot``; the exit status."""
    if importlib.util.find_spec("matplotlib") is None:
        print("p8815-sim plot needs matplotlib: pip install 'p8815-sim[plot]'", file=sys.stderr)
        return 2
    if args.days < 1 or args.days > 366:
        print("p8815-sim plot: --days must be 1..366", file=sys.stderr)
        return 2
    ids = [d.id for d in scenario.devices]
    device_id = args.device or ids[0]
    if device_id not in ids:
        print(f"p8815-sim plot: no device {device_id} (known: {', '.join(ids)})", file=sys.stderr)
        return 2
    device = scenario.devices[ids.index(device_id)]
    seed = scenario.seed if args.seed is None else args.seed
    _, data = series(scenario, device, args.start, args.days, seed)
    visitors = int(data["in"].sum())
    title = (
        f"{scenario.name} · {device_id} · seed {seed} · {args.start} + {args.days} days · "
        f"{visitors:,} counted in"
    )
    draw(data, title, args.output)
    print(f"{args.output}: {args.days} days of {device_id}")
    return 0
