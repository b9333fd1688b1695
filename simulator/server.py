"""Serving a fleet over HTTP: a listening socket per device, and the limits a device's Apache keeps.

:func:`serve_fleet` builds the aiohttp runner, binds every served device and routes each
bound socket address to its device. Every connection is held to Apache's defaults on the
device (``RequestReadTimeout header=20-40,MinRate=500 body=20,MinRate=500``,
``KeepAliveTimeout 5``), and the number of open connections stays below the open-files
limit: near it, the connections that have waited longest for a request are closed first.
A whole request for a reading is answered from its bytes (:mod:`simulator.api.fast`), the
rest by aiohttp; a request aiohttp cannot read gets Apache's 400 page.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
import os
import re
import resource
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import __version__ as aiohttp_version
from aiohttp import web, web_protocol
from aiohttp.http import HttpVersion11
from aiohttp.streams import StreamReader
from aiohttp.web_log import AccessLogger

from simulator.api import apache
from simulator.api.app import create_app
from simulator.api.fast import FastPath
from simulator.api.https import HTTPS
from simulator.api.metrics import METRICS
from simulator.device import Device
from simulator.fleet import http_url
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import Scenario, fleet_devices
from simulator.tls import DeviceTLS, FleetTLS

log = logging.getLogger("simulator.server")

#: Apache's ``ListenBacklog``: connections the kernel queues before they are accepted.
BACKLOG = 511
#: Connections accepted at a time; connections closed at a time to make room at the cap.
ACCEPT_BATCH = 64
EVICT_BATCH = 16
#: File descriptors kept free of client connections: the store, logs, the control plane's
#: own clients, DNS and the like.
RESERVED_FILES = 64
#: What a client that sent part of a request and then too little gets, as from Apache.
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nServer: Apache\r\n"
    b"Content-Type: text/html; charset=iso-8859-1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%b"
    % (len(apache.page(408)), apache.page(408).encode("latin-1"))
)
#: The request aiohttp builds for bytes it cannot read as one, answered in HTTP/1.1 as
#: Apache answers (aiohttp's own placeholder says HTTP/1.0).
UNREADABLE = web_protocol.ERROR._replace(version=HttpVersion11)

# What a connection is doing, for its read deadline.
WAITING = 0  # for (the rest of) a request's headers: header timeout, or keep-alive if no byte
BODY = 1  # for the request's body: body timeout
BUSY = 2  # the request is complete and being answered: no deadline


@dataclass(frozen=True)
class Limits:
    """How long a client may take to send a request, and how many connections stay open.

    The defaults are Apache's: a request's headers must arrive within ``header_timeout``
    seconds, extended by one second per ``min_rate`` bytes received, to at most
    ``header_timeout_max``; its body within ``body_timeout``, extended the same way; a
    kept-alive connection may wait ``keepalive_timeout`` for the next request.
    ``max_connections`` None: as many as the open-files limit leaves room for.
    """

    header_timeout: float = 20.0
    header_timeout_max: float = 40.0
    body_timeout: float = 20.0
    min_rate: float = 500.0
    keepalive_timeout: float = 5.0
    max_connections: int | None = None


_READ_TIMEOUT_PART = re.compile(
    r"^(header|body)=(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?(?:,MinRate=(\d+(?:\.\d+)?))?$",
    re.IGNORECASE,
)


def parse_read_timeout(text: str, base: Limits | None = None) -> Limits:
    """Apache's ``RequestReadTimeout`` syntax, e.g. ``header=20-40,MinRate=500 body=20``."""
    limits = base or Limits()
    parts = text.split()
    if not parts:
        raise ValueError("empty; e.g. 'header=20-40,MinRate=500 body=20,MinRate=500'")
    for part in parts:
        m = _READ_TIMEOUT_PART.match(part)
        if m is None:
            raise ValueError(f"{part!r} is not header=SECONDS[-MAX][,MinRate=BYTES] or body=...")
        kind, low, high, rate = m.group(1).lower(), float(m.group(2)), m.group(3), m.group(4)
        if low <= 0 or (high is not None and float(high) < low) or (rate and float(rate) <= 0):
            raise ValueError(f"{part!r}: timeouts must be > 0, MAX >= SECONDS, MinRate > 0")
        if kind == "header":
            top = float(high) if high is not None else low
            limits = replace(limits, header_timeout=low, header_timeout_max=top)
        else:
            limits = replace(limits, body_timeout=low)
        if rate:
            limits = replace(limits, min_rate=float(rate))
    return limits


