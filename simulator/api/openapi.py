"""The OpenAPI 3.1 document of the control plane, its schemas taken from the pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from simulator.runtime.events import EVENT
from simulator.schema.timeline import FaultSpec

_ERROR = {
    "description": "bad input: the field at fault and why",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_OK = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", **schema},
    }


_FILTERS = [
    _query("device", "a device id"),
    _query("method", "an HTTP method (any case)"),
    _query("path", "the path, exactly, or a prefix ending in *", examples=["/a3dpc/api/*"]),
    _query("rpc_method", "the JSON-RPC method of the body (a3dpc.cgi, VAPIX JSON APIs)"),
    _query("status", "a status (0: dropped by a fault) or a class like 4xx", examples=["4xx"]),
    _query("since", "ISO 8601 (no offset: UTC) or epoch seconds; inclusive"),
    _query("until", "ISO 8601 (no offset: UTC) or epoch seconds; exclusive"),
    _query("clock", "the time since/until compare with", enum=["wall", "sim"], default="wall"),
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0},
     "description": "the last N matches"},
]  # fmt: skip


_PAGE = [
    _query("q", "a part of the id, serial or name, any case"),
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0},
     "description": "skip this many matching devices"},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0},
     "description": "at most this many (/fleet: 1-500, 50 by default; /devices: all)"},
]  # fmt: skip


def _op(summary: str, body: str | None = None, status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            status: _OK,
            "400": _ERROR,
            "401": {"description": "no or wrong token"},
            "404": {**_ERROR, "description": "no such device, event or fault"},
            "409": {**_ERROR, "description": "the device refuses it (e.g. a secondary)"},
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": body != "Reset",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


@cache
def document(p: str, *bodies: type[BaseModel]) -> dict[str, Any]:
    """The control plane's OpenAPI document: its prefix and request body models in.

    The models are named by their class (SetClock, Advance, Speed, Reset), as the
    operations below refer to them.
    """
    dev = [{"name": "device", "in": "path", "required": True, "schema": {"type": "string"}}]
    event_schema = EVENT.json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = {}
    for name, sch in [
        ("Event", event_schema),
        ("FaultSpec", _schema(FaultSpec)),
        *((model.__name__, _schema(model)) for model in bodies),
    ]:
        schemas.update(sch.pop("$defs", {}))
        schemas[name] = sch
    schemas["Advance"]["properties"]["by"] = {
        "oneOf": [{"type": "number"}, {"type": "string", "examples": ["15m", "1h30m", "2d"]}],
        "description": "seconds, or text like 90s, 15m, 1h30m, 2d",
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"message": {"type": "string"}, "field": {"type": "string"}},
                "required": ["message"],
            }
        },
    }
    paths: dict[str, Any] = {
        f"{p}/clock": {"get": _op("Read the simulated clock")},
        f"{p}/clock/set": {"post": _op("Set the clock (forward: due events run)", "SetClock")},
        f"{p}/clock/advance": {"post": _op("Advance, running everything due in order", "Advance")},
        f"{p}/clock/speed": {"post": _op("Change the speed (0 freezes)", "Speed")},
        f"{p}/clock/freeze": {"post": _op("Freeze the clock")},
        f"{p}/events": {
            "get": _op("Scheduled and applied events"),
            "post": _op("Inject an event now or at a time", "Event", "201"),
        },
        f"{p}/events/{{id}}": {
            "delete": {
                **_op("Cancel a pending event"),
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
            }
        },
        f"{p}/devices": {"get": {**_op("Devices and URLs, all or a page"), "parameters": _PAGE}},
        f"{p}/fleet": {"get": {**_op("A page of devices, live state"), "parameters": _PAGE}},
        f"{p}/devices/{{device}}/series": {
            "get": {
                **_op("Today's in/out and occupancy up to now, per minute or hour"),
                "parameters": [*dev, _query("resolution", "bins", enum=["minute", "hour"])],
            }
        },
        f"{p}/devices/{{device}}": {"get": {**_op("A device's live state"), "parameters": dev}},
        f"{p}/devices/{{device}}/reset": {
            "post": {**_op("Reset one device to its scenario state"), "parameters": dev}
        },
        f"{p}/reset": {"post": _op("Reset the whole simulator (and clock)", "Reset")},
        f"{p}/journal": {
            "get": {**_op("Requests received, filtered, oldest first"), "parameters": _FILTERS},
            "delete": _op("Forget every journal"),
        },
        f"{p}/journal/{{device}}": {
            "get": {
                **_op("One device's requests, filtered, oldest first"),
                "parameters": [*dev, *_FILTERS],
            },
            "delete": {**_op("Forget the device's journal"), "parameters": dev},
        },
        f"{p}/push/{{device}}": {"get": {**_op("The push delivery log"), "parameters": dev}},
        f"{p}/faults": {
            "get": _op("Faults switched on"),
            "post": _op("Switch a fault on", "FaultSpec", "201"),
            "delete": _op("Switch every fault off"),
        },
        f"{p}/faults/{{id}}": {
            "delete": {
                **_op("Switch one fault off"),
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
            }
        },
        f"{p}/health": {
            "get": {**_op("Liveness: status, devices served, simulated time"), "security": []}
        },
        f"{p}/metrics": {
            "get": {
                "summary": "Prometheus metrics (text format 0.0.4)",
                "responses": {"200": {"description": "text/plain; version=0.0.4"}},
            }
        },
        f"{p}/openapi.json": {"get": {"summary": "This document (no token)", "security": []}},
        f"{p}/ca.pem": {
            "get": {"summary": "The CA of the devices' HTTPS certificates, PEM", "security": []}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "p8815-sim control plane",
            "version": "1",
            "description": "The simulator's own API, apart from the device's. See docs/CONTROL.md.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
