"""Readings answered straight from the request's bytes: the hot path of clients polling devices.

Integrations poll readings (the a3dpc occupancy, the stereo counts, frame rate and I/O) over
kept-alive connections, each request with a fresh Digest header. aiohttp's request, routing,
middleware and response objects cost more than the device's own work, so a whole ``GET`` of
a reading that arrives on a connection with nothing else in flight is answered here: the
same status line, headers (bar ``Date`` and a challenge's nonce) and body, the same journal
entry and the same metrics as :func:`simulator.api.app.device_middleware` gives it
(``tests/test_fast_path.py`` holds both paths to that, answer by answer).

Everything else goes to aiohttp as it arrived: another path, a query string, a method other
than GET, HTTP/1.0, a body, ``Expect``/``Upgrade`` headers, ``Connection`` other than
``keep-alive`` (which ``requests`` sends), no or several ``Host``, a header aiohttp
would refuse, a repeated ``Authorization``; and whatever depends on more than the reading:
a device restarting, an ``https_only`` device's redirect, any fault switched on, a reading
that fails (aiohttp answers its error).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from email.utils import formatdate
from time import perf_counter
from typing import NamedTuple

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from simulator.api import a3dpc, apache, stereo
from simulator.api.app import AUTH
from simulator.api.auth import role_allows
from simulator.api.common import RUNTIME, model_serves
from simulator.api.faults import FAULTS
from simulator.api.https import HTTPS
from simulator.api.metrics import METRICS
from simulator.clock import wall_time
from simulator.device import Device
from simulator.journal import RawHeaders

#: A reading's JSON body at a simulated time.
Body = Callable[[Device, float], bytes]

#: The longest request head answered here (aiohttp's own limit on a line); a longer one, or
#: a head still incomplete after PARTIAL_LIMIT bytes, goes to aiohttp.
HEAD_LIMIT = 8190
PARTIAL_LIMIT = 65536
MAX_HEADERS = 100

_REQUEST_LINE = re.compile(rb"GET (/[!-~]*) HTTP/1\.1")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: The bytes a head's lines may hold (no control character but HTAB; no bare CR or LF).
_LINE_BYTES = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t"
#: Headers that change how a request is framed or answered: never answered here.
_FRAMING = frozenset(
    (b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade")
)


class Reading(NamedTuple):
    """A reading served here: its path, aiohttp's route (for the metrics), level and body."""

    target: str
    route: AbstractRoute
    level: str
    body: Body


class Head(NamedTuple):
    """A request head found in the bytes: a reading's (``reading`` set) or another's."""

    end: int  # offset just past the head (a request answered here has no body)
    reading: Reading | None  # None: not one answered here
    clean: bool  # complete and bodiless, keeping the connection: aiohttp ends it at ``end``
    headers: RawHeaders = ()
    authorization: str | None = None


def _route(app: web.Application, path: str) -> AbstractRoute:
    """aiohttp's GET route of ``path`` (the one the middleware's metrics count under)."""
    for resource in app.router.resources():
        if resource.canonical == path:
            for route in resource:
                if route.method == "GET":
                    return route
    raise LookupError(f"no GET route for {path}")


