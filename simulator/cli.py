"""Command line: ``p8815-sim serve|validate|export|plot``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import ipaddress
import json
import logging
import os
import resource
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator import __version__, catalog, control_cli, export, plot, workers
from simulator.api.common import whole_number
from simulator.clock import SimClock
from simulator.runtime.push import PushSetupError
from simulator.runtime.runtime import Runtime
from simulator.schema.load import ScenarioError, load_scenario
from simulator.schema.scenario import ControlConfig, Scenario
from simulator.server import (
    Limits,
    ListenError,
    ServedFleet,
    parse_read_timeout,
    serve_fleet,
)
from simulator.store import Store
from simulator.timeparse import parse_start
from simulator.tls import TLSError

log = logging.getLogger("simulator")


def raise_open_files_limit() -> None:
    """Lift the soft limit of open files to the hard one: a fleet has a socket per device."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"--port: {text!r} is not a port number 0-65535")
    return int(text)


def _https_port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"--https-port: {text!r} is not a port number 0-65535")
    return int(text)


#: The first device's HTTPS port unless told (with ``--port 0``: free ports, as for HTTP).
HTTPS_PORT = 8443


def https_port_of(args: argparse.Namespace) -> int | None:
    """The HTTPS port of the first device: None if HTTPS is off."""
    if args.no_https:
        return None
    if args.https_port is not None:
        return int(args.https_port)
    return 0 if args.port == 0 else HTTPS_PORT


