"""The a3dpc API of the AXIS P8815-2: exports, real-time occupancy and control methods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aiohttp import web

from simulator.api import metrics, render
from simulator.api.common import (
    DEVICE,
    api_version,
    calendar_day,
    device_of,
    requires,
)
from simulator.api.jsonrpc import Call, JsonRpcApi, Method
from simulator.device import Device, Realtime
from simulator.errors import (
    DeviceError,
    FieldProblem,
    InternalError,
    InvalidJson,
    InvalidParameter,
    MethodNotSupported,
    ParameterMissing,
    ValidationFailed,
    VersionNotSupported,
)
from simulator.model.bins import Resolution, local_midnight

routes = web.RouteTableDef()

DATE_FORMS = "YYYYMMDD, yesterday, today or now"


@dataclass(frozen=True)
class ExportQuery:
    """A validated export request: an interval of epoch seconds and a resolution."""

    start: float
    end: float
    resolution: Resolution
    now: float


def parse_date(value: str, device: Device, now: float) -> float:
    """Resolve a date parameter to epoch seconds in the device's local time; ValueError if bad."""
    today = device.local_date(now)
    if value == "now":
        return now
    if value == "today":
        return local_midnight(device.tz, today)
    if value == "yesterday":
        return local_midnight(device.tz, today - timedelta(days=1))
    try:
        day = calendar_day(value)
    except ValueError as e:
        why = f"expected {DATE_FORMS}" if str(e) == "not YYYYMMDD" else str(e)
        raise ValueError(f"Invalid date '{value}', {why}") from None
    return local_midnight(device.tz, day)


def parse_export_query(
    query: Any, device: Device, now: float, resolutions: tuple[str, ...]
) -> ExportQuery:
    """Validate start, end and resolution; raise ValidationFailed naming every bad field."""
    problems: list[FieldProblem] = []
    bounds: dict[str, float] = {}
    for name in ("start", "end"):
        raw = query.get(name)
        if raw is None or raw == "":
            problems.append(FieldProblem(name, f"Required, expected {DATE_FORMS}"))
            continue
        try:
            bounds[name] = parse_date(raw, device, now)
        except ValueError as e:
            problems.append(FieldProblem(name, str(e)))
    res = query.get("resolution")
    expected = ", ".join(resolutions[:-1]) + f" or {resolutions[-1]}"
    if res is None or res == "":
        problems.append(FieldProblem("resolution", f"Required, expected {expected}"))
    elif res not in resolutions:
        problems.append(
            FieldProblem("resolution", f"Invalid resolution '{res}', expected {expected}")
        )
    if "start" in bounds and "end" in bounds and bounds["start"] > bounds["end"]:
        problems.append(FieldProblem("start", "start must not be later than end"))
    if problems:
        raise ValidationFailed(problems)
    return ExportQuery(bounds["start"], bounds["end"], cast(Resolution, res), now)


TRAFFIC = ("in", "out")
PEAK = ("peak",)


def _encoder(fmt: str, names: tuple[str, ...]) -> render.Encoder:
    return render.csv_encoder(names) if fmt == "csv" else render.json_encoder(names)


@routes.get(r"/a3dpc/api/export/{fmt:csv|json}")
async def export_traffic(request: web.Request) -> web.StreamResponse:
    """Foot traffic statistics (in/out per bin)."""
    device = device_of(request)
    fmt = request.match_info["fmt"]
    q = parse_export_query(request.query, device, device.clock.now(), ("minute", "hour", "day"))
    chunks = device.traffic(q.start, q.end, q.resolution, q.now)
    chunks = metrics.counted(request, "a3dpc", fmt, q.resolution, chunks)
    return await render.stream(request, render.CONTENT_TYPES[fmt], _encoder(fmt, TRAFFIC)(chunks))


@routes.get(r"/a3dpc/api/export_occupancy/{fmt:csv|json}")
async def export_occupancy(request: web.Request) -> web.StreamResponse:
    """Occupancy statistics (peak estimated occupancy per bin)."""
    device = device_of(request)
    fmt = request.match_info["fmt"]
    q = parse_export_query(request.query, device, device.clock.now(), ("hour", "day"))
    chunks = device.occupancy_peaks(q.start, q.end, q.resolution, q.now)
    chunks = metrics.counted(request, "a3dpc", fmt, q.resolution, chunks)
    return await render.stream(request, render.CONTENT_TYPES[fmt], _encoder(fmt, PEAK)(chunks))


