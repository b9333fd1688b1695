"""Shared fixtures: a fleet on a frozen clock and Digest clients against the real app."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from simulator.api.app import create_app
from simulator.fleet import Fleet
from simulator.runtime.clock import SimClock
from simulator.scenario import Scenario

# A Friday afternoon in Stockholm (CEST, UTC+2).
T0 = datetime(2024, 6, 7, 13, 30, 20, tzinfo=UTC).timestamp()

ClientFactory = Callable[..., Coroutine[Any, Any, TestClient[Any, Any]]]


def make_fleet(
    scenario: Scenario | None = None,
    at: float = T0,
    seed: int | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Fleet:
    """A fleet of the scenario with the clock frozen at ``at``."""
    return Fleet(scenario or Scenario(), SimClock(start=at, speed=0), seed=seed, shard=shard)


@pytest.fixture
def fleet() -> Fleet:
    """The default scenario's fleet, frozen at T0."""
    return make_fleet()


@pytest.fixture
def client_for(aiohttp_client: Any) -> Callable[..., Coroutine[Any, Any, TestClient[Any, Any]]]:
    """Make a test client for a fleet, logged in as ``user`` with aiohttp's Digest middleware."""

    async def make(
        fleet: Fleet, user: str | None = "viewer", password: str | None = None
    ) -> TestClient[Any, Any]:
        kwargs: dict[str, Any] = {}
        if user is not None:
            pw = password if password is not None else {"root": "pass"}.get(user, user)
            kwargs["middlewares"] = (aiohttp.DigestAuthMiddleware(user, pw),)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(fleet), **kwargs)
        return client

    return make


@pytest.fixture
async def viewer(fleet: Fleet, client_for: ClientFactory) -> TestClient[Any, Any]:
    """A client logged in as the default scenario's viewer."""
    return await client_for(fleet, "viewer")


@pytest.fixture
async def operator(fleet: Fleet, client_for: ClientFactory) -> TestClient[Any, Any]:
    """A client logged in as the default scenario's operator."""
    return await client_for(fleet, "operator")