def _seconds(option: str) -> Callable[[str], float]:
    """A parser of a positive number of seconds for ``option``."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not 0 < v <= 86400:
            raise argparse.ArgumentTypeError(f"{option}: {text!r} is not seconds in (0, 86400]")
        return v

    return parse


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--max-connections: {text!r} is not a number >= 1")
    return int(text)


def _read_timeout(text: str) -> Limits:
    try:
        return parse_read_timeout(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--read-timeout: {e}") from None


def _level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"--log-level: {text!r} is not one of {LOG_LEVELS}")
    return text.lower()


def _version() -> str:
    try:
        return importlib.metadata.version("p8815-sim")
    except importlib.metadata.PackageNotFoundError:
        return __version__


LOG_LEVELS = ("debug", "info", "warning", "error")
LOOPS = ("auto", "asyncio", "uvloop")
ENV_PREFIX = "P8815_SIM_"
SERVE_EPILOG = """\
Every option can also be set by an environment variable P8815_SIM_<OPTION>, e.g.
P8815_SIM_PORT=0, P8815_SIM_IP_PER_DEVICE=1, P8815_SIM_SCENARIO=mall.yaml; the command
line wins. Connections are held to the limits of the device's web server: a request's
headers within 20-40 s, its body within 20 s (both extended by 1 s per 500 bytes received),
5 s of keep-alive between requests."""


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` subcommand to the command line."""
    s = sub.add_parser(
        "serve",
        help="serve the simulated device(s) over HTTP",
        description="Serve the simulated device(s) over HTTP until Ctrl-C or SIGTERM.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO",
        help="a shipped scenario's name (see 'scenarios') or a scenario file "
        "(default: the built-in default scenario)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address or name to listen on (127.0.0.1)")
    s.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="port of the first device (8080); device i: port + i; 0: a free port each",
    )
    s.add_argument(
        "--https-port",
        type=_https_port,
        metavar="PORT",
        help="HTTPS port of the first device (8443; with --port 0: free ports); device i: "
        "port + i; with --ip-per-device every address listens on it",
    )
    s.add_argument("--no-https", action="store_true", help="serve plain HTTP only")
    s.add_argument("--seed", type=int, metavar="N", help="override the scenario's seed")
    s.add_argument(
        "--start",
        type=parse_start,
        metavar="ISO8601",
        help="simulated time at start-up (default: the scenario's start, else now)",
    )
    s.add_argument(
        "--speed",
        type=_speed,
        metavar="X",
        help="simulated seconds per wall second (default: the scenario's, else 1; 0 freezes)",
    )
    s.add_argument(
        "--db",
        default=":memory:",
        metavar="FILE",
        help="SQLite file for durable state (default: in memory)",
    )
    s.add_argument(
        "--control-token",
        metavar="TOKEN",
        help="bearer token of the control plane /sim/v1/ (default: the scenario's control.token;"
        " on an address other than loopback, a random one, printed at start-up)",
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
    s.add_argument(
        "--workers",
        type=workers.parse_workers,
        default=1,
        metavar="K",
        help="serve the fleet (or its --shard) from K processes, one shard each; 'auto': one"
        " per core (1)",
    )
    s.add_argument(
        "--ready-file",
        metavar="PATH",
        help="once every device listens, write a JSON file with every URL and the control token",
    )
    s.add_argument(
        "--log-level",
        type=_level,
        default="info",
        metavar="LEVEL",
        help="debug, info (default), warning or error",
    )
    s.add_argument("--log-format", choices=("text", "json"), default="text", help="text or json")
    s.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    s.add_argument(
        "--read-timeout",
        type=_read_timeout,
        metavar="SPEC",
        help="time to send a request (default 'header=20-40,MinRate=500 body=20,MinRate=500')",
    )
    s.add_argument(
        "--keep-alive-timeout",
        type=_seconds("--keep-alive-timeout"),
        metavar="SECONDS",
        help="how long an idle connection waits for its next request (5)",
    )
    s.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="event loop: auto (default: uvloop if installed), asyncio or uvloop",
    )
    s.add_argument(
        "--max-connections",
        type=_count,
        metavar="N",
        help="open connections at most (default: what the open-files limit leaves room for)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command line."""
    p = argparse.ArgumentParser(
        prog="p8815-sim", description="A simulator of the AXIS P8815-2 3D People Counter."
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_parser(sub)
    v = sub.add_parser("validate", help="check a scenario file and report every problem")
    v.add_argument("scenario", metavar="SCENARIO", help="a shipped scenario's name or a file")
    export.add_parser(sub)
    plot.add_parser(sub)
    catalog.add_parser(sub)
    control_cli.add_parser(sub)
    return p


def env_defaults(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Take each option's default from ``P8815_SIM_<OPTION>`` if set; a bad value names it."""
    for action in parser._actions:  # argparse has no public list of a parser's options
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        var = ENV_PREFIX + action.dest.upper()
        raw = environ.get(var)
        if raw is None:
            continue
        if action.nargs == 0:  # a flag
            if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                parser.error(f"{var}={raw!r}: expected 1/true/yes/on or 0/false/no/off")
            value: Any = raw.lower() in ("1", "true", "yes", "on")
        else:
            try:
                value = action.type(raw) if callable(action.type) else raw
            except (argparse.ArgumentTypeError, ValueError) as e:
                msg = str(e).split(": ", 1)[-1] if str(e).startswith("--") else str(e)
                parser.error(f"{var}: {msg or repr(raw)}")
            if action.choices is not None and value not in action.choices:
                parser.error(f"{var}={raw!r}: expected one of {', '.join(action.choices)}")
        parser.set_defaults(**{action.dest: value})


def parse_args(argv: list[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """The command line; ``serve`` takes what it does not say from the environment."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        return args
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    env_defaults(sub.choices["serve"], environ)
    return parser.parse_args(argv)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str, fmt: str) -> None:
    """Log to stderr at ``level``, as text or JSON lines."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def load(path: str | None) -> Scenario:
    """The scenario at ``path``, or the built-in default."""
    return Scenario() if path is None else load_scenario(path)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (a name is looked up)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def control_token(args: argparse.Namespace, scenario: Scenario) -> tuple[str | None, bool]:
    """The control plane's token, and whether it was generated for this run.

    The scenario's default token is only kept on loopback; on any other address a random one
    is made unless a token was chosen (``--control-token`` or one set in the scenario).
    """
    if args.control_token:
        return args.control_token, False
    token = scenario.control.token
    default = ControlConfig.model_fields["token"].default
    if token != default or is_loopback(args.host):
        return token, False
    return secrets.token_urlsafe(24), True


def write_ready_file(path: str, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (a temporary file, then a rename), mode 600."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def ready_document(served: ServedFleet, token: str | None) -> dict[str, Any]:
    """What ``--ready-file`` holds: the scenario, the control plane's URL and token, each device."""
    fleet = served.runtime.fleet
    first = next(iter(served.addresses), None)
    devices = [
        {
            "id": d.id,
            "model": d.cfg.model,
            "serial": d.cfg.serial_upper,
            "url": served.url(d.id),
            "https_url": served.https_url(d.id),
        }
        for d in fleet.served
        if d.id in served.addresses
    ]
    url = None if first is None else f"{served.url(first)}/sim/v1/"
    return {
        "scenario": fleet.scenario.name,
        "control": {"url": url, "token": token},
        "ca": served.ca_path,
        "devices": devices,
    }


def readiness_line(served: ServedFleet) -> str:
    """The line that says the simulator is up, naming where (the first and last few devices)."""
    fleet, clock = served.runtime.fleet, served.runtime.clock
    urls = [f"{i} {served.url(i)}" for i in served.addresses]
    where = ", ".join(urls) if len(urls) <= 4 else f"{', '.join(urls[:2])}, ..., {urls[-1]}"
    https = f"; HTTPS CA {served.ca_path}" if served.ca_path else ""
    return (
        f"p8815-sim: {len(urls)} device(s) of '{fleet.scenario.name}' listening: {where} "
        f"(simulated time {clock.now_datetime().isoformat()}, speed {clock.speed:g}{https}); "
        "Ctrl-C stops"
    )


class StartError(Exception):
    """The simulator cannot start: the message says why (exit code 1)."""


async def serve(
    scenario: Scenario,
    clock: SimClock,
    store: Store,
    args: argparse.Namespace,
    token_note: str = "",
) -> None:
    """Serve the scenario's fleet (its shard) until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    log.debug("event loop: %s", type(loop).__module__.partition(".")[0])
    access = logging.getLogger("simulator.access") if args.access_log else None
    try:
        runtime = Runtime(scenario, clock, store, seed=args.seed, shard=args.shard)
        served = await serve_fleet(
            runtime,
            args.host,
            args.port,
            ip_per_device=args.ip_per_device,
            https_port=https_port_of(args),
            limits=limits_of(args),
            access_log=access,
        )
    except BaseException:
        store.close()
        raise
    try:
        # Everything built so far lives as long as the server: keep it out of the garbage
        # collector's scans, so a request's short-lived objects are all it looks at.
        gc.collect()
        gc.freeze()
        runtime.pusher.on_warm = gc.freeze  # and the pushing devices' days, once worked out
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.ready_file:
            try:
                write_ready_file(args.ready_file, ready_document(served, runtime.control_token))
            except OSError as e:
                raise StartError(f"--ready-file {args.ready_file}: {e.strerror or e}") from None
        log.info(
            "%d device(s) of '%s' listening; at most %d connections open",
            len(served.addresses),
            scenario.name,
            served.guard.cap,
        )
        if token_note:
            print(token_note, flush=True)
        print(readiness_line(served), flush=True)
        await stop.wait()
    finally:
        await served.cleanup()
        store.close()


def check_ip_per_device(host: str, count: int) -> str | None:
    """Why ``--ip-per-device`` cannot give ``count`` devices an address from ``host``, if so."""
    try:
        first = ipaddress.ip_address(host)
        first + (count - 1)  # the last device's address must exist
    except ValueError:
        return f"--ip-per-device: {host!r} + {count - 1} is no IP address"
    if first.is_unspecified:
        return "--ip-per-device needs a specific --host, e.g. 127.0.1.1"
    return None


def limits_of(args: argparse.Namespace) -> Limits:
    """The connection limits the options ask for (Apache's defaults otherwise)."""
    limits = args.read_timeout or Limits()
    if args.keep_alive_timeout is not None:
        limits = replace(limits, keepalive_timeout=args.keep_alive_timeout)
    if args.max_connections is not None:
        limits = replace(limits, max_connections=args.max_connections)
    return limits


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``--loop`` names (None: asyncio's); StartError when uvloop is missing."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise StartError(
                "--loop uvloop: uvloop is not installed (pip install 'p8815-sim[fast]')"
            ) from None
        return None
    return uvloop.new_event_loop


def run_serve(args: argparse.Namespace, scenario: Scenario) -> int:
    """``p8815-sim serve``."""
    if args.ip_per_device and (why := check_ip_per_device(args.host, len(scenario.devices))):
        print(why, file=sys.stderr)
        return 2
    token, generated = control_token(args, scenario)
    control = scenario.control.model_copy(update={"token": token})
    scenario = workers.with_shared_ca(scenario.model_copy(update={"control": control}), os.environ)
    note = f"p8815-sim: control plane token (generated for this run): {token}" if generated else ""
    start = args.start
    if start is None and scenario.start is not None:
        start = scenario.start.timestamp()
    speed = args.speed if args.speed is not None else scenario.speed
    try:
        factory = loop_factory(args.loop)
    except StartError as e:
        print(f"p8815-sim: {e}", file=sys.stderr)
        return 2
    try:
        store = Store(Path(args.db) if args.db != ":memory:" else ":memory:")
    except Exception as e:  # StoreError: names the file and the problem
        print(f"p8815-sim: --db {e}", file=sys.stderr)
        return 2
    raise_open_files_limit()
    try:
        clock = SimClock(start=start, speed=speed, anchor_wall=workers.wall_anchor(os.environ))
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(scenario, clock, store, args, note))
    except PushSetupError as e:
        print(f"p8815-sim: {e}", file=sys.stderr)
        return 2
    except (ListenError, StartError, TLSError) as e:
        print(f"p8815-sim: {e}", file=sys.stderr)
        return 1
    return 0


def run_workers(args: argparse.Namespace, scenario: Scenario, argv: list[str]) -> int:
    """``p8815-sim serve --workers K``: K worker processes, one control plane (one token)."""
    token, generated = control_token(args, scenario)
    note = f"p8815-sim: control plane token (generated for this run): {token}" if generated else ""
    return workers.run(args, scenario, argv, token, note, write_ready_file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``p8815-sim`` and ``python -m simulator``."""
    args = parse_args(argv, os.environ)
    if args.command == "scenarios":
        return catalog.run(args)
    if args.command == "control":
        return control_cli.run(args)
    setup_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
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
    if args.workers > 1:
        return run_workers(args, scenario, sys.argv[1:] if argv is None else argv)
    return run_serve(args, scenario)
