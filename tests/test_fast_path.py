"""Readings answered from the request's bytes answer exactly as through aiohttp.

Each test runs the same conversation against the fleet served twice: with the fast path
(:mod:`simulator.api.fast`) and without it (every request through aiohttp). The answers on
the wire, the journal and the metrics must be the same, bar the ``Date`` header and each
server's own nonces.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from simulator import server
from simulator.api.fast import FastPath
from simulator.api.metrics import METRICS
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import AuthConfig, DeviceConfig, Scenario
from simulator.schema.timeline import RebootEvent
from simulator.server import Limits, ServedFleet, fast_path_supported, serve_fleet
from tests.conftest import make_fleet

SCENARIO = Scenario(
    devices=[
        DeviceConfig(id="door", auth=AuthConfig(strict_nc=True)),
        DeviceConfig(id="legacy", model="3D People Counter", serial="ACCC8E235294"),
    ]
)
OCC = "/a3dpc/api/occupancy"
PASSWORDS = {"root": "pass", "operator": "operator", "viewer": "viewer"}
_NONCE = re.compile(rb'nonce="([^"]+)"')
_DATE = re.compile(rb"\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")


class Conn:
    """A raw keep-alive connection to one device, speaking Digest as ``requests`` does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.nonce, self.realm, self.nc = "", "", 0

    def request(
        self, path: str, user: str | None = None, password: str | None = None, extra: str = ""
    ) -> bytes:
        """A GET of ``path`` with the next nc and a fixed cnonce (no header without a user)."""
        auth = ""
        if user is not None:
            self.nc += 1
            nc, cnonce = f"{self.nc:08x}", f"c{self.nc:015x}"
            pw = password if password is not None else PASSWORDS[user]
            ha1 = hashlib.md5(f"{user}:{self.realm}:{pw}".encode()).hexdigest()
            ha2 = hashlib.md5(f"GET:{path}".encode()).hexdigest()
            response = hashlib.md5(f"{ha1}:{self.nonce}:{nc}:{cnonce}:auth:{ha2}".encode())
            auth = (
                f'Authorization: Digest username="{user}", realm="{self.realm}", '
                f'nonce="{self.nonce}", uri="{path}", response="{response.hexdigest()}", '
                f'algorithm="MD5", qop="auth", nc={nc}, cnonce="{cnonce}"\r\n'
            )
        return f"GET {path} HTTP/1.1\r\nHost: device\r\n{auth}{extra}\r\n".encode()

    async def send(self, *requests: bytes, pause: float = 0.0) -> list[bytes]:
        """Send the requests in one write (pipelined; split in two with a pause); the answers."""
        data = b"".join(requests)
        if pause:
            self.writer.write(data[: len(data) // 2])
            await self.writer.drain()
            await asyncio.sleep(pause)
            data = data[len(data) // 2 :]
        self.writer.write(data)
        await self.writer.drain()
        return [await self.answer() for _ in requests]

    async def answer(self) -> bytes:
        """One answer (headers and a Content-Length body); a challenge's nonce is kept."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        size = re.search(rb"\r\nContent-Length: (\d+)", head)
        body = await self.reader.readexactly(int(size[1])) if size else b""
        if (nonce := _NONCE.search(head)) is not None:
            self.nonce = nonce[1].decode()
            self.realm = re.search(rb'realm="([^"]+)"', head)[1].decode()  # type: ignore[index]
        return head + body


def normal(answer: bytes) -> bytes:
    """An answer without what differs between two servers: the Date and the nonce."""
    answer = re.sub(rb"\r\nDate: [^\r]*", b"", answer)
    return _NONCE.sub(b'nonce="N"', answer)


def journal(runtime: Runtime) -> list[tuple[Any, ...]]:
    """Every journal entry without its number, wall time and duration; Digest values masked."""
    out = []
    for log in runtime.journal.logs.values():
        for e in log:
            headers = tuple(
                (k, re.sub(rb'(nonce|response)="[^"]*"', rb'\1="X"', v)) for k, v in e[7]
            )
            out.append((e[2], e[3], e[4], e[5], e[6], headers, *e[8:14]))
    return out


def metrics(served: ServedFleet) -> dict[str, Any]:
    """The request counts by (path, status, model) and the Digest failures by reason."""
    m = served.runner.app[METRICS]
    counts = {
        (getattr(getattr(route, "resource", None), "canonical", None), status, model): sum(
            hist.counts
        )
        for (route, status, model), hist in m.requests.items()
    }
    return {"requests": counts, "digest": dict(m.digest_failures)}


@asynccontextmanager
async def served(fast: bool, limits: Limits | None = None) -> AsyncIterator[ServedFleet]:
    """The scenario's fleet on free ports, with or without the fast path."""
    fleet = await serve_fleet(
        make_fleet(SCENARIO), "127.0.0.1", 0, fast_path=fast, limits=limits or Limits()
    )
    try:
        yield fleet
    finally:
        await fleet.cleanup()


@asynccontextmanager
async def connect(fleet: ServedFleet, device: str, window: int = 0) -> AsyncIterator[Conn]:
    """A raw connection to a served device (``window``: the client's receive buffer)."""
    sock = socket.socket()
    if window:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, fleet.addresses[device][0])
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        yield Conn(reader, writer)
    finally:
        writer.close()


Talk = Callable[[ServedFleet], Awaitable[list[bytes]]]


async def both_ways(talk: Talk, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], int]:
    """The conversation's answers, the same both ways; how many the fast path answered."""
    answered = [0]
    original = FastPath.answer

    def counted(self: FastPath, *args: Any) -> bool:
        done = original(self, *args)
        answered[0] += done
        return done

    monkeypatch.setattr(FastPath, "answer", counted)
    results = []
    for fast in (True, False):
        async with served(fast) as fleet:
            raw = await talk(fleet)
            final = [a for a in raw if not a.startswith(b"HTTP/1.1 1")]  # not 100 Continue
            assert all(_DATE.search(a) for a in final)  # dated as HTTP dates an answer
            answers = [normal(a) for a in raw]
            results.append((answers, journal(fleet.runtime), metrics(fleet)))
        if fast:
            fast_answered, answered[0] = answered[0], 0
    assert answered[0] == 0  # without the fast path, aiohttp answered everything
    (answers, journal_fast, metrics_fast), (slow_answers, journal_slow, metrics_slow) = results
    assert answers == slow_answers
    assert journal_fast == journal_slow
    assert metrics_fast == metrics_slow
    return answers, fast_answered


async def test_digest_outcomes_answer_as_through_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    async def talk(fleet: ServedFleet) -> list[bytes]:
        async with connect(fleet, "door") as c:
            out = await c.send(c.request(OCC))  # no credentials: the challenge
            good = c.request(OCC, "viewer")
            out += await c.send(good)
            out += await c.send(good)  # the same nc again: replayed (strict_nc)
            out += await c.send(c.request(OCC, "viewer", "wrong"))
            out += await c.send(c.request(OCC, "nobody", "x"))
            out += await c.send(c.request(OCC, extra="Authorization: Digest garbage\r\n"))
            out += await c.send(c.request(OCC, extra="Authorization: Basic cm9vdDpwYXNz\r\n"))
            out += await c.send(c.request(OCC, "root", extra="Connection: keep-alive\r\n"))
            out += await c.send(c.request(OCC, "operator"))
        return out

    answers, fast = await both_ways(talk, monkeypatch)
    statuses = [a.split(b" ", 2)[1] for a in answers]
    assert statuses == [b"401", b"200", b"401", b"401", b"401", b"401", b"401", b"200", b"200"]
    assert b"stale=true" in answers[2]
    assert fast == 9


async def test_pipelined_and_split_requests_keep_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def talk(fleet: ServedFleet) -> list[bytes]:
        async with connect(fleet, "door") as c:
            out = await c.send(c.request(OCC))
            out += await c.send(c.request(OCC, "root"), c.request(OCC, "viewer"))
            param = "/axis-cgi/param.cgi?action=list&group=Brand"
            out += await c.send(
                c.request(OCC, "root"), c.request(param, "root"), c.request(OCC, "root")
            )
            out += await c.send(c.request(OCC, "root"))  # after aiohttp's answer: fast again
            out += await c.send(c.request(OCC, "root"), pause=0.05)  # a head in two pieces
            out += await c.send(c.request(OCC + "?x=1", "root"))  # a query: aiohttp's
            out += await c.send(c.request(OCC, "root", extra="Content-Length: 0\r\n"))
        return out

    answers, fast = await both_ways(talk, monkeypatch)
    assert [a.split(b" ", 2)[1] for a in answers] == [b"401"] + [b"200"] * 9
    assert b"root.Brand.Brand=AXIS" in answers[4]
    assert fast == 6  # not param.cgi and the reading behind it, the query, a Content-Length


async def test_the_older_models_readings_and_another_models_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def talk(fleet: ServedFleet) -> list[bytes]:
        async with connect(fleet, "legacy") as c:
            out = await c.send(c.request("/stereo/fps.json"))
            for path in ("/stereo/people-counter/counts.json", "/stereo/fps.json"):
                out += await c.send(c.request(path, "viewer"))
            out += await c.send(c.request("/stereo/io.json", "operator"))
            out += await c.send(c.request(OCC, "root"))  # the P8815-2's API: 404
        return out

    answers, fast = await both_ways(talk, monkeypatch)
    assert [a.split(b" ", 2)[1] for a in answers] == [b"401", b"200", b"200", b"200", b"404"]
    assert b'"fps": ' in answers[2]
    assert fast == 4


async def test_a_device_restarting_resets_readings_as_before() -> None:
    async with served(True) as fleet:
        fleet.runtime.inject(RebootEvent(kind="reboot", device="door", down_s=75))
        async with connect(fleet, "door") as c:
            c.writer.write(c.request(OCC))
            with contextlib.suppress(ConnectionResetError):
                assert await c.reader.read() == b""  # reset (or closed) without an answer
        entry = fleet.runtime.journal.logs["door"][-1]
        assert entry[11:13] == (0, "restarting")


async def test_kept_alive_readings_still_close_at_the_keep_alive_timeout() -> None:
    async with served(True, Limits(keepalive_timeout=0.3)) as fleet, connect(fleet, "door") as c:
        await c.send(c.request(OCC))
        for _ in range(3):
            assert b" 200 " in (await c.send(c.request(OCC, "root")))[0]
        start = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(c.reader.read(), 5) == b""
        assert asyncio.get_running_loop().time() - start < 3


async def test_a_partial_reading_head_gets_408_at_the_header_timeout() -> None:
    limits = Limits(header_timeout=0.3, header_timeout_max=0.5)
    async with served(True, limits) as fleet, connect(fleet, "door") as c:
        await c.send(c.request(OCC))
        c.writer.write(c.request(OCC, "root")[:40])
        answer = await asyncio.wait_for(c.reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


async def test_many_pipelined_readings_unread_are_all_answered_in_order() -> None:
    """A client that sends and does not read: the server's writes back up, aiohttp answers
    while they do (it waits for them to drain), and every answer arrives once, in order."""
    async with served(True) as fleet, connect(fleet, "door", window=4096) as c:
        await c.send(c.request(OCC))
        paths = [OCC] * 20000 + ["/axis-cgi/param.cgi?action=list", OCC]
        c.writer.write(b"".join(c.request(p, "root") for p in paths))
        await asyncio.sleep(0.5)
        answers = [await c.answer() for _ in paths]
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") for a in answers)
    kinds = [b'"occupancy"' in a for a in answers]
    assert kinds == [p == OCC for p in paths]


ODD_HEADS = [
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\n\r\n",  # no Host
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-A: \x01\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-A: caf\xc3\xa9 \xff\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-A:\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-A: a\tb \t\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost : d\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-A: a\rb\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-A: a\nb\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\nHost: d\n\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\n folded\r\n\r\n",
    b"get /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET  /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET http://d/a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET /a3dpc/api/occupancy#top HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.0\r\nHost: d\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nAuthorization: Digest a=1\r\n"
    b"Authorization: Digest b=2\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nAuthorization: Digest \xff\xfe\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\n" + b"X-N: 1\r\n" * 150 + b"\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-\x7f: 1\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nHost: e\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost:\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nExpect: 100-continue\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX(A): 1\r\n\r\n",
    b"GET /a3dpc/api/occ%75pancy HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET /a3dpc/api/occupancy\x00 HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nhOST: d\r\nconnection: Keep-Alive\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),  # TLS to the HTTP port
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\n",  # a bare LF in an unfinished head
]


@pytest.mark.parametrize("alone", [False, True], ids=["then-a-reading", "alone"])
@pytest.mark.parametrize("head", ODD_HEADS, ids=range(len(ODD_HEADS)))
async def test_odd_request_heads_answer_as_through_aiohttp(
    head: bytes, alone: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def talk(fleet: ServedFleet) -> list[bytes]:
        async with connect(fleet, "door") as c:
            c.writer.write(head + (b"" if alone else c.request(OCC)))  # a reading behind it
            out = []
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionResetError):
                for _ in range(1 if alone else 2):
                    out.append(await c.answer())
            return out

    await both_ways(talk, monkeypatch)


def test_the_installed_aiohttp_has_what_the_fast_path_reads() -> None:
    # Without it every request would silently go through aiohttp (still right, but slow).
    assert fast_path_supported()


async def test_without_the_fast_path_aiohttp_answers_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "FAST", False)  # as with an aiohttp lacking that state
    calls: list[object] = []
    monkeypatch.setattr(FastPath, "answer", lambda *a: calls.append(a))
    async with served(True) as fleet, connect(fleet, "door") as c:
        await c.send(c.request(OCC))
        assert b'"occupancy"' in (await c.send(c.request(OCC, "root")))[0]
    assert calls == []
