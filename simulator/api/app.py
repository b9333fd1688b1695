"""The aiohttp application: routing by local address, Digest auth, errors, the device APIs."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.api import a3dpc
from simulator.api.auth import role_allows
from simulator.api.common import DEVICE, FLEET, security_level
from simulator.api.errors import error_middleware
from simulator.fleet import Fleet

UNAUTHORIZED_BODY = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    "<title>401 Unauthorized</title>\n</head><body>\n<h1>Unauthorized</h1>\n"
    "<p>This server could not verify that you\nare authorized to access the document\n"
    "requested.</p>\n</body></html>\n"
)


@web.middleware
async def device_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the device by the local address the request arrived on."""
    fleet = request.app[FLEET]
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    device = fleet.resolve(sockname)
    if device is None:
        raise web.HTTPNotFound(text="no simulated device at this address\n")
    request[DEVICE] = device
    return await handler(request)


def _challenge(header: str) -> web.Response:
    return web.Response(
        status=401,
        text=UNAUTHORIZED_BODY,
        content_type="text/html",
        headers={"WWW-Authenticate": header},
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP Digest as the device's Apache does it; too low a role gets a new challenge."""
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404/405 without asking for credentials
    device = request[DEVICE]
    checker = request.app[FLEET].auth[device.id]
    result = checker.check(request.method, request.path_qs, request.headers.get("Authorization"))
    if not result.ok:
        return _challenge(checker.challenge(stale=result.stale))
    if result.role is None or not role_allows(result.role, security_level(request)):
        return _challenge(checker.challenge())
    request["user"] = result.user
    return await handler(request)


def create_app(fleet: Fleet) -> web.Application:
    """Build the simulator's web application for a fleet."""
    app = web.Application(middlewares=[error_middleware, device_middleware, auth_middleware])
    app[FLEET] = fleet
    app.add_routes(a3dpc.routes)
    return app
