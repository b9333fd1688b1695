"""The aiohttp application: routing by local address, Digest auth, errors, the device APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.api import a3dpc, control, faults, stereo, vapix
from simulator.api.auth import DigestAuthenticator, role_allows
from simulator.api.common import DEVICE, RUNTIME, route_policy
from simulator.api.errors import error_response
from simulator.api.faults import FAULTS, Faults
from simulator.clock import wall_time
from simulator.journal import BODY_LIMIT, Journal
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig

#: The Digest checker of each device, by device id.
AUTH = web.AppKey("auth", dict[str, DigestAuthenticator])

UNAUTHORIZED_BODY = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    "<title>401 Unauthorized</title>\n</head><body>\n<h1>Unauthorized</h1>\n"
    "<p>This server could not verify that you\nare authorized to access the document\n"
    "requested.</p>\n</body></html>\n"
)


def authenticator_for(cfg: DeviceConfig) -> DigestAuthenticator:
    """The Digest checker of one device: realm AXIS_<serial>, its users and auth policy."""
    return DigestAuthenticator(
        realm=f"AXIS_{cfg.serial_upper}",
        users={u.name: (u.password, u.role) for u in cfg.users},
        algorithm=cfg.auth.algorithm,
        nonce_lifetime=cfg.auth.nonce_lifetime_s,
        strict_nc=cfg.auth.strict_nc,
    )


class Authenticators(dict[str, DigestAuthenticator]):
    """The Digest checker of each device by id, each built when its device is first asked."""

    def __init__(self, configs: dict[str, DeviceConfig]) -> None:
        super().__init__()
        self._configs = configs

    def __missing__(self, device_id: str) -> DigestAuthenticator:
        """Build a device's checker (KeyError for an unknown device)."""
        checker = self[device_id] = authenticator_for(self._configs[device_id])
        return checker


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
    app = request.app
    runtime = app[RUNTIME]
    if request.path.startswith("/sim/"):
        return await control.guard(request, handler)  # the control plane: its own token
    transport = request.transport
    device = runtime.fleet.resolve(transport.get_extra_info("sockname") if transport else None)
    if device is None:
        raise web.HTTPNotFound(text="no simulated device at this address\n")
    request[DEVICE] = device
    t0, wall, now = perf_counter(), wall_time(), runtime.clock.now()
    record = partial(_record, request, runtime.journal, device.id, wall, now, t0)
    if (miss := request.match_info.http_exception) is not None:
        await record(miss.status, "none")
        return await handler(request)  # 404/405 without asking for credentials
    serves, level = route_policy(device.cfg.model, request)
    if not serves:
        await record(404, "none")
        raise web.HTTPNotFound()  # another model's API: as if the path did not exist
    checker = app[AUTH][device.id]
    result = checker.check(request.method, request.path_qs, request.headers.get("Authorization"))
    if not result.ok:
        await record(401, result.reason)
        return _challenge(checker.challenge(stale=result.stale))
    if result.role is None or not role_allows(result.role, level):
        await record(401, "forbidden", result.user)
        return _challenge(checker.challenge())
    try:
        table = app[FAULTS]
        if table.active and (rule := table.pick(device.id, request.path)):
            resp = await rule.chain(request, partial(_answer, request, handler))
        else:
            resp = await handler(request)
    except web.HTTPException as e:
        await record(e.status, "ok", result.user)
        raise
    except faults.ConnectionDropped:
        await record(0, "ok", result.user)
        return web.Response(status=499)  # nobody receives it: the connection is gone
    except Exception as exc:
        resp = error_response(request, exc)
    await record(resp.status, "ok", result.user)
    return resp


async def _record(
    request: web.Request,
    journal: Journal,
    device: str,
    wall: float,
    now: float,
    t0: float,
    status: int,
    auth: str,
    user: str | None = None,
) -> None:
    """Journal a request: its target, headers, the head of its body, outcome and duration."""
    body, size = await _body_head(request) if request.body_exists else (None, 0)
    journal.record(
        device, wall, now, request.method, request.raw_path, request.raw_headers,
        body, size, status, auth, user, perf_counter() - t0,
    )  # fmt: skip


async def _body_head(request: web.Request) -> tuple[bytes, int]:
    """The first BODY_LIMIT bytes of the body and its size.

    A body that arrived whole (perhaps read by the handler already: then it is cached), or
    a small one the client declared (Content-Length up to BODY_LIMIT) to a route that
    exists, is read; otherwise only what is buffered is taken, and the size is
    Content-Length's: the journal never waits for a long body.
    """
    content, size = request.content, request.content_length
    small = size is not None and size <= BODY_LIMIT and request.match_info.http_exception is None
    try:
        if small or content.is_eof():
            data = await request.read()
            return data[:BODY_LIMIT], len(data)
        head = content.read_nowait(BODY_LIMIT)
    except Exception:  # a body too large or a client gone: the journal must not fail the answer
        return b"", size or 0
    return head, size or len(head)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The device's own answer under a fault (errors converted, as without one)."""
    try:
        return await handler(request)
    except (web.HTTPException, faults.ConnectionDropped):
        raise
    except Exception as exc:
        return error_response(request, exc)


def create_app(runtime: Runtime) -> web.Application:
    """Build the simulator's web application for a runtime: routes, Digest checkers, faults."""
    app = web.Application(middlewares=[device_middleware])
    app[RUNTIME] = runtime
    app[AUTH] = Authenticators({d.id: d.cfg for d in runtime.fleet.devices})
    app[FAULTS] = Faults(seed=runtime.seed)
    runtime.faults.attach(app[FAULTS])
    app.add_routes(a3dpc.routes)
    app.add_routes(stereo.routes)
    app.add_routes(vapix.routes)
    app.add_routes(control.routes)
    app.on_startup.append(boot_devices)
    app.cleanup_ctx.append(runtime_ctx)
    return app


async def boot_devices(app: web.Application) -> None:
    """The devices boot when their web server starts: their frame counters count from here."""
    runtime = app[RUNTIME]
    at = runtime.clock.now()
    for device in runtime.fleet.devices:
        if device.booted_at is None:
            device.boot(at)


async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the scheduler and the push while the application runs; stop and await them after."""
    runtime = app[RUNTIME]
    await runtime.start()
    yield
    await runtime.stop()