class FastPath:
    """The readings of one application, answered from the bytes of their requests."""

    def __init__(self, app: web.Application) -> None:
        self.runtime = app[RUNTIME]
        self.auth = app[AUTH]
        self.faults = app[FAULTS]
        self.redirects = app[HTTPS].redirects
        self.metrics = app[METRICS]
        self.readings: dict[bytes, Reading] = {}
        for table in (a3dpc.READINGS, stereo.READINGS):
            for path, body in table.items():
                route = _route(app, path)
                level = str(getattr(route.handler, "security_level", "viewer"))
                self.readings[path.encode()] = Reading(path, route, level, body)
        self._serves: dict[tuple[str, str], bool] = {}
        page = apache.page(401).encode("latin-1")
        self._challenge_tail = b"\r\nContent-Length: %d\r\nDate: " % len(page)
        self._challenge_page = page
        self._date: tuple[int, bytes] = (0, b"")

    def http_date(self, wall: float) -> bytes:
        """The ``Date`` header's value for a wall time (formatted once a second)."""
        second = int(wall)
        if self._date[0] != second:
            self._date = (second, formatdate(second, usegmt=True).encode())
        return self._date[1]

    def scan(self, data: bytes, at: int) -> Head | None:
        """The request head starting at ``at`` (None: not all arrived yet)."""
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            return None
        end += 4
        text = data[at : end - 4]
        if text.replace(b"\r\n", b"").translate(None, _LINE_BYTES):
            return Head(end, None, False)  # a control character: aiohttp answers 400
        lines = text.split(b"\r\n")
        line = _REQUEST_LINE.fullmatch(lines[0])
        reading = self.readings.get(line[1]) if line is not None else None
        headers: list[tuple[bytes, bytes]] = []
        authorization: bytes | None = None
        hosts = 0
        for raw in lines[1:]:
            name, colon, value = raw.partition(b":")
            if not colon or _TOKEN.fullmatch(name) is None:
                return Head(end, None, False)  # malformed (or folded): aiohttp answers 400
            lower = name.lower()
            value = value.strip(b" \t")
            if lower in _FRAMING and (lower != b"connection" or value.lower() != b"keep-alive"):
                return Head(end, None, False)  # a body, a close, an upgrade: aiohttp's
            if lower == b"authorization":
                if authorization is not None:
                    reading = None
                authorization = value
            elif lower == b"host":
                hosts += 1
            headers.append((name, value))
        if hosts != 1:  # HTTP/1.1 asks for one (aiohttp refuses a request without)
            reading = None
        if reading is None or end - at > HEAD_LIMIT or len(headers) > MAX_HEADERS:
            return Head(end, None, end - at <= HEAD_LIMIT)
        auth = None if authorization is None else authorization.decode("utf-8", "surrogateescape")
        return Head(end, reading, True, tuple(headers), auth)

    def may_end(self, data: bytes, at: int) -> bool:
        """Whether the start of a head from ``at`` may still become one answered here: not
        too long, and no byte that makes it aiohttp's (a bare LF ends lines for aiohttp)."""
        part = data[at:]
        if len(part) > PARTIAL_LIMIT:
            return False
        part = part.removesuffix(b"\r")  # the CR of a CRLF whose LF is still to come
        return not part.replace(b"\r\n", b"").translate(None, _LINE_BYTES)

    def ends_clean(self, data: bytes, at: int) -> bool:
        """Whether ``data`` from ``at`` is whole bodiless requests (aiohttp's parser ends clean)."""
        size = len(data)
        while at < size:
            head = self.scan(data, at)
            if head is None or not head.clean:
                return False
            at = head.end
        return True

    def answer(self, head: Head, sockname: object, transport: asyncio.Transport) -> bool:
        """Answer a reading as the device does; False (nothing done): aiohttp answers it."""
        reading = head.reading
        assert reading is not None
        runtime = self.runtime
        device = runtime.fleet.resolve(sockname)
        if device is None or self.faults.active:
            return False
        if self.redirects and isinstance(sockname, tuple) and sockname[:2] in self.redirects:
            return False
        model = device.cfg.model
        serves = self._serves.get((model, reading.target))
        if serves is None:
            serves = self._serves[model, reading.target] = model_serves(model, reading.target)
        if not serves:
            return False
        wall, now, t0 = wall_time(), runtime.clock.now(), perf_counter()
        if device.restarting(now):
            return False
        try:
            body = reading.body(device, now)
        except Exception:
            return False  # aiohttp's path answers the failure as the device's error
        checker = self.auth[device.id]
        result = checker.check("GET", reading.target, head.authorization)
        user = result.user
        date = self.http_date(wall)
        if result.ok and result.role is not None and role_allows(result.role, reading.level):
            status, auth = 200, "ok"
            out = b"".join((_OK, b"%d" % len(body), b"\r\nDate: ", date, _END, body))
        else:
            status, auth = 401, result.reason if not result.ok else "forbidden"
            if not result.ok:
                user = None
            challenge = checker.challenge(stale=result.stale).encode()
            out = b"".join(
                (_401, challenge, self._challenge_tail, date, _END, self._challenge_page)
            )
        seconds = perf_counter() - t0
        runtime.journal.record(
            device.id, wall, now, "GET", reading.target, head.headers,
            None, 0, status, auth, user, seconds,
        )  # fmt: skip
        self.metrics.count(reading.route, status, model, auth, seconds)
        transport.write(out)
        return True


_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
_401 = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
    b"WWW-Authenticate: "
)
_END = b"\r\nServer: Apache\r\n\r\n"
