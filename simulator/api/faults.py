"""Fault injection: small composable callables wrapped around a device's handler.

A fault is ``async (request, call) -> response`` where ``call`` produces the device's own
answer; :class:`Chain` composes them. A :class:`FaultSpec` (scenario ``faults``, timeline
``fault_on`` or ``POST /sim/v1/faults``) is built into a chain: latency, then a connection
reset or an error status, then the body (malformed, truncated, dribbled). Whether a fault
fires is drawn from its own generator seeded from the scenario's seed and the fault's
number, so a run repeats. Body faults also act on the streamed exports, which are then
answered whole.
"""

from __future__ import annotations

import asyncio
import fnmatch
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from simulator.schema.timeline import FaultSpec, LatencySpec

Call = Callable[[], Awaitable[web.StreamResponse]]
Fault = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]

FAULT_STREAM = 0xFA17
#: Set by body faults: a streamed export is answered whole, so the fault can mangle it.
BUFFERED = web.RequestKey("buffered", bool)


class ConnectionDropped(Exception):
    """Raised after a fault reset the connection: there is no response to send."""


@dataclass
class Latency:
    """Wait before answering: fixed, or drawn from a distribution."""

    spec: LatencySpec
    rng: np.random.Generator

    def seconds(self) -> float:
        """One draw of the delay, in seconds."""
        s, ms = self.spec, self.spec.ms
        if s.dist == "uniform":
            ms = ms + s.spread_ms * (2 * float(self.rng.random()) - 1)
        elif s.dist == "normal":
            ms = ms + s.spread_ms * float(self.rng.standard_normal())
        elif s.dist == "lognormal":
            ms = ms * float(np.exp((s.spread_ms / max(ms, 1e-9)) * self.rng.standard_normal()))
        elif s.dist == "exponential":
            ms = float(self.rng.exponential(ms))
        return min(max(ms, 0.0), s.max_ms) / 1000.0

    async def __call__(self, request: web.Request, call: Call) -> web.StreamResponse:
        """Sleep, then answer."""
        await asyncio.sleep(self.seconds())
        return await call()


@dataclass
class ErrorStatus:
    """Answer with an error status instead of the device's answer."""

    status: int

    async def __call__(self, request: web.Request, call: Call) -> web.StreamResponse:
        """A plain-text error response."""
        reason = f"{self.status} simulated fault\n"
        return web.Response(status=self.status, text=reason)


class Reset:
    """Drop the connection without an answer (a TCP reset)."""

    async def __call__(self, request: web.Request, call: Call) -> web.StreamResponse:
        """Abort the transport with SO_LINGER 0, so the peer sees a reset."""
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        raise ConnectionDropped


async def _body(request: web.Request, call: Call) -> tuple[web.StreamResponse, bytes | None]:
    request[BUFFERED] = True  # a streamed export answers whole, for the fault to act on
    resp = await call()
    if resp.prepared or not isinstance(resp, web.Response):
        return resp, None
    body = resp.body
    return resp, bytes(body) if isinstance(body, bytes | bytearray) else None


def _copy(resp: web.Response, body: bytes) -> web.Response:
    headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
    return web.Response(status=resp.status, body=body, headers=headers)


