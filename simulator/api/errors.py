"""Every exception a device API handler raised, turned into the device's response, in one place."""

from __future__ import annotations

import logging

from aiohttp import web

from simulator.api.a3dpc import A3DPC_CGI
from simulator.api.jsonrpc import RPC, Call, Rpc
from simulator.errors import DeviceError, ValidationFailed
from simulator.store import StoreError

log = logging.getLogger("simulator.api")


def validation_body(exc: ValidationFailed) -> dict[str, object]:
    """The export APIs' 400 body: message 'Validation failed' and the fields at fault."""
    return {
        "error": {
            "message": "Validation failed",
            "error": [{"field": p.field, "reason": p.reason} for p in exc.problems],
        }
    }


def error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The device's response for an exception a handler raised (never a traceback).

    A JSON-RPC call's errors are answered by its API (unexpected ones as its internal
    error); a device error raised elsewhere in the a3dpc envelope, without context or method.
    """
    if isinstance(exc, ValidationFailed):
        return web.json_response(validation_body(exc), status=400)
    rpc: Rpc | None = request.get(RPC)
    if rpc is None and isinstance(exc, DeviceError):
        rpc = Rpc(A3DPC_CGI, Call())
    if rpc is not None and rpc.api.answers(exc):
        return rpc.api.error_response(rpc.call, exc)
    if isinstance(exc, StoreError):  # e.g. the database locked by another process: retry
        log.warning("store write failed on %s %s: %s", request.method, request.path, exc)
        if rpc is None:
            return web.Response(status=503, text="503 Service Unavailable\n")
    else:
        log.exception("unexpected failure on %s %s", request.method, request.path, exc_info=exc)
    if rpc is not None:
        return rpc.api.error_response(rpc.call, exc)
    return web.Response(status=500, text="500 Internal Server Error\n")
