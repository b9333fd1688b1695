"""Shared rendering of export chunks: local-time labels, CSV and JSON, streamed."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

import numpy as np
from aiohttp import web

from simulator.api.faults import BUFFERED, ConnectionDropped
from simulator.device import Chunk

#: "HH:MM:00" for every wall-clock minute of a day.
HM = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]

CONTENT_TYPES = {"csv": "text/csv", "json": "application/json"}
#: The longest an export computes before giving other requests a turn of the event loop.
TURN_S = 0.001

log = logging.getLogger("simulator.api")


def labels(chunk: Chunk) -> tuple[list[str], list[str]]:
    """Local ``YYYY-MM-DD HH:MM:SS`` start and end labels of a chunk's returned bins.

    A bin ends where the next begins, except in the hour the clocks go back: there the next
    bin's label repeats this one's (02:00 after 02:xx), so the bin's end is read on its own
    clock instead (``03:00:00``), and every label pair spans the bin's real length.
    """
    grid = chunk.grid
    ds = grid.day.isoformat()
    walls = grid.wall_minute[chunk.starts]
    following = np.append(walls[1:], 1440)
    length = np.diff(np.append(chunk.starts, grid.n))
    end_walls = np.where(following > walls, following, walls + length)
    starts = [f"{ds} {HM[w]}" for w in walls.tolist()]
    tomorrow = f"{(grid.day + timedelta(days=1)).isoformat()} 00:00:00"
    ends = [f"{ds} {HM[w]}" if w < 1440 else tomorrow for w in end_walls.tolist()]
    return starts[chunk.keep], ends[chunk.keep]


Encoder = Callable[[Iterable[Chunk]], Iterator[str]]

#: Bins per piece of an encoded body: a piece takes well under a millisecond to write.
ROWS = 240


def slices(n: int) -> Iterator[slice]:
    """Consecutive slices of at most ``ROWS`` rows covering ``n`` rows."""
    return (slice(i, i + ROWS) for i in range(0, n, ROWS))


def _pieces(chunk: Chunk) -> Iterator[Iterator[tuple[Any, ...]]]:
    """A chunk's rows ``(start, end, *values)``, at most ``ROWS`` at a time."""
    starts, ends = labels(chunk)
    cols = [v.tolist() for v in chunk.values]
    for part in slices(len(starts)):
        yield zip(starts[part], ends[part], *(c[part] for c in cols), strict=True)


def csv_encoder(names: tuple[str, ...]) -> Encoder:
    """CSV: a header line ``start,end,<names>``, then one line per bin (one or two names)."""

    def encode(chunks: Iterable[Chunk]) -> Iterator[str]:
        yield ",".join(("start", "end", *names)) + "\n"
        for chunk in chunks:
            for rows in _pieces(chunk):
                if len(names) == 2:
                    yield "".join(f"{s},{e},{a},{b}\n" for s, e, a, b in rows)
                else:
                    yield "".join(f"{s},{e},{a}\n" for s, e, a in rows)

    return encode


def json_encoder(names: tuple[str, ...]) -> Encoder:
    """JSON ``{"data": [{"start": ..., "end": ..., <names>...}, ...]}``, as json.dumps writes it.

    One or two value names.
    """
    k = [json.dumps(n) for n in names]

    def encode(chunks: Iterable[Chunk]) -> Iterator[str]:
        yield '{"data": ['
        sep = ""
        for chunk in chunks:
            for rows in _pieces(chunk):
                if len(k) == 2:
                    text = ", ".join(
                        f'{{"start": "{s}", "end": "{e}", {k[0]}: {a}, {k[1]}: {b}}}'
                        for s, e, a, b in rows
                    )
                else:
                    text = ", ".join(
                        f'{{"start": "{s}", "end": "{e}", {k[0]}: {a}}}' for s, e, a in rows
                    )
                yield sep + text
                sep = ", "
        yield "]}"

    return encode


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _turn() -> asyncio.Lock:
    """The lock the exports of this event loop take turns with: one turn per loop iteration."""
    loop = asyncio.get_running_loop()
    lock = _TURNS.get(loop)
    if lock is None:
        lock = _TURNS[loop] = asyncio.Lock()
    return lock


def _one_turn(pieces: Iterator[str]) -> tuple[list[str], Exception | None]:
    """The pieces made within one turn of ``TURN_S`` (at least one, unless none are left),
    and the failure that ended the turn early, if any (the pieces before it still count)."""
    out: list[str] = []
    end = time.perf_counter() + TURN_S
    try:
        for piece in pieces:
            out.append(piece)
            if time.perf_counter() >= end:
                break
    except Exception as exc:
        return out, exc
    return out, None


async def paced(pieces: Iterable[str]) -> AsyncIterator[str]:
    """The pieces, made in turns of about ``TURN_S``.

    Concurrent exports take turns (first come, first served): a turn keeps the lock until
    the event loop's next iteration, so each iteration runs at most one export's turn
    besides everything else that is ready. Other requests wait for a few turns, however
    many exports run.
    """
    loop, it, turn = asyncio.get_running_loop(), iter(pieces), _turn()
    while True:
        await turn.acquire()
        try:
            batch, failure = _one_turn(it)
        finally:
            loop.call_soon(turn.release)
        for piece in batch:
            yield piece
        if failure is not None:
            raise failure
        if not batch:
            return
        await asyncio.sleep(0)


async def stream(
    request: web.Request,
    content_type: str,
    body: Iterator[str],
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Send an export body piece by piece, so a year of minutes never sits in memory.

    Other requests get turns between pieces (see :func:`paced`). The first piece is made
    before the headers: a failure there is an ordinary error response. A failure once the
    headers are out cuts the connection (the client sees an incomplete response, as from
    a device whose CGI died), never an error page inside the 200 body. Under a body fault
    (``BUFFERED``) the body is answered whole instead, for the fault to corrupt, cut or
    dribble.
    """
    pieces = paced(body)
    if request.get(BUFFERED):
        text = "".join([piece async for piece in pieces]).encode()
        whole = web.Response(status=200, body=text, headers=headers, content_type=content_type)
        if content_type.startswith("text/"):
            whole.charset = "utf-8"
        return whole
    first = await anext(pieces, "")
    resp = web.StreamResponse(status=200, headers=headers)
    resp.content_type = content_type
    resp.charset = "utf-8" if content_type.startswith("text/") else None
    await resp.prepare(request)
    try:
        await _send(resp, first, pieces)
    except ConnectionDropped:
        raise
    except Exception:
        log.exception("export failed after its headers: cut %s %s", request.method, request.path)
        if request.transport is not None:
            request.transport.close()
        raise ConnectionDropped from None
    await resp.write_eof()
    return resp


async def _send(resp: web.StreamResponse, first: str, rest: AsyncIterator[str]) -> None:
    """Write the first piece and the rest; ConnectionDropped when the client went away."""
    try:
        await resp.write(first.encode())
        async for piece in rest:
            await resp.write(piece.encode())
    except ConnectionError:
        raise ConnectionDropped from None
