"""The aiohttp application: routing by local address, Digest auth, errors, the device APIs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from time import time

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.api import a3dpc, control, faults, stereo, vapix
from simulator.api.auth import role_allows
from simulator.api.common import DEVICE, FLEET, route_policy
from simulator.api.errors import error_response
from simulator.fleet import Fleet

UNAUTHORIZED_BODY = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    "<title>401 Unauthorized</title>\n</head><body>\n<h1>Unauthorized</h1>\n"
    "<p>This server could not verify that you\nare authorized to access the document\n"
    "requested.</p>\n</body></html>\n"
)


def _challenge(header: str) -> web.Response:
    return web.Response(
        status=401,
        text=UNAUTHORIZED_BODY,
        content_type="text/html",
        headers={"WWW-Authenticate": header},
    )


@web.middleware
async def device_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Route to the device of the local address, then check Digest credentials like its Apache.

    A user whose role is too low gets a new challenge, as Apache's failed ``Require`` does.
    """
    fleet = request.app[FLEET]
    if request.path.startswith("/sim/"):
        return await control.guard(request, handler)  # the control plane: its own token
    transport = request.transport
    device = fleet.resolve(transport.get_extra_info("sockname") if transport else None)
    if device is None:
        raise web.HTTPNotFound(text="no simulated device at this address\n")
    request[DEVICE] = device
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404/405 without asking for credentials
    serves, level = route_policy(device.cfg.model, request)
    if not serves:
        raise web.HTTPNotFound()  # another model's API: as if the path did not exist
    checker = fleet.auth[device.id]
    result = checker.check(request.method, request.path_qs, request.headers.get("Authorization"))
    journal, now = fleet.journal, fleet.clock.now()
    if not result.ok:
        journal.record(device.id, now, request.method, request.path_qs, 401, result.reason)
        return _challenge(checker.challenge(stale=result.stale))
    if result.role is None or not role_allows(result.role, level):
        journal.record(device.id, now, request.method, request.path_qs, 401, "forbidden")
        return _challenge(checker.challenge())
    try:
        if fleet.faults.active and (rule := fleet.faults.pick(device.id, request.path)):
            resp = await rule.chain(request, partial(_answer, request, handler))
        else:
            resp = await handler(request)
    except web.HTTPException as e:
        journal.record(device.id, now, request.method, request.path_qs, e.status, "ok", result.user)
        raise
    except faults.ConnectionDropped:
        journal.record(device.id, now, request.method, request.path_qs, 0, "ok", result.user)
        return web.Response(status=499)  # nobody receives it: the connection is gone
    except Exception as exc:
        resp = error_response(request, exc)
    log = journal.logs.get(device.id) or journal.log(device.id)
    log.append((time(), now, request.method, request.path_qs, resp.status, "ok", result.user))
    return resp


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The device's own answer under a fault (errors converted, as without one)."""
    try:
        return await handler(request)
    except (web.HTTPException, faults.ConnectionDropped):
        raise
    except Exception as exc:
        return error_response(request, exc)


def create_app(fleet: Fleet) -> web.Application:
    """Build the simulator's web application for a fleet."""
    app = web.Application(middlewares=[device_middleware])
    app[FLEET] = fleet
    app.add_routes(a3dpc.routes)
    app.add_routes(stereo.routes)
    app.add_routes(vapix.routes)
    app.add_routes(control.routes)
    app.on_startup.append(boot_devices)
    app.cleanup_ctx.append(push_ctx)
    app.cleanup_ctx.append(events_ctx)
    return app


async def boot_devices(app: web.Application) -> None:
    """The devices boot when their web server starts: their frame counters count from here."""
    fleet = app[FLEET]
    at = float(int(fleet.clock.now()))
    for device in fleet.devices:
        if device.booted_at is None:
            device.booted_at = at


async def push_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the fleet's data push while the application runs; stop and await it after."""
    pusher = app[FLEET].pusher
    if pusher.active:
        await pusher.start()
    yield
    await pusher.stop()


async def events_ctx(app: web.Application) -> AsyncIterator[None]:
    """Apply timeline events as the running clock reaches them; stop and await it after."""
    events = app[FLEET].events
    events.run_due()
    task = asyncio.create_task(events.run(), name="sim-events")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
