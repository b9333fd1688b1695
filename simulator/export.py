"""``p8815-sim export``: the HTTP exports' exact bytes, written offline to a file.

The device answers as a server started at ``--now`` would: the same query validation
(``a3dpc.parse_export_query``), the same domain calls (``Device.traffic`` /
``Device.occupancy_peaks``) and the same encoders (``api.render``), so a file written here
and a response of ``GET /a3dpc/api/export/csv?...`` are byte for byte the same.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from simulator.api import a3dpc, render
from simulator.clock import SimClock, wall_time
from simulator.device import Chunk, Device
from simulator.errors import ValidationFailed
from simulator.fleet import Fleet
from simulator.runtime.runtime import timeline_of
from simulator.runtime.scheduler import Scheduler
from simulator.schema.scenario import Scenario
from simulator.store import Store
from simulator.timeparse import parse_start

_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` subcommand to the command line."""
    e = sub.add_parser(
        "export",
        help="write a device's export (the HTTP export's exact bytes) to a file",
        description="Write what GET /a3dpc/api/export[_occupancy]/{csv,json} would answer.",
    )
    e.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO",
        help="a shipped scenario's name or a scenario file (default: the built-in store)",
    )
    e.add_argument(
        "--device",
        action="append",
        help="device id (repeatable; default: every device of the scenario)",
    )
    e.add_argument("--start", required=True, help="YYYYMMDD, YYYY-MM-DD, yesterday, today, now")
    e.add_argument("--end", required=True, help="YYYYMMDD, YYYY-MM-DD, yesterday, today, now")
    e.add_argument("--resolution", default="hour", help="minute, hour or day (default: hour)")
    e.add_argument("--format", choices=("csv", "json"), default="csv")
    e.add_argument(
        "--data",
        choices=("traffic", "occupancy"),
        default="traffic",
        help="in/out per bin (/export, default) or peak occupancy (/export_occupancy)",
    )
    e.add_argument(
        "-o",
        "--output",
        help="file to write (default: stdout); with several devices use {device} in the name",
    )
    e.add_argument(
        "--now",
        type=parse_start,
        help="the simulated time the export is taken at, ISO 8601 (default: the scenario's "
        "start, else now)",
    )
    e.add_argument("--seed", type=int, help="override the scenario's seed")
    e.add_argument("--db", help="SQLite file of a server's durable state (its adjustments)")
    e.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )


class Progress:
    """A one-line progress bar on a stream, redrawn at most ten times a second."""

    def __init__(self, total: int, stream: IO[str], enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream
        self.enabled = enabled
        self.label = ""
        self._start = time.monotonic()
        self._drawn = 0.0

    def advance(self, n: int = 1, label: str | None = None) -> None:
        """Count ``n`` more units done (under ``label``) and redraw if due."""
        self.done += n
        if label is not None:
            self.label = label
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= 0.1 or self.done >= self.total):
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        rate = self.done / max(now - self._start, 1e-9)
        self.stream.write(
            f"\r{self.label[:24]:<24} [{bar:<30}] {self.done}/{self.total} days "
            f"{frac:4.0%} {rate:,.0f}/s"
        )
        self.stream.flush()

    def close(self) -> None:
        """End the line of the bar."""
        if self.enabled and self.done:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def open_fleet(scenario: Scenario, now: float, seed: int | None, db: str | None) -> Fleet:
    """The scenario's fleet as a server started at ``now`` (clock frozen) would have it.

    Its timeline is loaded and what was due at the start applied (bursts shape the counts),
    without push: nothing is sent, and no push setting (a CA file) is read.
    """
    store = Store(Path(db), check_writable=False) if db else Store()
    clock = SimClock(start=now, speed=0)
    fleet = Fleet(scenario, clock, store, seed=seed)
    timeline_of(fleet, store, Scheduler(clock))
    return fleet


