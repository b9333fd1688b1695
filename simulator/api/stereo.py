"""The deprecated stereo API of the older AXIS 3D People Counter (model "3D People Counter").

Exports, today's counts, frame rate, I/O signal and parameters. Its JSON objects are written
with sorted keys, as the vendor's samples of ``counts.json`` and ``fps.json`` are.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from simulator.api import metrics, render
from simulator.api.common import calendar_day, device_of
from simulator.device import Chunk, Device
from simulator.errors import FieldProblem, ValidationFailed
from simulator.identity import UNTITLED
from simulator.model.bins import Resolution, local_midnight
from simulator.model.frames import WINDOWS

routes = web.RouteTableDef()

RESOLUTIONS: dict[str, Resolution] = {
    "minute": "minute",
    "60": "minute",
    "hour": "hour",
    "3600": "hour",
    "day": "day",
    "86400": "day",
}
SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_RESOLUTION: Resolution = "minute"
METHODS = ("open", "download")
CSV_HEADER = "Interval Start, Interval Start (Unixtime), In, Out\n"
DATE_FORMS = "YYYYMMDD, YYYYMMDD-YYYYMMDD, a comma-separated list of those, or all"
_ITEM_RE = re.compile(r"^(\d{8})(?:-(\d{8}))?$")


@dataclass(frozen=True)
class StereoQuery:
    """A validated export request: half-open epoch intervals, a resolution, the delivery."""

    spans: tuple[tuple[float, float], ...]
    resolution: Resolution
    download: bool
    label: str  # the dates, for the file name


def _day(text: str) -> date:
    """A YYYYMMDD calendar day; ValueError naming the problem."""
    try:
        return calendar_day(text)
    except ValueError as e:
        raise ValueError(f"'{text}': {e}") from None


def parse_dates(value: str) -> list[tuple[date, date]]:
    """Inclusive day ranges of a ``date`` value, sorted and merged; ValueError if malformed."""
    ranges = []
    for item in value.split(","):
        m = _ITEM_RE.match(item.strip())
        if not m:
            raise ValueError(
                f"'{item}' is not YYYYMMDD or YYYYMMDD-YYYYMMDD; expected {DATE_FORMS}"
            )
        first = _day(m[1])
        last = _day(m[2]) if m[2] else first
        if last < first:
            raise ValueError(f"'{item}' ends before it starts")
        ranges.append((first, last))
    ranges.sort()
    merged = [ranges[0]]
    for first, last in ranges[1:]:
        if first <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def parse_query(query: Mapping[str, str], device: Device) -> StereoQuery:
    """Validate date, resolution and method (empty means default); others are ignored."""
    problems: list[FieldProblem] = []
    raw_date = query.get("date") or "all"
    spans: tuple[tuple[float, float], ...] = ()
    label = "all"
    if raw_date == "all":
        spans = ((float(device.installed_at), math.inf),)
    else:
        try:
            ranges = parse_dates(raw_date)
        except ValueError as e:
            problems.append(FieldProblem("date", f"Invalid date '{raw_date}': {e}"))
        else:
            tz = device.tz
            spans = tuple(
                (float(local_midnight(tz, a)), float(local_midnight(tz, b + timedelta(days=1))))
                for a, b in ranges
            )
            first, last = ranges[0][0], ranges[-1][1]
            label = f"{first:%Y%m%d}" if first == last else f"{first:%Y%m%d}-{last:%Y%m%d}"
    raw_res = query.get("resolution") or DEFAULT_RESOLUTION
    if raw_res not in RESOLUTIONS:
        problems.append(
            FieldProblem(
                "resolution",
                f"Invalid resolution '{raw_res}', expected minute, hour, day, 60, 3600 or 86400",
            )
        )
    method = query.get("method") or "open"
    if method not in METHODS:
        problems.append(
            FieldProblem("method", f"Invalid method '{method}', expected open or download")
        )
    if problems:
        raise ValidationFailed(problems)
    return StereoQuery(spans, RESOLUTIONS[raw_res], method == "download", label)


def _chunks(device: Device, q: StereoQuery, now: float) -> Iterator[Chunk]:
    for start, end in q.spans:
        yield from device.traffic(start, end, q.resolution, now)


def _pieces(chunk: Chunk) -> Iterator[Iterator[tuple[str, int, int, int]]]:
    """A chunk's rows ``(start, unixtime, in, out)``, at most ``render.ROWS`` at a time."""
    starts, _ = render.labels(chunk)
    unix = (chunk.grid.start + 60 * chunk.starts[chunk.keep]).tolist()
    ins, outs = (v.tolist() for v in chunk.values)
    for part in render.slices(len(starts)):
        yield zip(starts[part], unix[part], ins[part], outs[part], strict=True)


def csv_body(chunks: Iterable[Chunk]) -> Iterator[str]:
    """The CSV export: the vendor's header, then ``start, unixtime, in, out`` per bin."""
    yield CSV_HEADER
    for chunk in chunks:
        for rows in _pieces(chunk):
            yield "".join(f"{s}, {u}, {a}, {b}\n" for s, u, a, b in rows)


def json_body(chunks: Iterable[Chunk], device: Device, resolution: Resolution) -> Iterator[str]:
    """The JSON export, as ``json.dumps(..., sort_keys=True)`` writes it (see FIDELITY.md)."""
    yield '{"data": ['
    sep = ""
    for chunk in chunks:
        for rows in _pieces(chunk):
            yield sep + ", ".join(
                f'{{"in": {a}, "interval_start": "{s}", "interval_start_unixtime": {u}, '
                f'"out": {b}}}'
                for s, u, a, b in rows
            )
            sep = ", "
    tail = {"name": app_name(device), "resolution": SECONDS[resolution], "serial": serial(device)}
    yield "], " + json.dumps(tail, sort_keys=True)[1:]


