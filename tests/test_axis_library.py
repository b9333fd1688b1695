"""Home Assistant's ``axis`` library run against the simulated device, as an integration does.

Each test runs once per transport in ``TRANSPORTS``: a transport names the scheme the
library speaks and how to reach the device with it (see :func:`endpoint`).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from axis.device import AxisDevice
from axis.models.configuration import Configuration
from axis.models.pwdgrp_cgi import SecondaryGroup

from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, Scenario
from simulator.server import ServedFleet, serve_fleet
from tests.conftest import ClientFactory, make_fleet

LEGACY = Scenario(devices=[DeviceConfig(model="3D People Counter", serial="ACCC8E235294")])
PASSWORDS = {"root": "pass", "operator": "operator", "viewer": "viewer"}
#: The transports the library is run over: plain HTTP, and HTTPS verified with the run's CA.
TRANSPORTS = ["http", "https"]


@dataclass(frozen=True)
class Endpoint:
    """Where the library finds the device: scheme, host and port."""

    scheme: str
    host: str
    port: int
    verify: ssl.SSLContext | bool = False


Connect = Callable[[Runtime, str], Awaitable[AxisDevice]]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """The scheme the library speaks in this run of the test."""
    return str(request.param)


async def endpoint(
    fleet: Runtime, client_for: ClientFactory, scheme: str, served: list[ServedFleet]
) -> Endpoint:
    """Serve the fleet and say where: the test server's port, or the device's HTTPS port."""
    if scheme == "http":
        server = (await client_for(fleet)).server
        return Endpoint(scheme, "127.0.0.1", server.port)
    site = await serve_fleet(fleet, port=0, https_port=0)
    served.append(site)
    url, ca = site.https_url(fleet.fleet.devices[0].id), site.ca_path
    assert url is not None and ca is not None
    port = urlsplit(url).port
    assert port is not None
    return Endpoint(scheme, "127.0.0.1", port, ssl.create_default_context(cafile=ca))


@pytest.fixture
async def connect(client_for: ClientFactory, transport: str) -> AsyncIterator[Connect]:
    """Connect the library to a fleet's (first) device as one of its users."""
    sessions: list[httpx.AsyncClient] = []
    sites: list[ServedFleet] = []
    served: dict[int, Endpoint] = {}

    async def make(fleet: Runtime, user: str) -> AxisDevice:
        if id(fleet) not in served:
            served[id(fleet)] = await endpoint(fleet, client_for, transport, sites)
        where = served[id(fleet)]
        session = httpx.AsyncClient(verify=where.verify)
        sessions.append(session)
        config = Configuration(
            session,
            where.host,
            port=where.port,
            web_proto=where.scheme,
            username=user,
            password=PASSWORDS[user],
        )
        return AxisDevice(config)

    yield make
    for session in sessions:
        await session.aclose()
    for site in sites:
        await site.cleanup()


@pytest.mark.parametrize(("scenario", "prod_nbr"), [(None, "P8815-2"), (LEGACY, "P8804")])
async def test_the_library_discovers_the_device(
    connect: Connect, scenario: Scenario | None, prod_nbr: str
) -> None:
    fleet = make_fleet(scenario)
    device = await connect(fleet, "root")
    await device.vapix.initialize()

    serial = fleet.fleet.devices[0].cfg.serial_upper
    vapix = device.vapix
    assert vapix.serial_number == serial
    assert vapix.product_number == prod_nbr
    assert vapix.firmware_version == "11.11.73"
    assert vapix.params.property_handler["0"].system_serial_number == serial
    assert vapix.applications.initialized
    (app,) = vapix.applications.values()
    assert app.nice_name == "AXIS 3D People Counter"
    assert app.status == "Running"
    assert {p.direction for p in vapix.ports.values()} == {"input", "output"}


async def test_basic_device_info_as_the_library_reads_it(connect: Connect) -> None:
    device = await connect(make_fleet(), "viewer")
    await device.vapix.initialize_api_discovery()
    info = device.vapix.basic_device_info
    assert info.supported and info.initialized
    props = info["0"]
    assert props.product_number == "P8815-2"
    assert props.product_full_name == "AXIS P8815-2 3D People Counter"
    assert props.product_type == "People Counter"
    assert props.serial_number == "ACCC8EF3D92E"
    assert props.brand == "AXIS"


@pytest.mark.parametrize("scenario", [None, LEGACY], ids=["P8815-2", "legacy"])
async def test_the_library_reads_the_supported_versions(
    connect: Connect, scenario: Scenario | None
) -> None:
    device = await connect(make_fleet(scenario), "viewer")
    vapix = device.vapix
    assert await vapix.api_discovery.get_supported_versions() == ["1.0"]
    assert await vapix.basic_device_info.get_supported_versions() == ["1.1"]


async def test_no_image_api_for_the_library_to_follow(connect: Connect) -> None:
    device = await connect(make_fleet(), "root")
    await device.vapix.initialize()
    props = device.vapix.params.property_handler["0"]
    assert props.image_format == ""  # no camera entity built on streams the device lacks
    assert not props.ptz


@pytest.mark.parametrize(
    ("user", "rights"),
    [
        ("root", SecondaryGroup.ADMIN_PTZ),
        ("operator", SecondaryGroup.OPERATOR),
        ("viewer", SecondaryGroup.VIEWER),
    ],
)
async def test_access_rights_of_each_role(
    connect: Connect, user: str, rights: SecondaryGroup
) -> None:
    device = await connect(make_fleet(), user)
    await device.vapix.initialize()
    await device.vapix.load_user_groups()
    assert device.vapix.access_rights == rights
    assert device.vapix.user_groups["0"].name == user