class Throttle:
    """Counts occurrences of something and says when to report them: at most once per interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.count = 0
        self._next = float("-inf")

    def hit(self, now: float) -> int:
        """Count one; the number to report now (0: stay quiet)."""
        self.count += 1
        if now < self._next:
            return 0
        n, self.count, self._next = self.count, 0, now + self.interval
        return n


def open_files() -> int:
    """How many file descriptors this process has open (0 if the system does not say)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def connection_cap(reserve: int) -> int:
    """How many client connections fit under the open-files soft limit, ``reserve`` kept free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(8, soft - open_files() - reserve)


class ConnectionGuard:
    """The open connections of one server: the cap, and who is closed first when it is reached.

    A connection counts from its ``accept()`` until its socket is closed, so the count is the
    number of file descriptors the connections hold.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.cap = limits.max_connections or 1 << 20
        self.open: set[GuardedHandler] = set()
        self.pending = 0  # accepted, not yet handed to a handler
        self._waiting: dict[GuardedHandler, None] = {}  # for a request, oldest first
        self._reading: dict[GuardedHandler, None] = {}  # a body, oldest first
        self._paused: list[DeviceSite] = []
        self._evictions = Throttle(5.0)
        self.evicted = 0

    def room(self, site: DeviceSite) -> bool:
        """Whether a connection may be accepted now; if not, ``site`` waits for one to close.

        At the cap, the connections that have waited longest for a request (then the slowest
        bodies) are closed to make room.
        """
        if len(self.open) + self.pending < self.cap:
            return True
        for _ in range(EVICT_BATCH):
            victim = next(iter(self._waiting or self._reading), None)
            if victim is None:
                break  # every connection is being answered: new ones wait in the backlog
            self.evicted += 1
            victim.expire(evict=True)
            self._waiting.pop(victim, None)
            self._reading.pop(victim, None)
            if n := self._evictions.hit(asyncio.get_running_loop().time()):
                log.warning(
                    "%d connections open, the limit: closed %d that waited longest for a request",
                    self.cap,
                    n,
                )
        self._paused.append(site)
        site.pause()
        return False

    def opened(self, conn: GuardedHandler) -> None:
        """An accepted connection has its handler."""
        self.pending -= 1
        self.open.add(conn)

    def closed(self, conn: GuardedHandler) -> None:
        """A connection's socket is closed: paused sites accept again."""
        self.open.discard(conn)
        self._waiting.pop(conn, None)
        self._reading.pop(conn, None)
        paused, self._paused = self._paused, []
        for site in paused:
            site.resume()

    def phase(self, conn: GuardedHandler, phase: int) -> None:
        """A connection starts waiting for a request, reading a body, or answering."""
        self._waiting.pop(conn, None)
        self._reading.pop(conn, None)
        if conn in self.open:
            if phase == WAITING:
                self._waiting[conn] = None
            elif phase == BODY:
                self._reading[conn] = None


#: What the fast path reads of aiohttp's connection handler (its own state, not API): with
#: an aiohttp that lacks any of it, every request goes through aiohttp.
AIOHTTP_STATE = (
    "_messages",
    "_close",
    "_force_close",
    "_paused",
    "_keepalive_timeout",
    "_next_keepalive_close_time",
)


def fast_path_supported() -> bool:
    """Whether this aiohttp's connection handler has the state the fast path reads."""
    return all(hasattr(web.RequestHandler, name) for name in AIOHTTP_STATE)


FAST = fast_path_supported()
if not FAST:
    log.debug("aiohttp %s: readings are answered through aiohttp (no fast path)", aiohttp_version)


