"""A local push receiver for tests: records what the simulator pushes, answers as told."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> Any:
        return json.loads(self.body)

    @property
    def utc_from(self) -> str:
        return str(self.doc["data"]["utcFrom"])


@dataclass
class Receiver:
    """A push endpoint: records requests, answers queued statuses (then 200), can go down."""

    ssl_ctx: ssl.SSLContext | None
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.requests.append(Received(dict(request.headers), body))
        return web.Response(status=status, text="ok" if status == 200 else "no")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.ssl_ctx)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_ctx else "http"
        return f"{scheme}://127.0.0.1:{self.port}/push"

    def froms(self) -> list[str]:
        return [r.utc_from for r in self.requests]


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (polling every 2 ms) until ``pred()`` holds; TimeoutError after ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.002)


def utc(t: float) -> str:
    """An epoch time as the push payload's UTC text."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