@dataclass
class Malformed:
    """Corrupt the body: a run of seeded garbage bytes in its middle."""

    rng: np.random.Generator

    async def __call__(self, request: web.Request, call: Call) -> web.StreamResponse:
        """The answer with its middle replaced by garbage."""
        resp, body = await _body(request, call)
        if body is None or not isinstance(resp, web.Response):
            return resp
        n = max(1, len(body) // 4)
        garbage = bytes(self.rng.integers(0, 256, n, dtype=np.uint8)).replace(b"\n", b"\x00")
        mid = len(body) // 2
        return _copy(resp, body[:mid] + b"\x00{<" + garbage + body[mid + n :])


@dataclass
class Truncate:
    """Send a fraction of the body, announcing its full length, then close."""

    fraction: float

    async def __call__(self, request: web.Request, call: Call) -> web.StreamResponse:
        """Headers with the full Content-Length, part of the body, then the connection closes."""
        out, body = await _resend(request, call)
        if body is None:
            return out
        await out.write(body[: int(len(body) * self.fraction)])
        if request.transport is not None:
            request.transport.close()
        raise ConnectionDropped


@dataclass
class Dribble:
    """Send the body slowly, a few bytes at a time."""

    bytes_per_s: float
    chunk: int = 16

    async def __call__(self, request: web.Request, call: Call) -> web.StreamResponse:
        """The whole body, ``chunk`` bytes at a time at ``bytes_per_s``."""
        out, body = await _resend(request, call)
        if body is None:
            return out
        for i in range(0, len(body), self.chunk):
            await out.write(body[i : i + self.chunk])
            await asyncio.sleep(self.chunk / self.bytes_per_s)
        await out.write_eof()
        return out


async def _resend(request: web.Request, call: Call) -> tuple[web.StreamResponse, bytes | None]:
    """The device's answer to send by hand: a prepared stream with its status, headers and
    full Content-Length, and its body; or the answer itself and None when it has no body."""
    resp, body = await _body(request, call)
    if body is None:
        return resp, None
    headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
    out = web.StreamResponse(status=resp.status, headers=headers)
    out.content_length = len(body)
    await out.prepare(request)
    return out, body


@dataclass
class Chain:
    """Faults applied outside in: the first wraps the second, and so on."""

    faults: Sequence[Fault]

    async def __call__(self, request: web.Request, call: Call) -> web.StreamResponse:
        """Run the chain around ``call``."""
        inner = call
        for f in reversed(self.faults):
            inner = _bind(f, request, inner)
        return await inner()


def _bind(f: Fault, request: web.Request, inner: Call) -> Call:
    async def run() -> web.StreamResponse:
        return await f(request, inner)

    return run


def build(spec: FaultSpec, rng: np.random.Generator) -> Chain:
    """The chain of callables a fault spec describes."""
    parts: list[Fault] = []
    if spec.dribble_bytes_per_s is not None:
        parts.append(Dribble(spec.dribble_bytes_per_s, spec.dribble_chunk))
    if spec.truncate is not None:
        parts.append(Truncate(spec.truncate))
    if spec.malformed:
        parts.append(Malformed(rng))
    if spec.latency is not None:
        parts.insert(0, Latency(spec.latency, rng))
    if spec.reset:
        parts.append(Reset())
    elif spec.status is not None:
        parts.append(ErrorStatus(spec.status))
    return Chain(parts)


@dataclass
class Rule:
    """A fault switched on: its spec, chain, random source and how often it fired."""

    id: str
    spec: FaultSpec
    chain: Chain
    rng: np.random.Generator
    fired: int = 0

    def matches(self, device: str, path: str) -> bool:
        """Whether the rule is for this device and path (a glob, ``*`` matches any)."""
        if self.spec.device is not None and self.spec.device != device:
            return False
        return self.spec.path == "*" or fnmatch.fnmatchcase(path, self.spec.path)

    def describe(self) -> dict[str, Any]:
        """The rule as the control plane shows it."""
        return {"id": self.id, "fired": self.fired, **self.spec.model_dump(exclude={"id"})}


@dataclass
class Faults:
    """The faults switched on in an application; ``active`` is False when there are none."""

    seed: int = 0
    rules: dict[str, Rule] = field(default_factory=dict)
    active: bool = False
    _made: int = 0

    def add(self, spec: FaultSpec) -> Rule:
        """Switch a fault on (replacing one with the same id); returns its rule."""
        self._made += 1
        rid = spec.id or f"fault-{self._made}"
        rng = np.random.default_rng([self.seed, FAULT_STREAM, self._made])
        rule = Rule(rid, spec, build(spec, rng), rng)
        self.rules[rid] = rule
        self.active = True
        return rule

    def next_id(self) -> str:
        """A fault id not in use."""
        n = len(self.rules) + 1
        while f"fault-{n}" in self.rules:
            n += 1
        return f"fault-{n}"

    def remove(self, rule_id: str | None = None) -> int:
        """Switch one fault (or every fault) off; how many were removed."""
        if rule_id is None:
            n = len(self.rules)
            self.rules.clear()
        else:
            n = 1 if self.rules.pop(rule_id, None) is not None else 0
        self.active = bool(self.rules)
        return n

    def reset(self, specs: Sequence[FaultSpec]) -> None:
        """Back to the scenario's faults, with fresh random sources."""
        self.rules.clear()
        self._made = 0
        for s in specs:
            self.add(s)
        self.active = bool(self.rules)

    def pick(self, device: str, path: str) -> Rule | None:
        """The first matching rule that fires on this request (drawn from its source)."""
        for rule in self.rules.values():
            if not rule.matches(device, path):
                continue
            if rule.spec.times is not None and rule.fired >= rule.spec.times:
                continue
            if rule.spec.probability < 1.0 and rule.rng.random() >= rule.spec.probability:
                continue
            rule.fired += 1
            return rule
        return None


#: The application's fault table.
FAULTS = web.AppKey("faults", Faults)