def app_name(device: Device) -> str:
    """The application's name: the scenario's device name, else the vendor's default."""
    return device.cfg.name or UNTITLED


def serial(device: Device) -> str:
    """The MAC address without separators, upper case, as the legacy API prints it."""
    return device.cfg.serial_upper


def _file_name(device: Device, q: StereoQuery, ext: str) -> str:
    return f"people-counter-{serial(device)}-{q.label}.{ext}"


@routes.get(r"/stereo/people-counter/export.{fmt:csv|json}")
async def export(request: web.Request) -> web.StreamResponse:
    """Foot traffic statistics per bin, inline (method=open) or as an attachment."""
    device = device_of(request)
    fmt = request.match_info["fmt"]
    now = device.clock.now()
    q = parse_query(request.query, device)
    chunks = metrics.counted(request, "stereo", fmt, q.resolution, _chunks(device, q, now))
    body = csv_body(chunks) if fmt == "csv" else json_body(chunks, device, q.resolution)
    disposition = "attachment" if q.download else "inline"
    headers = {"Content-Disposition": f'{disposition}; filename="{_file_name(device, q, fmt)}"'}
    return await render.stream(request, render.CONTENT_TYPES[fmt], body, headers)


def _dump(value: Any) -> bytes:
    """A JSON document as the legacy API writes it (keys sorted)."""
    return json.dumps(value, sort_keys=True).encode()


def _reply(body: bytes) -> web.Response:
    """A JSON answer."""
    return web.Response(body=body, content_type="application/json")


def _json(value: Any) -> web.Response:
    """A JSON answer of a document."""
    return _reply(_dump(value))


def counts_doc(device: Device, now: float) -> dict[str, Any]:
    """``counts.json``: in and out since the start of today, name, MAC and local time."""
    in_, out = device.totals_today(now)
    stamp = datetime.fromtimestamp(int(now), UTC).astimezone(device.tz)
    return {
        "in": in_,
        "name": app_name(device),
        "out": out,
        "serial": serial(device),
        "timestamp": f"{stamp:%Y%m%d%H%M%S}",
    }


@routes.get("/stereo/people-counter/counts.json")
async def counts(request: web.Request) -> web.Response:
    """In and out since the start of today, with the device's name, MAC and local time."""
    device = device_of(request)
    return _reply(counts_body(device, device.clock.now()))


def counts_body(device: Device, now: float) -> bytes:
    """``counts.json``'s answer at ``now``."""
    return _dump(counts_doc(device, now))


def fps_doc(device: Device, now: float) -> dict[str, Any]:
    """``fps.json``: the frame rate, its averages over the last 5/50/100/1000 frames, frames."""
    stats = device.frame_stats(now)
    body: dict[str, Any] = {"fps": round(stats.fps, 2), "frames": stats.frames}
    body.update({f"fps_{w}": round(stats.averages[w], 2) for w in WINDOWS})
    return body


@routes.get("/stereo/fps.json")
async def fps(request: web.Request) -> web.Response:
    """The real-time frame rate, its averages over the last 5/50/100/1000 frames, the counter."""
    device = device_of(request)
    return _reply(fps_body(device, device.clock.now()))


def fps_body(device: Device, now: float) -> bytes:
    """``fps.json``'s answer at ``now``."""
    return _dump(fps_doc(device, now))


@routes.get("/stereo/io.json")
async def io(request: web.Request) -> web.Response:
    """The output port's latest signal, as the JSON string "True" or "False"."""
    device = device_of(request)
    return _reply(io_body(device, device.clock.now()))


def io_body(device: Device, now: float) -> bytes:
    """``io.json``'s answer at ``now``: the output port's latest signal, "True" or "False"."""
    return _dump("True" if device.io_output(now) else "False")


#: The readings a client polls (GET, no query): path -> the JSON body at a simulated time.
#: Served by :mod:`simulator.api.fast` when a request for one arrives whole.
READINGS = {
    "/stereo/people-counter/counts.json": counts_body,
    "/stereo/fps.json": fps_body,
    "/stereo/io.json": io_body,
}


def _param_value(value: Any) -> Any:
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, date):
        return f"{value:%Y%m%d}"
    return value


#: The scenario sections that are settings of the device (crowd, counter errors, frame-rate
#: model, users, auth, product and push are the simulated world or secrets, not parameters).
PARAM_SECTIONS = ("occupancy", "passthrough", "io")
PARAM_SCALARS = ("model", "timezone", "ip_address", "firmware_version", "application_version")


def stereo_params(device: Device) -> dict[str, Any]:
    """Every device parameter of the scenario, flat, in the legacy API's snake_case."""
    cfg = device.cfg
    params: dict[str, Any] = {k: getattr(cfg, k) for k in PARAM_SCALARS}
    params.update(
        name=app_name(device),
        serial=serial(device),
        installed=device.installed,
        nominal_fps=cfg.frames.nominal_fps,
    )
    for section in PARAM_SECTIONS:
        for key, value in getattr(cfg, section).model_dump().items():
            params[f"{section}_{key}"] = value
    return {k: _param_value(v) for k, v in params.items()}


@routes.get("/stereo/params.json")
async def params(request: web.Request) -> web.Response:
    """All parameters currently set, as one JSON object."""
    return _json(stereo_params(device_of(request)))
