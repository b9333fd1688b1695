"""HTTP Digest on the wire, with real clients: aiohttp, requests and curl."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp.test_utils import TestServer
from freezegun import freeze_time
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

from simulator.api.app import create_app
from simulator.schema.scenario import AuthConfig, DeviceConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

OCC = "/a3dpc/api/occupancy"
CHALLENGE = re.compile(
    r'^Digest realm="AXIS_ACCC8EF3D92E", nonce="[^"]+", algorithm=(MD5|SHA-256), qop="auth"'
    r"(, stale=true)?$"
)


def fleet_with(**auth: Any) -> Any:
    return make_fleet(Scenario(devices=[DeviceConfig(auth=AuthConfig(**auth))]))


def header_for(chal_header: str, method: str, url: str, user: str, password: str) -> str:
    """What requests' HTTPDigestAuth sends for a challenge."""
    client = HTTPDigestAuth(user, password)
    client.init_per_thread_state()
    client._thread_local.chal = parse_dict_header(chal_header.removeprefix("Digest "))
    header = client.build_digest_header(method, url)
    assert header is not None
    return header


async def test_challenge_is_one_axis_style_header(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), user=None)
    r = await client.get(OCC)
    assert r.status == 401
    challenges = r.headers.getall("WWW-Authenticate")
    assert len(challenges) == 1
    assert CHALLENGE.match(challenges[0]) and "stale" not in challenges[0]
    assert "occupancy" not in await r.text()


async def test_wrong_password_never_reveals_data(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), "viewer", "wrong")
    for path in (OCC, "/a3dpc/api/export/csv?start=today&end=now&resolution=day"):
        r = await client.get(path)
        assert r.status == 401
        assert "total_in" not in await r.text() and "start,end" not in await r.text()


async def test_unknown_user_is_refused(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(), "mallory", "viewer")
    assert (await client.get(OCC)).status == 401


async def test_unknown_path_is_404(viewer: Any) -> None:
    assert (await viewer.get("/nope")).status == 404
    assert (await viewer.get("/a3dpc/api/export/xml?start=today")).status == 404


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
async def test_requests_http_digest_auth(algorithm: str) -> None:
    async with TestServer(create_app(fleet_with(algorithm=algorithm)), host="127.0.0.1") as server:
        url = str(server.make_url(OCC))

        def fetch() -> requests.Response:
            return requests.get(url, auth=HTTPDigestAuth("viewer", "viewer"), timeout=10)

        r = await asyncio.to_thread(fetch)
        assert r.status_code == 200, r.text
        assert r.json()["serial"] == "ac:cc:8e:f3:d9:2e"


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
async def test_aiohttp_digest_middleware(client_for: ClientFactory, algorithm: str) -> None:
    client = await client_for(fleet_with(algorithm=algorithm), "operator")
    r = await client.get(OCC)
    assert r.status == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_digest() -> None:
    async with TestServer(create_app(make_fleet()), host="127.0.0.1") as server:
        url = str(server.make_url("/a3dpc/api/export/csv?start=yesterday&end=today&resolution=day"))
        proc = await asyncio.create_subprocess_exec(
            "curl",
            "-sS",
            "--digest",
            "-u",
            "viewer:viewer",
            "-w",
            "\n%{http_code}",
            url,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        body, code = out.decode().rsplit("\n", 1)
        assert code == "200"
        assert body.startswith("start,end,in,out\n2024-06-06 00:00:00,2024-06-07 00:00:00,")


async def test_expired_nonce_is_stale_and_clients_retry(client_for: ClientFactory) -> None:
    with freeze_time("2026-01-01 12:00:00", real_asyncio=True) as frozen:
        fleet = make_fleet()
        raw = await client_for(fleet, user=None)
        chal = (await raw.get(OCC)).headers["WWW-Authenticate"]
        url = str(raw.make_url(OCC))
        header = header_for(chal, "GET", url, "viewer", "viewer")
        assert (await raw.get(OCC, headers={"Authorization": header})).status == 200
        frozen.tick(301)
        r = await raw.get(OCC, headers={"Authorization": header})
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].endswith(", stale=true")
        # A wrong password on an expired nonce is not stale: no retry would help.
        bad = header_for(chal, "GET", url, "viewer", "nope")
        r = await raw.get(OCC, headers={"Authorization": bad})
        assert "stale" not in r.headers["WWW-Authenticate"]
        # Clients that know stale=true retry transparently.
        client = await client_for(fleet, "viewer")
        assert (await client.get(OCC)).status == 200
        frozen.tick(301)
        assert (await client.get(OCC)).status == 200


async def test_nonce_lifetime_is_a_scenario_option(client_for: ClientFactory) -> None:
    with freeze_time("2026-01-01 12:00:00", real_asyncio=True) as frozen:
        raw = await client_for(fleet_with(nonce_lifetime_s=10), user=None)
        chal = (await raw.get(OCC)).headers["WWW-Authenticate"]
        header = header_for(chal, "GET", str(raw.make_url(OCC)), "viewer", "viewer")
        frozen.tick(11)
        r = await raw.get(OCC, headers={"Authorization": header})
        assert r.status == 401 and "stale=true" in r.headers["WWW-Authenticate"]


@pytest.mark.parametrize("strict", [False, True])
async def test_replayed_nc(client_for: ClientFactory, strict: bool) -> None:
    raw = await client_for(fleet_with(strict_nc=strict), user=None)
    chal = (await raw.get(OCC)).headers["WWW-Authenticate"]
    header = header_for(chal, "GET", str(raw.make_url(OCC)), "viewer", "viewer")
    assert (await raw.get(OCC, headers={"Authorization": header})).status == 200
    again = await raw.get(OCC, headers={"Authorization": header})
    if strict:
        assert again.status == 401
        assert again.headers["WWW-Authenticate"].endswith("stale=true")
    else:
        assert again.status == 200


async def test_strict_nc_allows_increasing_counts(client_for: ClientFactory) -> None:
    client = await client_for(fleet_with(strict_nc=True), "viewer")
    for _ in range(3):
        assert (await client.get(OCC)).status == 200


async def test_digest_for_another_uri_is_refused(client_for: ClientFactory) -> None:
    raw = await client_for(make_fleet(), user=None)
    chal = (await raw.get(OCC)).headers["WWW-Authenticate"]
    header = header_for(chal, "GET", str(raw.make_url("/other")), "viewer", "viewer")
    assert (await raw.get(OCC, headers={"Authorization": header})).status == 401


@pytest.mark.parametrize(
    "header",
    ["Basic dmlld2VyOnZpZXdlcg==", "Digest", 'Digest username="viewer", nonce="x"', "Digest ,,,"],
)
async def test_garbage_authorization_gets_a_challenge(
    client_for: ClientFactory, header: str
) -> None:
    raw = await client_for(make_fleet(), user=None)
    r = await raw.get(OCC, headers={"Authorization": header})
    assert r.status == 401 and CHALLENGE.match(r.headers["WWW-Authenticate"])


async def test_aiohttp_session_against_real_socket() -> None:
    async with TestServer(create_app(make_fleet()), host="127.0.0.1") as server:
        mw = aiohttp.DigestAuthMiddleware("viewer", "viewer")
        async with aiohttp.ClientSession(middlewares=(mw,)) as s, s.get(server.make_url(OCC)) as r:
            assert r.status == 200
