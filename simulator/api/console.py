"""The web console at ``/sim/`` and the control plane's endpoints it reads.

The page and its files (``simulator/console/``) are served without the token; the page asks
for the token once and sends it with every call. ``GET /sim/v1/fleet`` gives a page of
devices with their live state, ``GET /sim/v1/devices/{id}/series`` a device's day so far.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from aiohttp import web

from simulator.api.common import RUNTIME, whole_number
from simulator.api.control import (
    CONSOLE_STATIC,
    PREFIX,
    ControlError,
    _device,
    _iso,
    select_devices,
)
from simulator.api.faults import FAULTS
from simulator.device import Device
from simulator.model.bins import bin_peaks, bin_sums
from simulator.runtime.runtime import Runtime

routes = web.RouteTableDef()

#: The console's files: name -> content type (nothing else is served from the package).
FILES = {
    "index.html": "text/html",
    "console.js": "text/javascript",
    "console.css": "text/css",
}
#: The page runs only its own script and styles, and talks only to its own origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Rows of the fleet table per page unless the page asks for another size (at most MAX_PAGE).
DEFAULT_PAGE, MAX_PAGE = 50, 500


@cache
def _file(name: str) -> bytes:
    """A console file's bytes, read once from the package."""
    return resources.files("simulator").joinpath("console", name).read_bytes()


def _served(body: bytes, content_type: str) -> web.Response:
    """A console file's answer: never cached stale, confined by the CSP."""
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
        },
    )


def bind_host(request: web.Request) -> str | None:
    """The address the port this request arrived on is bound to (``0.0.0.0``: every one)."""
    transport = request.transport
    fleet = request.app[RUNTIME].fleet
    device = fleet.resolve(transport.get_extra_info("sockname") if transport else None)
    addr = None if device is None else fleet.address_of(device)
    return None if addr is None else addr[0]


def is_exposed(host: str | None) -> bool:
    """Whether a bind address is reachable from other machines (not loopback)."""
    if host is None:
        return False
    try:
        return not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host != "localhost"


@routes.get("/sim/")
@routes.get("/sim/index.html")
async def console_page(request: web.Request) -> web.Response:
    """The console page, telling the script the address it is bound to."""
    host = bind_host(request)
    html = _file("index.html").decode()
    marks = f'data-bind-host="{host or ""}" data-exposed="{str(is_exposed(host)).lower()}"'
    return _served(html.replace('data-bind-host=""', marks, 1).encode(), FILES["index.html"])


@routes.get(CONSOLE_STATIC + "{name}")
async def console_file(request: web.Request) -> web.Response:
    """The console's script and style sheet."""
    name = request.match_info["name"]
    if name not in FILES or name == "index.html":
        raise ControlError("name", f"no console file {name!r}", status=404)
    return _served(_file(name), FILES[name])


def _page_size(raw: str | None) -> int:
    """The ``limit`` of a fleet page: DEFAULT_PAGE, or 1..MAX_PAGE."""
    if raw is None:
        return DEFAULT_PAGE
    size = whole_number(raw)
    if size is None or not 1 <= size <= MAX_PAGE:
        raise ControlError("limit", f"limit must be a whole number from 1 to {MAX_PAGE}")
    return size


def fleet_row(runtime: Runtime, device: Device, fault_ids: list[str]) -> dict[str, Any]:
    """One row of the console's fleet table: identity, live counts, push and faults."""
    now = runtime.clock.now()
    r = device.realtime(now)
    push = None
    if device.cfg.push is not None:
        s = runtime.pusher.stats(device.id)
        push = {
            "receiver_down": runtime.events.outages.down(device.id, now),
            "pending": runtime.pusher.pending(device.id),
            "delivered": s.delivered,
            "failed_attempts": s.failed_attempts,
        }
    return {
        "id": device.id,
        "name": device.cfg.name,
        "model": device.cfg.model,
        "serial": device.cfg.serial_upper,
        "url": runtime.fleet.url_of(device),
        "site": device.cfg.site,
        "occupancy": r.occupancy,
        "total_in": r.total_in,
        "total_out": r.total_out,
        "door_closed": device.is_door_closed(now),
        "push": push,
        "faults": fault_ids,
    }


@routes.get(f"{PREFIX}/fleet")
async def fleet_page(request: web.Request) -> web.Response:
    """A page of devices (``q``, ``offset``, ``limit``) with their live state."""
    runtime = request.app[RUNTIME]
    query = {**request.query, "limit": str(_page_size(request.query.get("limit")))}
    devices, total = select_devices(runtime, query)
    rules = request.app[FAULTS].rules.values()
    rows = [
        fleet_row(runtime, d, [r.id for r in rules if r.spec.device in (None, d.id)])
        for d in (runtime.fleet.by_id[c.id] for c in devices)
    ]
    offset = whole_number(query.get("offset") or "0") or 0
    return web.json_response(
        {"total": total, "offset": offset, "limit": int(query["limit"]), "devices": rows}
    )


def day_series(device: Device, now: float, resolution: str) -> dict[str, Any]:
    """A device's local day up to ``now``: in, out and occupancy per minute or hour.

    Per minute, the occupancy is the estimate at each minute's end (the current minute so
    far); per hour, its peak, as the occupancy export gives it.
    """
    day = device.local_date(now)
    grid = device.grid(day)
    n = min(grid.index_of(now) + 1, grid.n)  # minutes begun so far, the current one partial
    obs = device.observed(day, now)
    occ, before = device.day_occupancy(day, now)
    if resolution == "minute":
        starts = np.arange(n, dtype=np.int64)
        ins, outs, peaks = obs.in_[:n], obs.out[:n], occ[:n]
    else:
        starts = grid.hour_starts[grid.hour_starts < n]
        ins, outs = bin_sums(obs.in_[:n], starts), bin_sums(obs.out[:n], starts)
        peaks = bin_peaks(occ[:n], before, starts)
    return {
        "device": device.id,
        "day": day.isoformat(),
        "timezone": device.cfg.timezone,
        "resolution": resolution,
        "now": _iso(now),
        "start": [int(grid.start + 60 * s) for s in starts],
        "wall_minute": [int(m) for m in grid.wall_minute[starts]],
        "in": [int(v) for v in ins],
        "out": [int(v) for v in outs],
        "occupancy": [int(v) for v in peaks],
    }


@routes.get(f"{PREFIX}/devices/{{device}}/series")
async def device_series(request: web.Request) -> web.Response:
    """Today's in/out and occupancy of a device up to now, per minute or hour."""
    device = _device(request)
    resolution = request.query.get("resolution", "minute")
    if resolution not in ("minute", "hour"):
        raise ControlError("resolution", "resolution must be minute or hour")
    now = request.app[RUNTIME].clock.now()
    return web.json_response(day_series(device, now, resolution))
