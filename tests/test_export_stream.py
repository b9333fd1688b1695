"""Streamed exports: a failure after the headers cuts the connection; other requests get turns."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp.test_utils import TestServer
from requests.auth import HTTPDigestAuth

from simulator.api.app import create_app
from simulator.device import Chunk, Device
from simulator.schema.scenario import DeviceConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

WEEK = "start=20240531&end=20240607&resolution="
A3DPC_CSV = "/a3dpc/api/export/csv?" + WEEK + "minute"
A3DPC_JSON = "/a3dpc/api/export/json?" + WEEK + "minute"
STEREO_JSON = "/stereo/people-counter/export.json?date=20240531-20240606&resolution=minute"


def fail_after(monkeypatch: pytest.MonkeyPatch, good: int) -> None:
    """Make every device's traffic export raise after ``good`` chunks (a dying CGI)."""
    real = Device.traffic

    def dying(self: Device, *args: Any, **kwargs: Any) -> Iterator[Chunk]:
        for n, chunk in enumerate(real(self, *args, **kwargs)):
            if n == good:
                raise RuntimeError("the model broke mid-export")
            yield chunk

    monkeypatch.setattr(Device, "traffic", dying)


@pytest.mark.parametrize("path", [A3DPC_CSV, A3DPC_JSON, STEREO_JSON])
async def test_failure_mid_export_cuts_the_connection(
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    model = "3D People Counter" if path.startswith("/stereo") else "P8815-2"
    fleet = make_fleet(Scenario(devices=[DeviceConfig(model=model)]))
    client = await client_for(fleet)
    whole = await (await client.get(path)).read()
    fail_after(monkeypatch, good=2)
    async with asyncio.timeout(30):
        r = await client.get(path)
        assert r.status == 200  # the headers were out before the failure
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    failures = [x for x in caplog.records if x.levelno == logging.ERROR]
    assert failures and failures[0].exc_info is not None
    assert "mid-export" in str(failures[0].exc_info[1])
    journal = fleet.journal.entries(fleet.fleet.devices[0].id)
    assert journal[-1]["status"] == 0  # no answer was completed
    monkeypatch.undo()
    assert await (await client.get(path)).read() == whole  # the simulator keeps serving


def _raw_get(host: str, port: int, path: str, authorization: str) -> bytes:
    """Every byte the server sends for one GET, until it closes the connection."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_the_bytes_on_the_wire_hold_no_error_page(monkeypatch: pytest.MonkeyPatch) -> None:
    server = TestServer(create_app(make_fleet()), host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url(A3DPC_JSON))
        r = await asyncio.to_thread(
            requests.get, url, auth=HTTPDigestAuth("viewer", "viewer"), timeout=30
        )
        assert r.status_code == 200 and r.json()["data"]
        authorization = r.request.headers["Authorization"]  # reusable: strict_nc is off
        fail_after(monkeypatch, good=1)
        raw = await asyncio.to_thread(
            _raw_get, server.host, int(server.port or 0), A3DPC_JSON, authorization
        )
    finally:
        await server.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"chunked" in head
    assert b"data" in body and b"HTTP/1.1" not in body and b"Internal" not in body
    assert not body.endswith(b"0\r\n\r\n")  # no last chunk: the response is incomplete


async def test_a_slow_export_gives_other_tasks_turns(
    client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day that takes a while to draw is followed by a turn of the event loop."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    seen: list[int] = []
    real = Device.traffic

    def slow(self: Device, *args: Any, **kwargs: Any) -> Iterator[Chunk]:
        for chunk in real(self, *args, **kwargs):
            time.sleep(0.005)  # longer than a turn (render.TURN_S), blocking the loop
            seen.append(ticks)
            yield chunk

    client = await client_for(make_fleet())
    monkeypatch.setattr(Device, "traffic", slow)
    task = asyncio.create_task(ticker())
    try:
        r = await client.get("/a3dpc/api/export/csv?" + WEEK + "hour")
        assert r.status == 200 and (await r.read()).count(b"\n") == 1 + 7 * 24
    finally:
        task.cancel()
    assert len(seen) == 7
    assert all(b > a for a, b in itertools.pairwise(seen)), seen
