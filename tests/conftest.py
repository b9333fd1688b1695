"""Shared fixtures: a fleet on a frozen clock, Digest clients against the real app, a test CA."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp.test_utils import TestClient

from simulator.api.app import create_app
from simulator.clock import SimClock
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import Scenario
from tests.receivers import Receiver

# Served processes take free HTTPS ports (a fixed 8443 would clash between test runs).
os.environ.setdefault("P8815_SIM_HTTPS_PORT", "0")

# A Friday afternoon in Stockholm (CEST, UTC+2).
T0 = datetime(2024, 6, 7, 13, 30, 20, tzinfo=UTC).timestamp()

ClientFactory = Callable[..., Coroutine[Any, Any, TestClient[Any, Any]]]


def make_fleet(
    scenario: Scenario | None = None,
    at: float = T0,
    seed: int | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Runtime:
    """A fleet of the scenario with the clock frozen at ``at``."""
    return Runtime(scenario or Scenario(), SimClock(start=at, speed=0), seed=seed, shard=shard)


@pytest.fixture
def fleet() -> Runtime:
    """The default scenario's fleet, frozen at T0."""
    return make_fleet()


@pytest.fixture
def client_for(aiohttp_client: Any) -> Callable[..., Coroutine[Any, Any, TestClient[Any, Any]]]:
    """Make a test client for a fleet, logged in as ``user`` with aiohttp's Digest middleware."""

    async def make(
        fleet: Runtime, user: str | None = "viewer", password: str | None = None
    ) -> TestClient[Any, Any]:
        kwargs: dict[str, Any] = {}
        if user is not None:
            pw = password if password is not None else {"root": "pass"}.get(user, user)
            kwargs["middlewares"] = (aiohttp.DigestAuthMiddleware(user, pw),)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(fleet), **kwargs)
        return client

    return make


@pytest.fixture
async def viewer(fleet: Runtime, client_for: ClientFactory) -> TestClient[Any, Any]:
    """A client logged in as the default scenario's viewer."""
    return await client_for(fleet, "viewer")


@pytest.fixture
async def operator(fleet: Runtime, client_for: ClientFactory) -> TestClient[Any, Any]:
    """A client logged in as the default scenario's operator."""
    return await client_for(fleet, "operator")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A test certificate authority (trustme) for local HTTPS receivers."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The test CA's certificate as a PEM file (a push's ``ca_file``)."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 issued by the test CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
async def running() -> AsyncIterator[list[Runtime]]:
    """Runtimes a test starts, stopped at its end even when it fails."""
    runtimes: list[Runtime] = []
    yield runtimes
    for r in runtimes:
        await r.stop()


@pytest.fixture
async def receiver(server_ssl: ssl.SSLContext) -> AsyncIterator[Receiver]:
    """A running HTTPS push receiver on 127.0.0.1 with a certificate of the test CA."""
    r = Receiver(server_ssl)
    await r.start()
    yield r
    await r.stop()
