"""Shared rendering of export chunks: local-time labels, CSV and JSON, streamed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

from aiohttp import web

from simulator.api.faults import BUFFERED
from simulator.device import Chunk

#: "HH:MM:00" for every wall-clock minute of a day.
HM = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]

CONTENT_TYPES = {"csv": "text/csv", "json": "application/json"}


def labels(chunk: Chunk) -> tuple[list[str], list[str]]:
    """Local ``YYYY-MM-DD HH:MM:SS`` start and end labels of a chunk's returned bins."""
    grid = chunk.grid
    ds = grid.day.isoformat()
    walls = grid.wall_minute[chunk.starts].tolist()
    starts = [f"{ds} {HM[w]}" for w in walls]
    ends = [*starts[1:], f"{(grid.day + timedelta(days=1)).isoformat()} 00:00:00"]
    return starts[chunk.keep], ends[chunk.keep]


Encoder = Callable[[Iterable[Chunk]], Iterator[str]]


def csv_encoder(names: tuple[str, ...]) -> Encoder:
    """CSV: a header line ``start,end,<names>``, then one line per bin."""

    def encode(chunks: Iterable[Chunk]) -> Iterator[str]:
        yield ",".join(("start", "end", *names)) + "\n"
        for chunk in chunks:
            starts, ends = labels(chunk)
            cols = [v.tolist() for v in chunk.values]
            if len(cols) == 2:
                yield "".join(
                    f"{s},{e},{a},{b}\n" for s, e, a, b in zip(starts, ends, *cols, strict=True)
                )
            else:
                yield "".join(
                    f"{s},{e},{a}\n" for s, e, a in zip(starts, ends, cols[0], strict=True)
                )

    return encode


def json_encoder(names: tuple[str, ...]) -> Encoder:
    """JSON ``{"data": [{"start": ..., "end": ..., <names>...}, ...]}``, as json.dumps writes it."""
    keys = [json.dumps(n) for n in names]

    def encode(chunks: Iterable[Chunk]) -> Iterator[str]:
        yield '{"data": ['
        sep = ""
        for chunk in chunks:
            starts, ends = labels(chunk)
            cols = [v.tolist() for v in chunk.values]
            parts = []
            for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
                fields = "".join(f", {k}: {c[i]}" for k, c in zip(keys, cols, strict=True))
                parts.append(f'{sep}{{"start": "{s}", "end": "{e}"{fields}}}')
                sep = ", "
            yield "".join(parts)
        yield "]}"

    return encode


async def stream(
    request: web.Request,
    content_type: str,
    body: Iterator[str],
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Send an export body piece by piece, so a year of minutes never sits in memory.

    Under a body fault (``BUFFERED``) the body is answered whole instead, for the fault to
    corrupt, cut or dribble.
    """
    if request.get(BUFFERED):
        text = "".join(body).encode()
        whole = web.Response(status=200, body=text, headers=headers, content_type=content_type)
        if content_type.startswith("text/"):
            whole.charset = "utf-8"
        return whole
    resp = web.StreamResponse(status=200, headers=headers)
    resp.content_type = content_type
    resp.charset = "utf-8" if content_type.startswith("text/") else None
    await resp.prepare(request)
    for piece in body:
        await resp.write(piece.encode())
    await resp.write_eof()
    return resp