def _query_date(text: str) -> str:
    """Accept YYYY-MM-DD besides the device's own forms (YYYYMMDD, today, ...)."""
    m = _ISO_DAY.match(text)
    return f"{m[1]}{m[2]}{m[3]}" if m else text


def chunks_for(device: Device, query: dict[str, str], data: str) -> Iterator[Chunk]:
    """Validate a query as the HTTP export does (ValidationFailed if bad); its bins."""
    now = device.clock.now()
    if data == "traffic":
        q = a3dpc.parse_export_query(query, device, now, ("minute", "hour", "day"))
        return device.traffic(q.start, q.end, q.resolution, q.now)
    q = a3dpc.parse_export_query(query, device, now, ("hour", "day"))
    return device.occupancy_peaks(q.start, q.end, q.resolution, q.now)


def encoder(fmt: str, data: str) -> render.Encoder:
    """The HTTP export's encoder for a format and kind of data."""
    names = a3dpc.TRAFFIC if data == "traffic" else a3dpc.PEAK
    return render.csv_encoder(names) if fmt == "csv" else render.json_encoder(names)


def write_export(
    device: Device,
    query: dict[str, str],
    fmt: str,
    data: str,
    out: IO[bytes],
    progress: Progress | None = None,
) -> None:
    """Write one device's export to ``out``; raise ValidationFailed for a bad query."""
    chunks = chunks_for(device, query, data)

    def counted(chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        for c in chunks:
            if progress is not None:
                progress.advance(1, device.id)
            yield c

    for piece in encoder(fmt, data)(counted(chunks)):
        out.write(piece.encode())


def days_between(device: Device, query: dict[str, str]) -> int:
    """How many local days a query spans (for the progress bar; 1 if it is invalid)."""
    now = device.clock.now()
    try:
        q = a3dpc.parse_export_query(query, device, now, ("minute", "hour", "day"))
    except ValidationFailed:
        return 1
    first = max(device.local_date(q.start), device.installed)
    last = min(device.local_date(max(q.start, q.end - 1e-6)), device.local_date(now))
    return max((last - first).days + 1, 1)


def run(args: argparse.Namespace, scenario: Scenario) -> int:
    """Run ``p8815-sim export``; the exit status."""
    now = args.now
    if now is None:
        now = scenario.start.timestamp() if scenario.start is not None else wall_time()
    if args.db and not Path(args.db).is_file():
        print(f"p8815-sim export: --db {args.db}: no such file", file=sys.stderr)
        return 2
    fleet = open_fleet(scenario, now, args.seed, args.db)
    ids = args.device or [d.id for d in fleet.devices]
    unknown = [i for i in ids if i not in fleet.by_id]
    if unknown:
        known = ", ".join(fleet.by_id)
        print(f"p8815-sim export: no device {', '.join(unknown)} (known: {known})", file=sys.stderr)
        return 2
    if len(ids) > 1 and (args.output is None or "{device}" not in args.output):
        print(
            "p8815-sim export: several devices need -o with {device} in the file name, "
            "e.g. -o out/{device}.csv (or pick one with --device)",
            file=sys.stderr,
        )
        return 2
    query = {
        "start": _query_date(args.start),
        "end": _query_date(args.end),
        "resolution": args.resolution,
    }
    devices = [fleet.by_id[i] for i in ids]
    enabled = sys.stderr.isatty() if args.progress is None else args.progress
    total = sum(days_between(d, query) for d in devices)
    progress = Progress(total, sys.stderr, enabled)
    try:
        for device in devices:
            if args.output is None:
                write_export(device, query, args.format, args.data, sys.stdout.buffer, progress)
                sys.stdout.buffer.flush()
                continue
            path = Path(args.output.replace("{device}", device.id))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                write_export(device, query, args.format, args.data, f, progress)
    except ValidationFailed as e:
        progress.close()
        for p in e.problems:
            print(f"p8815-sim export: --{p.field}: {p.reason}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    progress.close()
    return 0
