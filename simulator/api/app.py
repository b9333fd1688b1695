"""The aiohttp application: routing by local address, Digest auth, errors, the device APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import suppress
from functools import partial
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.api import (
    a3dpc,
    apache,
    console,
    control,
    faults,
    https,
    local_page,
    metrics,
    stereo,
    vapix,
)
from simulator.api.auth import DigestAuthenticator, role_allows
from simulator.api.common import DEVICE, RUNTIME, USER, anonymous_call, route_policy
from simulator.api.errors import error_response
from simulator.api.faults import FAULTS, Faults
from simulator.clock import wall_time
from simulator.device import Device
from simulator.journal import BODY_LIMIT
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig

#: The Digest checker of each device, by device id.
AUTH = web.AppKey("auth", dict[str, DigestAuthenticator])


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
    return apache.error(401, headers={"WWW-Authenticate": header})


def _missing(request: web.Request, exc: web.HTTPException) -> web.Response:
    """A 404 or 405 as the device's Apache answers it (a 405 names the allowed methods)."""
    allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return apache.error(exc.status, request.method, allow)


@web.middleware
async def device_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Route to the device of the local address, answer as it does, journal the request.

    The only middleware (each one costs every request): the control plane under ``/sim/``
    first, then the device's answer (an ``https_only`` device's redirect over HTTP included).

    Every request a device answers is journaled and counted here, once, with its status and
    auth outcome (synchronously when it has no body).
    """
    app = request.app
    if request.path.startswith("/sim/"):
        return await metrics.timed_control(request, handler)  # the control plane: its own token
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport else None
    runtime = app[RUNTIME]
    device = runtime.fleet.resolve(sockname)
    if device is None:
        raise web.HTTPNotFound(text="no simulated device at this address\n")
    request[DEVICE] = device
    wall, now, t0 = wall_time(), runtime.clock.now(), perf_counter()
    answer: Answer
    if (moved := https.redirect(request, sockname)) is not None:
        answer, auth, user = moved, "none", None  # https_only over HTTP: to its HTTPS address
    else:
        answer, auth, user = await _device_answer(request, handler, app, device, now)
    status = 0 if answer is None else answer.status
    body, size = await _body_head(request) if request.body_exists else (None, 0)
    seconds = perf_counter() - t0
    runtime.journal.record(
        device.id, wall, now, request.method, request.raw_path, request.raw_headers,
        body, size, status, auth, user, seconds,
    )  # fmt: skip
    app[metrics.METRICS].request(request, status, auth, seconds)
    if answer is None:
        return web.Response(status=499)  # nobody receives it: the connection is gone
    if isinstance(answer, web.HTTPException):
        raise answer
    return answer


Answer = web.StreamResponse | web.HTTPException | None


async def _device_answer(
    request: web.Request, handler: Handler, app: web.Application, device: Device, now: float
) -> tuple[Answer, str, str | None]:
    """The device's answer (None: no answer, the connection dropped), auth outcome and user.

    Digest credentials are checked like the device's Apache: a user whose role is too low
    gets a new challenge, as Apache's failed ``Require`` does. A restarting device answers
    nothing; a path it lacks gets Apache's 404/405 without asking for credentials.
    """
    if device.restarting(now):
        await _away(request, handler)
        return None, "restarting", None
    if (miss := request.match_info.http_exception) is not None:
        return _missing(request, miss), "none", None
    serves, level = route_policy(device.cfg.model, request)
    if not serves:
        return apache.error(404), "none", None  # another model's API: as if it did not exist
    checker = app[AUTH][device.id]
    result = checker.check(request.method, request.path_qs, request.headers.get("Authorization"))
    auth = "ok"
    if not result.ok:
        if not await anonymous_call(request):  # only what the device answers anonymously
            return _challenge(checker.challenge(stale=result.stale)), result.reason, None
        auth = "anonymous"
    elif result.role is None or not role_allows(result.role, level):
        return _challenge(checker.challenge()), "forbidden", result.user
    else:
        request[USER] = result.user or ""
    try:
        table = app[FAULTS]
        if table.active and (rule := table.pick(device.id, request.path)):
            resp = await rule.chain(request, partial(_answer, request, handler))
        else:
            resp = await handler(request)
    except web.HTTPException as e:
        return (_missing(request, e) if e.status in apache.PAGES else e), auth, result.user
    except faults.ConnectionDropped:
        return None, auth, result.user
    except Exception as exc:
        resp = error_response(request, exc)
    return resp, auth, result.user


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


async def _away(request: web.Request, handler: Handler) -> None:
    """A device restarting answers nothing: the connection is reset (no response sent)."""
    with suppress(faults.ConnectionDropped):
        await faults.Reset()(request, partial(handler, request))


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
    app.on_response_prepare.append(apache.face)
    app[RUNTIME] = runtime
    app[https.HTTPS] = https.HttpsInfo()
    app[AUTH] = Authenticators({d.id: d.cfg for d in runtime.fleet.devices})
    app[FAULTS] = Faults(seed=runtime.seed)
    runtime.faults.attach(app[FAULTS])
    app.add_routes(a3dpc.routes)
    app.add_routes(stereo.routes)
    app.add_routes(vapix.routes)
    app.add_routes(control.routes)
    app.add_routes(console.routes)
    app.add_routes(local_page.routes)
    app.add_routes(https.routes)
    app[metrics.METRICS] = metrics.Metrics(runtime)
    app.add_routes(metrics.routes)
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
