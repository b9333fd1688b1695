"""One middleware turns every domain error into the device's exact response."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.errors import DeviceError, ValidationFailed

log = logging.getLogger("simulator.api")

RPC_CALL = "p8815.rpc_call"  # request key: the RpcCall of a control-method request


def validation_body(exc: ValidationFailed) -> dict[str, object]:
    """The export APIs' 400 body: message 'Validation failed' and the fields at fault."""
    return {
        "error": {
            "message": "Validation failed",
            "error": [{"field": p.field, "reason": p.reason} for p in exc.problems],
        }
    }


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render ValidationFailed as 400, DeviceError in the control envelope, anything else safely."""
    from simulator.api.a3dpc import RpcCall, rpc_response

    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ValidationFailed as exc:
        return web.json_response(validation_body(exc), status=400)
    except DeviceError as exc:
        call = request.get(RPC_CALL) or RpcCall()
        return rpc_response(call, error={"code": exc.code, "message": exc.message})
    except Exception:
        log.exception("unexpected failure on %s %s", request.method, request.path)
        call = request.get(RPC_CALL)
        if call is not None:
            return rpc_response(call, error={"code": 1100, "message": "Internal error"})
        return web.Response(status=500, text="500 Internal Server Error\n")
