"""``p8815-sim control``: one control-plane call made on several simulators (shards) at once.

Each target is a simulator's control plane: a base URL (``http://host:port``, the address of
any device it serves; ``/sim/v1`` is added), read from ``--target``, a ``--targets-file`` (one
URL a line, ``#`` comments) or a ``--ready-file``. The call goes to every target in turn;
each answer is printed as ``URL STATUS BODY``; the exit status is 0 only if every target
answered 2xx.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from simulator.schema.scenario import ControlConfig

PREFIX = "/sim/v1"
TOKEN_ENV = "P8815_SIM_CONTROL_TOKEN"
EPILOG = """\
examples:
  p8815-sim control --target http://127.0.0.1:8080 clock set 2026-03-01T09:00:00Z
  p8815-sim control --targets-file shards.txt clock advance 1h
  p8815-sim control --target=http://10.0.0.{1..4}:8080 reset    (bash expands the braces)
  p8815-sim control --ready-file ready.json request POST /sim/v1/faults '{"status": 503}'

The token is --token, else $P8815_SIM_CONTROL_TOKEN, else the scenarios' default."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``control`` subcommand to the command line."""
    c = sub.add_parser(
        "control",
        help="make one control-plane call on several simulators (e.g. every shard)",
        description="Make one control-plane call (/sim/v1/) on every target, in turn.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument(
        "--target", action="append", default=[], metavar="URL", help="a simulator (repeatable)"
    )
    c.add_argument("--targets-file", metavar="FILE", help="targets, one URL a line")
    c.add_argument("--ready-file", metavar="FILE", help="the target of a serve --ready-file")
    c.add_argument("--token", help="the control plane's bearer token")
    c.add_argument("--timeout", type=float, default=600.0, metavar="S", help="per target (600)")
    what = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    clock = what.add_parser("clock", help="read or move the simulated clock")
    how = clock.add_subparsers(dest="clock", metavar="set|advance|speed|freeze")
    how.add_parser("set", help="set the clock").add_argument("time", help="ISO 8601 or epoch")
    how.add_parser("advance", help="advance the clock").add_argument("by", help="e.g. 1h, 90s")
    how.add_parser("speed", help="change its speed").add_argument("speed", type=float)
    how.add_parser("freeze", help="freeze the clock")
    reset = what.add_parser("reset", help="back to the scenario's state")
    reset.add_argument("--keep-clock", action="store_true", help="leave the clock alone")
    what.add_parser("faults-clear", help="switch every fault off")
    req = what.add_parser("request", help="any call: METHOD PATH [JSON BODY]")
    req.add_argument("method", type=str.upper)
    req.add_argument("path", help="e.g. /sim/v1/events")
    req.add_argument("body", nargs="?", help="a JSON body")


def call_of(args: argparse.Namespace) -> tuple[str, str, Any]:
    """The call the action asks for: method, path under the control plane, JSON body."""
    if args.action == "clock":
        bodies = {
            None: ("GET", None),
            "set": ("POST", {"time": getattr(args, "time", None)}),
            "advance": ("POST", {"by": getattr(args, "by", None)}),
            "speed": ("POST", {"speed": getattr(args, "speed", None)}),
            "freeze": ("POST", None),
        }
        method, body = bodies[args.clock]
        return method, "/clock" + (f"/{args.clock}" if args.clock else ""), body
    if args.action == "reset":
        return "POST", "/reset", {"clock": not args.keep_clock}
    if args.action == "faults-clear":
        return "DELETE", "/faults", None
    body = None if args.body is None else json.loads(args.body)
    return args.method, "/" + args.path.strip("/").removeprefix("sim/v1").lstrip("/"), body


def targets_of(args: argparse.Namespace) -> list[str]:
    """Every target's control-plane base URL, in the order given."""
    urls = list(args.target)
    if args.targets_file:
        lines = Path(args.targets_file).read_text().splitlines()
        urls += [x.split("#", 1)[0].strip() for x in lines if x.split("#", 1)[0].strip()]
    if args.ready_file:
        urls.append(json.loads(Path(args.ready_file).read_text())["control"]["url"])
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise ValueError(f"target {u!r} is not an http:// or https:// URL")
    return [u.rstrip("/").removesuffix(PREFIX) + PREFIX for u in urls]


def run(args: argparse.Namespace) -> int:
    """``p8815-sim control``."""
    try:
        method, path, body = call_of(args)
        targets = targets_of(args)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"p8815-sim control: {e}", file=sys.stderr)
        return 2
    if not targets:
        print("p8815-sim control: no --target, --targets-file or --ready-file", file=sys.stderr)
        return 2
    token = args.token or os.environ.get(TOKEN_ENV) or ControlConfig.model_fields["token"].default
    ok = True
    for base in targets:
        status, text = send(method, base + path, body, token, args.timeout)
        ok = ok and status.isdigit() and 200 <= int(status) < 300
        print(f"{base} {status} {text}", flush=True)
    return 0 if ok else 1


def send(method: str, url: str, body: Any, token: str | None, timeout: float) -> tuple[str, str]:
    """Make one call: the status (``-`` for no answer) and the answer's text."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return str(r.status), r.read().decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as e:
        return str(e.code), e.read().decode("utf-8", "replace").strip()
    except (urllib.error.URLError, OSError) as e:
        return "-", f"no answer: {getattr(e, 'reason', e)}"