def local_iso(device: Device, t: float) -> str:
    """Local ISO 8601 time with its UTC offset, to the second."""
    return datetime.fromtimestamp(int(t), UTC).astimezone(device.tz).isoformat()


_REALTIME_BODY: dict[str, tuple[Realtime, bytes]] = {}


def realtime_body(device: Device, r: Realtime) -> bytes:
    """The occupancy API's JSON body for a reading (memoised while the reading is current)."""
    hit = _REALTIME_BODY.get(device.id)
    if hit is not None and hit[0] is r:
        return hit[1]
    # json.dumps's bytes for these keys, whole numbers and ASCII texts (a MAC, an ISO time)
    body = (
        f'{{"occupancy": {r.occupancy:d}, "serial": "{device.mac}", '
        f'"timestamp": "{local_iso(device, r.at)}", "total_in": {r.total_in:d}, '
        f'"total_out": {r.total_out:d}}}'
    ).encode()
    _REALTIME_BODY[device.id] = (r, body)
    return body


def occupancy_body(device: Device, now: float) -> bytes:
    """The occupancy API's answer at ``now``: real-time occupancy and the day's totals."""
    return realtime_body(device, device.realtime(now))


@routes.get("/a3dpc/api/occupancy")
async def occupancy(request: web.Request) -> web.Response:
    """Real-time estimated occupancy and the day's totals."""
    device = request[DEVICE]
    body = occupancy_body(device, device.clock.now())
    return web.Response(body=body, content_type="application/json")


#: The readings a client polls (GET, no query): path -> the JSON body at a simulated time.
#: Served by :mod:`simulator.api.fast` when a request for one arrives whole.
READINGS = {"/a3dpc/api/occupancy": occupancy_body}


# ---- POST /axis-cgi/a3dpc.cgi ---------------------------------------------------------------
API_VERSION = "1.0"
MAX_OCCUPANCY = 1_000_000


class A3dpcCgi(JsonRpcApi):
    """a3dpc.cgi: a text context, apiVersion checked before the method, method last."""

    error_type = DeviceError
    internal = InternalError
    invalid_json = InvalidJson
    missing = ParameterMissing
    unsupported_version = VersionNotSupported
    unknown_method = MethodNotSupported
    method_first = False

    def read_call(self, body: dict[str, Any], call: Call) -> Method:
        """Context (text or absent), apiVersion, then the method (echoed whatever it is)."""
        call.context = body.get("context")
        call.method = body.get("method")
        call.params = body.get("params")
        if call.context is not None and not isinstance(call.context, str):
            call.context = None
            raise InvalidParameter("context")
        self.check_version(body.get("apiVersion"))
        if call.method is None:
            raise ParameterMissing("method")
        return self.lookup(call.method)

    def read_version(self, version: Any) -> tuple[int, int] | None:
        """Only a text ``major[.minor]`` is a version."""
        return api_version(version) if isinstance(version, str) else None

    def malformed_version(self, version: Any) -> DeviceError:
        """2104, naming the parameter."""
        return InvalidParameter("apiVersion")


def _adjust(device: Device, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict) or "occupancy" not in params:
        raise ParameterMissing("params.occupancy")
    value = params["occupancy"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter("occupancy must be an integer")
    if not 0 <= value <= MAX_OCCUPANCY:
        raise InvalidParameter(f"occupancy must be 0..{MAX_OCCUPANCY}")
    device.adjust_occupancy(value, device.clock.now())
    return {
        "message": "Request received, use the occupancy API to confirm that the changes "
        "have taken effect."
    }


def _restart(device: Device, params: Any) -> dict[str, Any]:
    device.restart_passthrough(device.clock.now())
    return {}


A3DPC_CGI = A3dpcCgi(
    API_VERSION, {"adjustOccupancy": _adjust, "restartPassthroughCountdown": _restart}
)


@routes.post("/axis-cgi/a3dpc.cgi")
@requires("operator")
async def a3dpc_cgi(request: web.Request) -> web.Response:
    """The control methods: adjustOccupancy and restartPassthroughCountdown."""
    return await A3DPC_CGI.handle(request)
