"""The control plane under ``/sim/v1/``: clock, events, faults, journal, state and reset.

It answers on every device's address, asks for its own bearer token (the scenario's
``control.token``, or ``--control-token``), never for device credentials, and answers bad
input with ``400 {"error": {"message": ..., "field": ...}}``. Handlers parse a body into a
pydantic model, make one call on the runtime and render JSON.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulator.api import fanout, openapi
from simulator.api.common import RUNTIME, whole_number
from simulator.api.faults import FAULTS, Faults
from simulator.clock import check_time, epoch_seconds
from simulator.device import Device
from simulator.errors import DeviceError
from simulator.journal import FILTERS as JOURNAL_FILTERS
from simulator.journal import Criteria, FilterError, parse_limit
from simulator.runtime.events import EVENT, EventError
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig
from simulator.schema.timeline import (
    EVENT_KINDS,
    FaultOffEvent,
    FaultOnEvent,
    FaultSpec,
    parse_duration,
)
from simulator.store import StoreError

log = logging.getLogger("simulator.control")

PREFIX = "/sim/v1"
# No token asked (the CA certificate is public: clients fetch it before anything else).
OPEN_PATHS = frozenset({f"{PREFIX}/openapi.json", f"{PREFIX}/health", f"{PREFIX}/ca.pem"})
CONSOLE_PATHS = frozenset({"/sim/", "/sim/index.html"})  # the web console's page: no token
CONSOLE_STATIC = "/sim/static/"  # ... nor for its files (simulator/api/console.py)
routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)


class ControlError(Exception):
    """Bad input to the control plane: the field at fault and why (400, or ``status``)."""

    def __init__(self, field: str | None, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


def error(status: int, message: str, field: str | None = None) -> web.Response:
    """The control plane's JSON error body."""
    body: dict[str, Any] = {"message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for i, p in enumerate(loc) if not (i == 0 and p in EVENT_KINDS)]
    return ".".join(parts) or "body"


def is_open(path: str) -> bool:
    """Whether a path under ``/sim/`` is answered without the token (health, the console)."""
    return path in OPEN_PATHS or path in CONSOLE_PATHS or path.startswith(CONSOLE_STATIC)


async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the bearer token, run a control handler, turn every failure into JSON."""
    token = request.app[RUNTIME].control_token
    if token is not None and not is_open(request.path):
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            resp = error(401, "missing or wrong control token (Authorization: Bearer <token>)")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="p8815-sim control"'
            return resp
    exc = request.match_info.http_exception
    if exc is not None:
        resp = error(exc.status, f"{exc.reason}: {request.method} {request.path}")
        if "Allow" in exc.headers:  # a 405 names the methods the path has
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    try:
        return await fanout.handle(request, handler)  # on every worker of --workers
    except ControlError as e:
        return error(e.status, e.message, e.field)
    except EventError as e:
        return error(400, str(e), e.field)
    except ValidationError as e:
        first = e.errors()[0]
        return error(400, first["msg"].removeprefix("Value error, "), _field(first["loc"]))
    except DeviceError as e:
        return error(409, e.message, "device")
    except web.HTTPException:
        raise
    except StoreError as e:  # e.g. the database locked by another process: try again
        log.warning("control plane store failure on %s %s: %s", request.method, request.path, e)
        return error(503, f"the simulator's database cannot be written now: {e}")
    except Exception:
        log.exception("control plane failure on %s %s", request.method, request.path)
        return error(500, "internal error of the simulator (logged)")


def _in_calendar(t: float, field: str) -> float:
    """A target time of the clock, or a 400 naming ``field`` when it leaves the calendar."""
    try:
        return check_time(t, "the clock")
    except ValueError as e:
        raise ControlError(field, str(e)) from None


async def _text(request: web.Request) -> str:
    """The request body as text, ``{}`` when empty; a 400 when it is not UTF-8."""
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError("body", "not valid JSON: the body is not UTF-8") from None
    return text if text.strip() else "{}"


async def _body(request: web.Request, model: type[M]) -> M:
    """The JSON body parsed into ``model`` (an empty body is ``{}``)."""
    text = await _text(request)
    try:
        return model.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        if first["type"] == "json_invalid":
            raise ControlError("body", f"not valid JSON: {first['msg']}") from None
        raise


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def _faults(request: web.Request) -> Faults:
    return request.app[FAULTS]


def _device(request: web.Request) -> Device:
    name = request.match_info["device"]
    device = _runtime(request).fleet.by_id.get(name)
    if device is None:
        raise ControlError("device", f"no device {name!r}", status=404)
    return device


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetClock(_In):
    """Body of POST /clock/set."""

    time: datetime

    _epoch = field_validator("time", mode="before")(epoch_seconds)

    @field_validator("time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


class Advance(_In):
    """Body of POST /clock/advance."""

    by: float = Field(ge=0)

    _by = field_validator("by", mode="before")(parse_duration)


class Speed(_In):
    """Body of POST /clock/speed."""

    speed: float = Field(ge=0, le=1e9)


class Reset(_In):
    """Body of POST /reset."""

    clock: bool = True


def clock_state(rt: Runtime) -> dict[str, Any]:
    """The clock as the control plane shows it."""
    now = rt.clock.now()
    nxt = rt.events.next_due()
    return {
        "now": _iso(now),
        "epoch": now,
        "speed": rt.clock.speed,
        "frozen": rt.clock.speed == 0,
        "start": _iso(rt.sim_start),
        "next_event": None if nxt is None else _iso(nxt),
    }


@routes.get(f"{PREFIX}/clock")
async def get_clock(request: web.Request) -> web.Response:
    """Read the simulated clock."""
    return web.json_response(clock_state(_runtime(request)))


@routes.post(f"{PREFIX}/clock/set")
async def set_clock(request: web.Request) -> web.Response:
    """Set the clock; forward, everything due on the way happens first, in order."""
    body, rt = await _body(request, SetClock), _runtime(request)
    t = _in_calendar(body.time.timestamp(), "time")
    if t >= rt.clock.now():
        rt.scheduler.advance_to(t)
    else:
        rt.clock.set(t)
    return web.json_response(clock_state(rt))


@routes.post(f"{PREFIX}/clock/advance")
async def advance_clock(request: web.Request) -> web.Response:
    """Advance the clock by a duration, running everything that falls due, in order."""
    body, rt = await _body(request, Advance), _runtime(request)
    ran = rt.scheduler.advance_to(_in_calendar(rt.clock.now() + body.by, "by"))
    return web.json_response({**clock_state(rt), "applied": [s.describe() for s in ran]})


@routes.post(f"{PREFIX}/clock/speed")
async def set_speed(request: web.Request) -> web.Response:
    """Change the clock's speed (0 freezes it)."""
    body, rt = await _body(request, Speed), _runtime(request)
    rt.clock.set_speed(body.speed)
    return web.json_response(clock_state(rt))


@routes.post(f"{PREFIX}/clock/freeze")
async def freeze_clock(request: web.Request) -> web.Response:
    """Freeze the clock where it is."""
    rt = _runtime(request)
    rt.clock.set_speed(0)
    return web.json_response(clock_state(rt))


@routes.get(f"{PREFIX}/events")
async def list_events(request: web.Request) -> web.Response:
    """Scheduled (pending) and applied events, in due order."""
    ev = _runtime(request).events
    return web.json_response(
        {
            "scheduled": [s.describe() for s in ev.scheduled()],
            "applied": [s.describe() for s in ev.applied()],
        }
    )


@routes.post(f"{PREFIX}/events")
async def inject_event(request: web.Request) -> web.Response:
    """Inject an event now (no at/after) or at a time; recorded before the answer."""
    text = await _text(request)
    try:
        event = EVENT.validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        if first["type"] == "json_invalid":
            raise ControlError("body", f"not valid JSON: {first['msg']}") from None
        if first["type"] in ("union_tag_not_found", "union_tag_invalid"):
            raise ControlError("kind", f"kind must be one of {', '.join(EVENT_KINDS)}") from None
        raise
    scheduled = _runtime(request).inject(event)
    return web.json_response(scheduled.describe(), status=201)


@routes.delete(f"{PREFIX}/events/{{id}}")
async def cancel_event(request: web.Request) -> web.Response:
    """Cancel a pending event."""
    raw = request.match_info["id"]
    event_id = whole_number(raw)
    if event_id is None:
        raise ControlError("id", f"{raw!r} is not an event id")
    if not _runtime(request).events.cancel(event_id):
        raise ControlError("id", f"no pending event {raw}", status=404)
    return web.json_response({"cancelled": event_id})


def device_state(runtime: Runtime, d: Device) -> dict[str, Any]:
    """A device's live state."""
    now = runtime.clock.now()
    rt = d.realtime(now)
    stats = d.frame_stats(now)
    pt = d.passthrough(now)
    state: dict[str, Any] = {
        "id": d.id,
        "model": d.cfg.model,
        "serial": d.cfg.serial_upper,
        "url": runtime.fleet.url_of(d),
        "site": d.cfg.site,
        "role": d.cfg.occupancy.role,
        "booted_at": _iso(d.boot_time(now)),
        "uptime_s": round(d.uptime(now), 3),
        "frames": stats.frames,
        "fps": round(stats.fps, 3),
        "occupancy": rt.occupancy,
        "total_in": rt.total_in,
        "total_out": rt.total_out,
        "door_closed": d.is_door_closed(now),
        "io_output": d.io_output(now),
        "passthrough": {"count": pt.count, "threshold": pt.threshold, "events": len(pt.events)},
        "replay": d.replay is not None,
        "push": None,
    }
    if d.cfg.push is not None:
        s = runtime.pusher.stats(d.id)
        state["push"] = {
            "url": d.cfg.push.url,
            "receiver_down": runtime.events.outages.down(d.id, now),
            "pending": runtime.pusher.pending(d.id),
            "produced": s.produced,
            "delivered": s.delivered,
            "failed_attempts": s.failed_attempts,
            "dropped": s.dropped,
            "store_error": runtime.pusher.store_health.error,
        }
    return state


def select_devices(runtime: Runtime, query: Mapping[str, str]) -> tuple[list[DeviceConfig], int]:
    """The devices matching ``q`` (id, serial or name, any case), paged by ``offset`` and
    ``limit`` (all by default), and how many match in all; a 400 naming a bad one."""
    bounds: dict[str, int | None] = {}
    for name in ("offset", "limit"):
        raw = query.get(name)
        bounds[name] = None if raw is None else whole_number(raw)
        if raw is not None and bounds[name] is None:
            raise ControlError(name, f"{name} must be a whole number, not {raw!r}")
    devices = runtime.fleet.all_configs()
    q = query.get("q", "").strip().lower()
    if q:
        devices = [d for d in devices if q in d.id.lower() or q in d.serial_upper.lower()
                   or q in (d.name or "").lower()]  # fmt: skip
    start = bounds["offset"] or 0
    limit = bounds["limit"]
    return devices[start : None if limit is None else start + limit], len(devices)


@routes.get(f"{PREFIX}/devices")
async def list_devices(request: web.Request) -> web.Response:
    """Devices: id, model, serial and address; all, or those matching ``q``, paged."""
    fleet = _runtime(request).fleet
    devices, total = select_devices(_runtime(request), request.query)
    out = []
    for d in devices:
        url = fleet.url_of_id(d.id)
        out.append({"id": d.id, "model": d.model, "serial": d.serial_upper, "url": url})
    paged = {"total": total} if request.query.keys() & {"q", "offset", "limit"} else {}
    return web.json_response({"devices": out, **paged})


@routes.get(f"{PREFIX}/devices/{{device}}")
async def get_device(request: web.Request) -> web.Response:
    """A device's live state."""
    return web.json_response(device_state(_runtime(request), _device(request)))


@routes.post(f"{PREFIX}/devices/{{device}}/reset")
async def reset_device(request: web.Request) -> web.Response:
    """Reset one device to its scenario state (the clock is left alone)."""
    rt, d = _runtime(request), _device(request)
    rt.reset(d.id)
    return web.json_response(device_state(rt, d))


@routes.post(f"{PREFIX}/reset")
async def reset_all(request: web.Request) -> web.Response:
    """Reset the whole simulator to its scenario state (and its clock, unless clock: false)."""
    body, rt = await _body(request, Reset), _runtime(request)
    rt.reset(clock=body.clock)
    return web.json_response(clock_state(rt))


def _journal_query(request: web.Request, device: str | None) -> web.Response:
    """The journal's entries meeting the query's filters, as JSON (400 naming a bad one)."""
    rt, query = _runtime(request), request.query
    unknown = set(query) - JOURNAL_FILTERS
    if unknown:
        raise ControlError(min(unknown), f"unknown filter {min(unknown)!r}")
    try:
        criteria = Criteria.parse(query)
        limit = None if "limit" not in query else parse_limit(query["limit"])
    except FilterError as e:
        raise ControlError(e.field, e.message) from None
    if criteria.device is not None and criteria.device not in rt.fleet.by_id:
        raise ControlError("device", f"no device {criteria.device!r}")
    journal = rt.journal
    out: dict[str, Any] = {} if device is None else {"device": device}
    out |= {"size": journal.size, "budget_bytes": journal.budget, "bytes": journal.bytes}
    out["entries"] = journal.entries(device, limit, criteria)
    return web.json_response(out)


@routes.get(f"{PREFIX}/journal")
async def get_journal(request: web.Request) -> web.Response:
    """The requests the devices received, oldest first, filtered (see docs/CONTROL.md)."""
    return _journal_query(request, None)


@routes.get(f"{PREFIX}/journal/{{device}}")
async def get_device_journal(request: web.Request) -> web.Response:
    """The last requests one device received, oldest first, filtered like ``/journal``."""
    return _journal_query(request, _device(request).id)


@routes.delete(f"{PREFIX}/journal")
async def clear_journal(request: web.Request) -> web.Response:
    """Forget every device's journal."""
    _runtime(request).journal.clear()
    return web.json_response({"cleared": True})


@routes.delete(f"{PREFIX}/journal/{{device}}")
async def clear_device_journal(request: web.Request) -> web.Response:
    """Forget one device's journal."""
    d = _device(request)
    _runtime(request).journal.clear(d.id)
    return web.json_response({"cleared": True, "device": d.id})


@routes.get(f"{PREFIX}/push/{{device}}")
async def push_log(request: web.Request) -> web.Response:
    """A device's push delivery log (bounded), oldest first."""
    d, rt = _device(request), _runtime(request)
    if d.cfg.push is None:
        raise ControlError("device", f"{d.id} has no push configured", status=404)
    log_ = [
        {
            "entry": x.entry,
            "interval_end": _iso(x.interval_end),
            "attempt": x.attempt,
            "status": x.status,
            "error": x.error,
            "latency_s": round(x.latency_s, 6),
            "sim_time": _iso(x.sim_time),
        }
        for x in rt.pusher.deliveries(d.id)
    ]
    h = rt.pusher.store_health
    store = {"error": h.error, "failures": h.failures, "total_failures": h.total_failures}
    return web.json_response({"device": d.id, "store": store, "deliveries": log_})


@routes.get(f"{PREFIX}/faults")
async def list_faults(request: web.Request) -> web.Response:
    """The faults switched on."""
    rules = _faults(request).rules.values()
    return web.json_response({"faults": [r.describe() for r in rules]})


@routes.post(f"{PREFIX}/faults")
async def add_fault(request: web.Request) -> web.Response:
    """Switch a fault on now (recorded as a fault_on event)."""
    spec, rt, table = await _body(request, FaultSpec), _runtime(request), _faults(request)
    if spec.device is not None and spec.device not in rt.fleet.by_id:
        raise ControlError("device", f"no device {spec.device!r}")
    if spec.id is None:
        spec = spec.model_copy(update={"id": table.next_id()})
    rt.inject(FaultOnEvent(kind="fault_on", fault=spec))
    rule = table.rules[str(spec.id)]
    return web.json_response(rule.describe(), status=201)


@routes.delete(f"{PREFIX}/faults")
async def clear_faults(request: web.Request) -> web.Response:
    """Switch every fault off."""
    n = len(_faults(request).rules)
    _runtime(request).inject(FaultOffEvent(kind="fault_off"))
    return web.json_response({"removed": n})


@routes.delete(f"{PREFIX}/faults/{{id}}")
async def remove_fault(request: web.Request) -> web.Response:
    """Switch one fault off."""
    rid = request.match_info["id"]
    if rid not in _faults(request).rules:
        raise ControlError("id", f"no fault {rid!r}", status=404)
    _runtime(request).inject(FaultOffEvent(kind="fault_off", id=rid))
    return web.json_response({"removed": 1})


@routes.get(f"{PREFIX}/health")
async def health(request: web.Request) -> web.Response:
    """Whether the simulator answers: no token needed, for probes and start-up scripts."""
    rt = _runtime(request)
    served = len(rt.fleet.served)
    return web.json_response({"status": "ok", "devices": served, "time": _iso(rt.clock.now())})


@routes.get(f"{PREFIX}/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document of the control plane (no token asked)."""
    return web.json_response(openapi.document(PREFIX, SetClock, Advance, Speed, Reset))
