"""The web server's one face: Apache's Server header and error pages, one JSON Content-Type."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from simulator.api import app as app_module
from simulator.schema.scenario import DeviceConfig, Scenario
from simulator.server import serve_fleet
from tests.conftest import ClientFactory, make_fleet

Client = TestClient[Any, Any]
HTML = "text/html; charset=iso-8859-1"
DOCTYPE = '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
UNAUTHORIZED = (
    DOCTYPE + "<title>401 Unauthorized</title>\n</head><body>\n<h1>Unauthorized</h1>\n"
    "<p>This server could not verify that you\nare authorized to access the document\n"
    "requested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\n"
    "browser doesn't understand how to supply\nthe credentials required.</p>\n</body></html>\n"
)
NOT_FOUND = (
    DOCTYPE + "<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on this server.</p>\n</body></html>\n"
)
NOT_ALLOWED = (
    DOCTYPE + "<title>405 Method Not Allowed</title>\n</head><body>\n<h1>Method Not Allowed</h1>\n"
    "<p>The requested method GET is not allowed for this URL.</p>\n</body></html>\n"
)
RPC = "/axis-cgi/a3dpc.cgi"
INFO = "/axis-cgi/basicdeviceinfo.cgi"


async def test_401_is_apaches_page_with_its_server_header(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), user=None)
    r = await client.get("/a3dpc/api/occupancy")
    assert r.status == 401
    assert r.headers["Server"] == "Apache"
    assert r.headers["Content-Type"] == HTML
    assert await r.text() == UNAUTHORIZED


async def test_404_and_405_are_apaches_pages(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), user=None)
    r = await client.get("/no/such/page")
    assert (r.status, r.headers["Content-Type"], r.headers["Server"]) == (404, HTML, "Apache")
    assert await r.text() == NOT_FOUND
    r = await client.get(RPC)  # POST only
    assert (r.status, r.headers["Content-Type"], r.headers["Allow"]) == (405, HTML, "POST")
    assert await r.text() == NOT_ALLOWED


async def test_another_models_api_is_apaches_404(viewer: Client) -> None:
    r = await viewer.get("/stereo/params.json")  # the legacy model's API, not the P8815-2's
    assert (r.status, r.headers["Content-Type"]) == (404, HTML)
    assert await r.text() == NOT_FOUND


async def test_every_answer_names_apache_not_aiohttp(viewer: Client) -> None:
    for path in ("/a3dpc/api/occupancy", "/axis-cgi/applications/list.cgi", "/sim/v1/health"):
        r = await viewer.get(path)
        assert r.status == 200, path
        assert r.headers["Server"] == "Apache", path
        assert "aiohttp" not in r.headers["Server"] and "Python" not in r.headers["Server"]


async def test_json_answers_have_one_content_type_with_or_without_error(
    operator: Client, client_for: ClientFactory
) -> None:
    ok = {"apiVersion": "1.0", "method": "restartPassthroughCountdown"}
    answers = [
        await operator.get("/a3dpc/api/occupancy"),
        await operator.get("/a3dpc/api/export/json?start=today&end=now&resolution=hour"),
        await operator.get("/a3dpc/api/export/json?start=today&end=never&resolution=hour"),
        await operator.post(RPC, json=ok),
        await operator.post(RPC, json={**ok, "apiVersion": "9.0"}),
        await operator.post(INFO, json={"method": "nope"}),
        await operator.post(INFO, json={"apiVersion": "1.0", "method": "getAllProperties"}),
    ]
    legacy = Scenario(devices=[DeviceConfig(model="3D People Counter")])
    stereo = await client_for(make_fleet(legacy), "viewer")
    answers += [
        await stereo.get("/stereo/params.json"),
        await stereo.get("/stereo/people-counter/export.json?date=20240607"),
        await stereo.get("/stereo/people-counter/export.json?date=never"),
    ]
    assert sorted({r.status for r in answers}) == [200, 400]
    assert {r.headers["Content-Type"] for r in answers} == {"application/json"}


async def test_the_control_plane_keeps_its_json_errors(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), user=None)
    r = await client.get("/sim/v1/no-such-thing", headers={"Authorization": "Bearer p8815-sim"})
    assert (r.status, r.headers["Content-Type"]) == (404, "application/json")
    assert "error" in await r.json()
    r = await client.get("/sim/v1/clock")  # no token
    assert (r.status, r.headers["Content-Type"]) == (401, "application/json")
    assert "control token" in (await r.json())["error"]["message"]


BAD_REQUEST = (
    DOCTYPE + "<title>400 Bad Request</title>\n</head><body>\n<h1>Bad Request</h1>\n"
    "<p>Your browser sent a request that this server could not understand.<br />\n</p>\n"
    "</body></html>\n"
).encode()
UNREADABLE = [
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\n\r\n",  # no Host
    b"GET /a3dpc/api/occupancy HTTP/1.1\r\nHost: d\r\nX-A: \x01\r\n\r\n",
    b"BLAH\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: d\r\nX(A): 1\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: d\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",  # TLS to HTTP
]


@pytest.mark.parametrize("head", UNREADABLE, ids=range(len(UNREADABLE)))
async def test_a_request_the_server_cannot_read_gets_apaches_400(
    head: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve_fleet(make_fleet(), "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(*served.addresses["entrance"][0])
        writer.write(head)
        answer = await asyncio.wait_for(reader.read(), 10)  # then the connection is closed
        writer.close()
    finally:
        await served.cleanup()
    status, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status == b"HTTP/1.1 400 Bad Request"
    assert b"\r\nServer: Apache" in b"\r\n" + headers
    assert b"Content-Type: text/html; charset=iso-8859-1" in headers
    assert b"Connection: close" in headers
    assert body == BAD_REQUEST
    assert b"aiohttp" not in answer and b"Python" not in answer
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no traceback


async def test_a_failure_outside_the_devices_handlers_is_apaches_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("a defect")

    monkeypatch.setattr(app_module.metrics, "timed_control", broken)
    served = await serve_fleet(make_fleet(), "127.0.0.1", 0, fast_path=False)
    try:
        url = served.url("entrance") + "/sim/v1/health"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            status, server, text = r.status, r.headers["Server"], await r.text()
    finally:
        await served.cleanup()
    assert (status, server) == (500, "Apache")
    assert text.startswith(DOCTYPE + "<title>500 Internal Server Error</title>")
    assert "a defect" not in text and "Traceback" not in text
    assert any("a defect" in str(r.exc_info) for r in caplog.records)  # the log has it
