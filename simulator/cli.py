"""Command line: ``p8815-sim serve|validate|export|plot``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import logging
import resource
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from simulator import export, plot
from simulator.api.app import create_app
from simulator.api.common import whole_number
from simulator.clock import SimClock, check_time
from simulator.fleet import Fleet
from simulator.push import PushSetupError
from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.store import Store

log = logging.getLogger("simulator")


def parse_start(text: str) -> float:
    """Parse an ISO 8601 time (a time without an offset is UTC) to epoch seconds."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--start: {text!r} is not ISO 8601, e.g. 2024-05-04T10:00:00+02:00"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    try:
        return check_time(t.timestamp(), "--start")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def raise_open_files_limit() -> None:
    """Lift the soft limit of open files to the hard one: a fleet has a socket per device."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def device_address(host: str, port: int, index: int, ip_per_device: bool) -> tuple[str, int]:
    """Where device ``index`` listens: its own port (``port + index``) or its own IP address."""
    if not ip_per_device:
        return host, port + index
    return str(ipaddress.ip_address(host) + index), port


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N`` (0 <= I < N) for ``--shard``."""
    i_text, sep, n_text = text.partition("/")
    i, n = whole_number(i_text), whole_number(n_text)
    if sep and i is not None and n is not None and i < n:
        return i, n
    raise argparse.ArgumentTypeError(f"--shard: {text!r} is not I/N with 0 <= I < N, e.g. 0/4")


def _speed(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed: {text!r} is not a number") from None
    if v < 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError("--speed must be a finite number >= 0")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command line."""
    p = argparse.ArgumentParser(prog="p8815-sim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the simulated device(s) over HTTP")
    s.add_argument("scenario", nargs="?", help="scenario file (default: the built-in store)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    s.add_argument(
        "--port", type=int, default=8080, help="port of the first device (8080); device i: +i"
    )
    s.add_argument("--seed", type=int, help="override the scenario's seed")
    s.add_argument(
        "--start", type=parse_start, help="simulated time at start-up, ISO 8601 (default: now)"
    )
    s.add_argument(
        "--speed", type=_speed, help="simulated seconds per wall second (default 1; 0 freezes)"
    )
    s.add_argument("--db", default=":memory:", help="SQLite file for durable state (in memory)")
    s.add_argument(
        "--control-token",
        help="bearer token of the control plane /sim/v1/ (default: the scenario's control.token)",
    )
    s.add_argument(
        "--ip-per-device",
        action="store_true",
        help="device i listens on --host + i (e.g. 127.0.1.1, 127.0.1.2, ...), all on --port",
    )
    s.add_argument(
        "--shard",
        type=parse_shard,
        default=(0, 1),
        metavar="I/N",
        help="serve only shard I of N of the fleet (sites kept whole; device i stays on port+i)",
    )
    v = sub.add_parser("validate", help="check a scenario file and report every problem")
    v.add_argument("scenario")
    export.add_parser(sub)
    plot.add_parser(sub)
    return p


def load(path: str | None) -> Scenario:
    """The scenario at ``path``, or the built-in default."""
    return Scenario() if path is None else load_scenario(path)


async def serve(
    scenario: Scenario,
    host: str,
    port: int,
    clock: SimClock,
    store: Store,
    seed: int | None,
    shard: tuple[int, int] = (0, 1),
    ip_per_device: bool = False,
) -> None:
    """Run the simulator until SIGINT or SIGTERM."""
    raise_open_files_limit()
    fleet = Fleet(scenario, clock, store, seed=seed, shard=shard)
    runner = web.AppRunner(create_app(fleet), access_log=None)
    await runner.setup()
    for device in fleet.served:
        addr = device_address(host, port, device.index, ip_per_device)
        site = web.TCPSite(runner, *addr)
        await site.start()
        fleet.bind(device, *addr)
        log.info("%s (%s) on http://%s:%d", device.id, device.cfg.model, *addr)
    # Everything built so far lives as long as the server: keep it out of the garbage
    # collector's scans, so a request's short-lived objects are all it looks at.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"p8815-sim: {len(fleet.served)} device(s) of '{scenario.name}' from "
        f"http://{host}:{port}/ (simulated time {clock.now_datetime().isoformat()}, "
        f"speed {clock.speed:g}); Ctrl-C stops",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        store.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``p8815-sim`` and ``python -m simulator``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        scenario = load(args.scenario)
    except ScenarioError as e:
        print(str(e), file=sys.stderr)
        return 2
    if args.command == "validate":
        print(f"{args.scenario}: valid ({len(scenario.devices)} device(s))")
        return 0
    if args.command == "export":
        return export.run(args, scenario)
    if args.command == "plot":
        return plot.run(args, scenario)
    if args.control_token:
        control = scenario.control.model_copy(update={"token": args.control_token})
        scenario = scenario.model_copy(update={"control": control})
    if args.ip_per_device:
        try:
            first = ipaddress.ip_address(args.host)
            first + (len(scenario.devices) - 1)  # the last device's address must exist
        except ValueError:
            print(
                f"--ip-per-device: {args.host!r} + {len(scenario.devices) - 1} is no IP address",
                file=sys.stderr,
            )
            return 2
        if first.is_unspecified:
            print("--ip-per-device needs a specific --host, e.g. 127.0.1.1", file=sys.stderr)
            return 2
    start = args.start
    if start is None and scenario.start is not None:
        start = scenario.start.timestamp()
    speed = args.speed if args.speed is not None else scenario.speed
    try:
        store = Store(Path(args.db) if args.db != ":memory:" else ":memory:")
    except Exception as e:  # sqlite3 errors name the problem
        print(f"--db {args.db}: {e}", file=sys.stderr)
        return 2
    clock = SimClock(start=start, speed=speed)
    try:
        asyncio.run(
            serve(
                scenario,
                args.host,
                args.port,
                clock,
                store,
                args.seed,
                args.shard,
                args.ip_per_device,
            )
        )
    except PushSetupError as e:
        print(f"p8815-sim: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"p8815-sim: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    return 0