class GuardedHandler(web.RequestHandler):
    """aiohttp's connection handler, with Apache's read timeouts, the server's cap, the fast
    path for readings and Apache's error pages.

    One timer per connection, re-armed lazily: data only moves its deadline later.
    """

    __slots__ = (
        "_body",
        "_clean",
        "_deadline",
        "_fast",
        "_got",
        "_guard",
        "_handling",
        "_idle",
        "_partial",
        "_phase",
        "_sockname",
        "_t0",
        "_timed_out",
        "_timer",
    )

    def __init__(
        self,
        manager: web.Server,
        guard: ConnectionGuard,
        fast: FastPath | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._fast = fast  # readings answered from the bytes (None: aiohttp answers all)
        self._clean = True  # aiohttp's parser holds no part of a request
        self._partial = b""  # the start of a request head, not all arrived yet
        self._sockname: object = None
        self._phase = WAITING
        self._idle = False  # kept alive, no byte of the next request yet
        self._t0 = 0.0
        self._got = 0
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        self._handling = False
        self._timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Accepted: the first request's headers are due (Apache counts from the accept)."""
        super().connection_made(transport)
        self._sockname = transport.get_extra_info("sockname")
        self._guard.opened(self)
        self._wait(keepalive=False)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Closed: forget the connection and its timer."""
        super().connection_lost(exc)
        self._guard.closed(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        """Bytes of requests: readings answered at once, the rest to aiohttp (in order)."""
        if self._fast is not None and self._clean:
            rest = self._serve_fast(data)
            if not rest:
                return
            data = rest
        super().data_received(data)
        self._progress(len(data))

    def _serve_fast(self, data: bytes) -> bytes:
        """Answer the whole readings at the start of ``data``; the bytes left for aiohttp.

        A reading is answered here only when nothing is in flight before it (aiohttp's
        answers go out first) and the client reads its answers; the start of a head not
        all arrived is kept until it has (its header deadline runs as for aiohttp's).
        """
        fast, transport = self._fast, self.transport
        assert fast is not None
        if transport is None:
            return data  # closed: aiohttp drops it
        new = len(data)
        if self._partial:
            data, self._partial = self._partial + data, b""
        busy = bool(self._handling or self._messages or self._close or self._force_close)
        at, size, answered = 0, len(data), False
        while at < size:
            head = fast.scan(data, at)
            if head is None:
                if not fast.may_end(data, at):
                    self._clean = False
                    break
                self._partial = data[at:]
                at = size
                break
            if (
                head.reading is None
                or busy
                or self._paused
                or not fast.answer(head, self._sockname, transport)
            ):  # aiohttp takes it from here; its parser is clean again if it ends the bytes
                self._clean = fast.ends_clean(data, at)
                break
            at, answered = head.end, True
        if answered:
            self._wait(keepalive=True)
            self._next_keepalive_close_time = self._t0 + self._keepalive_timeout
        if self._partial:
            self._progress(min(new, len(self._partial)))
        return data[at:]

    def _progress(self, size: int) -> None:
        """``size`` bytes of a request arrived: they extend its deadline at the minimum rate."""
        limits = self._guard.limits
        if self._phase == WAITING:
            if self._idle:  # the next request begins: from keep-alive to the header timeout
                self._idle = False
                self._t0 = self._loop.time()
            self._got += size
            self._deadline = min(
                self._t0 + limits.header_timeout_max,
                self._t0 + limits.header_timeout + self._got / limits.min_rate,
            )
        elif self._phase == BODY and self._body is not None:
            self._got += size
            self._deadline = self._t0 + limits.body_timeout + self._got / limits.min_rate
            if self._body.is_eof():
                self._set_phase(BUSY)

    def request_started(self, request: web.BaseRequest) -> None:
        """A request's headers are in: its body is due next, or nothing while it is answered."""
        self._handling = True
        self._body = request.content
        if request.content.is_eof():
            self._set_phase(BUSY)
        else:
            self._t0, self._got = self._loop.time(), 0
            self._deadline = self._t0 + self._guard.limits.body_timeout
            self._set_phase(BODY)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request that could not be read, or a failure outside the device's own handling:
        Apache's page (400 or 500) and the connection closed; the details go to the log."""
        if status >= 500:
            log.error("failure answering %s %s", request.method, request.path, exc_info=exc)
        else:
            log.debug("unreadable request from %s: %s", self.peername, message or exc)
        if request.writer.output_size > 0:  # an answer is part-way out: nothing more to say
            raise ConnectionError("the answer was being sent: the connection is closed")
        resp = apache.error(500 if status >= 500 else 400, request.method)
        resp.headers["Server"] = apache.SERVER
        resp.force_close()
        return resp

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """Answered: wait for the next request (or for the rest of a body not read)."""
        out = await super().finish_response(request, resp, start_time)
        self._handling = False
        if self._timed_out:
            self.force_close()  # the 408 is out: nothing more from this client
        elif self._phase != BODY:
            self._wait(keepalive=True)
        return out

    def _wait(self, keepalive: bool) -> None:
        """Wait for a request: keep-alive until its first byte, then the header timeout."""
        limits = self._guard.limits
        self._idle = keepalive
        self._t0, self._got = self._loop.time(), 0
        self._deadline = self._t0 + (
            limits.keepalive_timeout if keepalive else limits.header_timeout
        )
        self._set_phase(WAITING)

    def _set_phase(self, phase: int) -> None:
        """Enter a phase; make sure the timer fires by its deadline."""
        self._phase = phase
        self._guard.phase(self, phase)
        if phase == BUSY or self.transport is None:
            return
        if self._timer is not None and self._timer.when() > self._deadline:
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        """The deadline may have passed: close, or wait until the moved one."""
        self._timer = None
        if self.transport is None or self._phase == BUSY:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self.expire()

    def expire(self, evict: bool = False) -> None:
        """Give up on the request: 408 if part of it came, else just close, as Apache does."""
        if self.transport is None:
            return
        why = "evicted" if evict else "timed out"
        log.debug("connection from %s %s", self.peername, why)
        if self._phase == BODY and self._handling and self._body is not None:
            self._timed_out = True
            self._body.set_exception(web.HTTPRequestTimeout())  # the handler answers 408
            self._set_phase(BUSY)
            return
        if self._phase == WAITING and self._got:
            self.transport.write(REQUEST_TIMEOUT)
        self.force_close()


class DeviceSite(web.BaseSite):
    """One bound listening socket: accepts only while the guard has room, serves guarded."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        guard: ConnectionGuard,
        handler_args: dict[str, Any],
        tls: DeviceTLS | None = None,
    ) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._sock = sock
        self._tls = tls
        self._fd = sock.fileno()
        self._guard = guard
        self._handler_args = handler_args
        self._loop = asyncio.get_running_loop()
        self._listening = False
        self._paused = True  # until started
        self._tasks: set[asyncio.Task[Any]] = set()
        self._errors = Throttle(5.0)

    @property
    def name(self) -> str:
        """The site's URL."""
        host, port = self._sock.getsockname()[:2]
        return http_url(host, port) if self._tls is None else https_url(host, port)

    async def start(self) -> None:
        """Listen."""
        await super().start()
        self._sock.listen(self._backlog)
        self._listening = True
        self.resume()

    async def stop(self) -> None:
        """Stop listening (connections are closed by the runner)."""
        self.pause()
        self._listening = False
        self._sock.close()
        await super().stop()

    def pause(self) -> None:
        """Accept nothing more for now: clients queue in the kernel's backlog."""
        if not self._paused and self._listening:
            self._loop.remove_reader(self._fd)
        self._paused = True

    def resume(self) -> None:
        """Accept again (the loop is given the descriptor: a socket it would name, slowly)."""
        if self._paused and self._listening:
            self._paused = False
            self._loop.add_reader(self._fd, self._accept)

    def _protocol(self) -> GuardedHandler:
        """A handler for a new connection."""
        server = self._runner.server
        assert server is not None
        return GuardedHandler(server, self._guard, loop=self._loop, **self._handler_args)

    def _accept(self) -> None:
        """Accept the connections waiting, as many as the guard has room for."""
        for _ in range(ACCEPT_BATCH):
            if not self._guard.room(self):
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._out_of_files(e)
                    return
                continue  # the client gave up already (ECONNABORTED and the like)
            conn.setblocking(False)
            self._guard.pending += 1
            task = self._loop.create_task(self._connect(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket) -> None:
        """Serve an accepted connection."""
        try:
            if self._tls is None:
                await self._loop.connect_accepted_socket(self._protocol, conn)
            else:  # the handshake is held to the time a request's headers may take
                await self._loop.connect_accepted_socket(
                    self._protocol,
                    conn,
                    ssl=self._tls.context(),
                    ssl_handshake_timeout=self._guard.limits.header_timeout_max,
                )
        except OSError:  # a failed handshake too (ssl.SSLError)
            self._guard.pending -= 1
            conn.close()

    def _out_of_files(self, e: OSError) -> None:
        """No file descriptor left: say so now and then, and try again in a second."""
        if n := self._errors.hit(self._loop.time()):
            log.warning("cannot accept connections: %s (%d time(s) since last said)", e, n)
        self.pause()
        self._loop.call_later(1.0, self.resume)


class ListenError(Exception):
    """A device's address cannot be listened on: which one, for which device, and why."""

    def __init__(self, host: str, port: int, device: str, reason: str) -> None:
        super().__init__(f"cannot listen on {http_url(host, port)[7:]} (device {device}): {reason}")
        self.host, self.port, self.device, self.reason = host, port, device, reason


@functools.lru_cache(maxsize=64)
def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address parsed once (every device of a fleet counts from the same one)."""
    return ipaddress.ip_address(host)


def device_address(host: str, port: int, index: int, ip_per_device: bool) -> tuple[str, int]:
    """Where device ``index`` listens: its own port (``port + index``; 0: any free port) or IP."""
    if ip_per_device:
        return str(_ip(host) + index), port
    return host, port + index if port else 0


def bind_device(host: str, port: int, device: str) -> list[socket.socket]:
    """The listening sockets of a device at ``host:port``; a ListenError says why not."""
    try:
        return bind_sockets(host, port)
    except OSError as e:
        raise ListenError(host, port, device, (e.strerror or str(e)).lower()) from None


def https_url(host: str, port: int) -> str:
    """``https://host:port``, an IPv6 address in brackets."""
    return "https" + http_url(host, port)[4:]


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address ``host`` resolves to, all on one port.

    Port 0: the first address gets a free port and the others the same one where free.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen: set[tuple[Any, ...]] = set()
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr[:2]) in seen:
                continue
            seen.add((family, addr[:2]))
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            try:
                sock.bind(addr)
            except OSError:
                if port == 0 and len(socks) > 1:  # another family's twin: not needed
                    socks.pop().close()
                    continue
                raise
            sock.setblocking(False)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


class FleetRunner(web.AppRunner):
    """aiohttp's runner, with its sites registered in constant time (a fleet has thousands)."""

    __slots__ = ("_registered",)

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._registered: set[web.BaseSite] = set()

    def _reg_site(self, site: web.BaseSite) -> None:
        """A site starts."""
        if site in self._registered:
            raise RuntimeError(f"Site {site} is already registered in runner {self}")
        self._registered.add(site)
        self._sites.append(site)

    def _check_site(self, site: web.BaseSite) -> None:
        """A site must be registered."""
        if site not in self._registered:
            raise RuntimeError(f"Site {site} is not registered in runner {self}")

    def _unreg_site(self, site: web.BaseSite) -> None:
        """A site stops (sites stop in the order they started: found at once)."""
        self._check_site(site)
        self._registered.discard(site)
        self._sites.remove(site)


@dataclass
class ServedFleet:
    """A runtime being served: its runner, each device's bound addresses, the connection guard."""

    runtime: Runtime
    runner: web.AppRunner
    guard: ConnectionGuard
    addresses: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    #: HTTPS: the run's CA and each device's HTTPS addresses (None, empty: HTTP only).
    tls: FleetTLS | None = None
    https_addresses: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def url(self, device_id: str) -> str:
        """The base URL of a served device (its first bound address)."""
        return http_url(*self.addresses[device_id][0])

    def https_url(self, device_id: str) -> str | None:
        """The HTTPS base URL of a served device (None: HTTPS is off)."""
        addrs = self.https_addresses.get(device_id)
        return https_url(*addrs[0]) if addrs else None

    @property
    def ca_path(self) -> str | None:
        """The PEM file of the CA that issued the devices' certificates (None: HTTPS is off)."""
        return None if self.tls is None else str(self.tls.ca_path)

    async def cleanup(self) -> None:
        """Stop listening, close every connection, stop the application (push, events)."""
        try:
            await self.runner.cleanup()
        finally:
            if self.tls is not None:
                self.tls.close()


async def serve_fleet(
    runtime: Runtime,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    devices: Iterable[Device] | None = None,
    ip_per_device: bool = False,
    https_port: int | None = None,
    limits: Limits = Limits(),
    access_log: logging.Logger | None = None,
    access_log_format: str = AccessLogger.LOG_FORMAT,
    fast_path: bool = True,
) -> ServedFleet:
    """Serve ``devices`` (default: the fleet's served shard) of ``runtime`` on ``host``.

    Device *i* listens on ``port + i`` (``port`` 0: a free port each), or with
    ``ip_per_device`` on ``host + i`` at ``port``. Requests are routed by the bound socket
    address, so any spelling or name of ``host`` works. Raises :class:`ListenError` naming
    the address and device that cannot be bound (nothing is left listening then).
    With ``https_port`` (None: HTTP only) each device also serves HTTPS, on ``https_port + i``
    or on its own address at ``https_port`` (see :func:`serve_https`). ``fast_path`` False:
    every request goes through aiohttp (:mod:`simulator.api.fast` answers none).
    """
    fleet = runtime.fleet
    runner = FleetRunner(create_app(runtime), access_log=access_log)
    await runner.setup()
    _tell_requests(runner)
    guard = ConnectionGuard(limits)
    runner.app[METRICS].connections = lambda: (len(guard.open), guard.evicted)
    served = ServedFleet(runtime, runner, guard)
    handler_args: dict[str, Any] = {
        "access_log": access_log,
        "access_log_format": access_log_format,
        # readings answered from the bytes; not when each request is to be access-logged
        "fast": FastPath(runner.app) if fast_path and access_log is None and FAST else None,
    }
    chosen = list(fleet.served if devices is None else devices)
    try:
        for device in chosen:
            h, p = device_address(host, port, device.index, ip_per_device)
            socks = bind_device(h, p, device.id)
            for sock in socks:
                await DeviceSite(runner, sock, guard, handler_args).start()
                bound = sock.getsockname()[:2]
                fleet.bind(device, *bound)
                served.addresses.setdefault(device.id, []).append(bound)
            log.debug("%s (%s) on %s", device.id, device.cfg.model, served.url(device.id))
        if https_port is not None and https_room(len(chosen)):
            served.tls = fleet_tls(fleet.scenario)
            await serve_https(served, chosen, host, https_port, ip_per_device, handler_args)
    except BaseException:
        await served.cleanup()
        raise
    if limits.max_connections is None:
        pusher = runtime.pusher
        reserve = RESERVED_FILES + (pusher.connections if pusher.active else 0)
        guard.cap = connection_cap(reserve)
    return served


def _tell_requests(runner: web.AppRunner) -> None:
    """Tell each guarded connection when a request's headers are complete (and answer an
    unreadable one in HTTP/1.1)."""
    server = runner.server
    assert server is not None
    make = server.request_factory

    def factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
        if message is web_protocol.ERROR:
            message = UNREADABLE
        request = make(message, payload, protocol, writer, task)
        if isinstance(protocol, GuardedHandler):
            protocol.request_started(request)
        return request

    server.request_factory = factory


def https_room(count: int) -> bool:
    """Whether the open-files limit leaves room for ``count`` more listening sockets (HTTPS).

    Not: HTTPS is left off with a warning, rather than a fleet that served over HTTP failing.
    """
    room = connection_cap(RESERVED_FILES) - count
    if room >= 0:
        return True
    log.warning(
        "HTTPS is off: its %d listening sockets exceed the open-files limit by %d; raise it "
        "(ulimit -n) or serve fewer devices (--no-https silences this)",
        count,
        -room,
    )
    return False


def fleet_tls(scenario: Scenario) -> FleetTLS:
    """The run's TLS: the scenario's CA (else a new one), the devices' own certificates checked."""
    ca = scenario.tls
    devices = fleet_devices(scenario.devices)
    own = [(f"devices.{i}", d) for i, d in enumerate(devices.listed)]
    if devices.fleet is not None:  # its devices share the template's certificate
        own.append(("fleet.template", devices.fleet.template))
    pairs = {f"{at}.tls": (d.tls.cert, d.tls.key) for at, d in own if d.tls is not None}
    if ca is None:
        return FleetTLS.for_scenario(None, None, pairs)
    return FleetTLS.for_scenario(ca.ca_cert, ca.ca_key, pairs)


async def serve_https(
    served: ServedFleet,
    devices: list[Device],
    host: str,
    port: int,
    ip_per_device: bool,
    handler_args: dict[str, Any],
) -> None:
    """Serve each device over HTTPS too: on ``port + i`` (0: free ports), or ``host + i``:port.

    The TLS sockets are routed like the HTTP ones (by the bound address), and each device's
    certificate is issued on its first handshake. The HTTP addresses of an ``https_only``
    device redirect to its first HTTPS address.
    """
    assert served.tls is not None
    fleet, runner, guard = served.runtime.fleet, served.runner, served.guard
    info = runner.app[HTTPS]
    info.ca_pem = served.tls.ca_pem
    redirects = info.redirects
    for device in devices:
        h, p = device_address(host, port, device.index, ip_per_device)
        socks = bind_device(h, p, device.id)
        bound = [sock.getsockname()[:2] for sock in socks]
        names = [a for a, _ in bound] + ([] if ip_per_device else [host])
        own = device.cfg.tls
        pair = None if own is None else (own.cert, own.key)
        tls = served.tls.device(device.cfg.serial, names, device.cfg.ip_address, pair)
        for sock, addr in zip(socks, bound, strict=True):
            await DeviceSite(runner, sock, guard, handler_args, tls=tls).start()
            fleet.bind(device, *addr)
        served.https_addresses[device.id] = bound
        if device.cfg.https_only:
            target = bound[0]
            for addr in served.addresses.get(device.id, []):
                redirects[addr] = target
