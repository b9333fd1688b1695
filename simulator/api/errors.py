"""Every domain error turned into the device's exact response, in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulator.errors import DeviceError, ValidationFailed
from simulator.store import StoreError

log = logging.getLogger("simulator.api")

@dataclass
class RpcCall:
    """What is known of a JSON-RPC style request, kept for its (error) response."""

    context: Any = None
    method: Any = None


RPC_CALL = web.RequestKey("rpc_call", RpcCall)  # set by control-method handlers


def validation_body(exc: ValidationFailed) -> dict[str, object]:
    """The export APIs' 400 body: message 'Validation failed' and the fields at fault."""
    return {
        "error": {
            "message": "Validation failed",
            "error": [{"field": p.field, "reason": p.reason} for p in exc.problems],
        }
    }


def error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The device's response for an exception a handler raised (never a traceback)."""
    from simulator.api.a3dpc import rpc_response

    if isinstance(exc, ValidationFailed):
        return web.json_response(validation_body(exc), status=400)
    call = request.get(RPC_CALL)
    if isinstance(exc, DeviceError):
        return rpc_response(call or RpcCall(), error={"code": exc.code, "message": exc.message})
    if isinstance(exc, StoreError):  # e.g. the database locked by another process: retry
        log.warning("store write failed on %s %s: %s", request.method, request.path, exc)
        if call is None:
            return web.Response(status=503, text="503 Service Unavailable\n")
    else:
        log.exception("unexpected failure on %s %s", request.method, request.path, exc_info=exc)
    if call is not None:
        return rpc_response(call, error={"code": 1100, "message": "Internal error"})
    return web.Response(status=500, text="500 Internal Server Error\n")
