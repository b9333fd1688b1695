"""Home Assistant's ``axis`` library run against the simulated device, as an integration does.

Each test runs once per transport in ``TRANSPORTS``: a transport names the scheme the
library speaks and how to reach the device with it (see :func:`endpoint`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from axis.device import AxisDevice
from axis.models.configuration import Configuration
from axis.models.pwdgrp_cgi import SecondaryGroup

from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

LEGACY = Scenario(devices=[DeviceConfig(model="3D People Counter", serial="ACCC8E235294")])
PASSWORDS = {"root": "pass", "operator": "operator", "viewer": "viewer"}
#: The transports the library is run over (HTTPS joins with the device's HTTPS listener).
TRANSPORTS = ["http"]


@dataclass(frozen=True)
class Endpoint:
    """Where the library finds the device: scheme, host and port."""

    scheme: str
    host: str
    port: int


Connect = Callable[[Runtime, str], Awaitable[AxisDevice]]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """The scheme the library speaks in this run of the test."""
    return str(request.param)


async def endpoint(fleet: Runtime, client_for: ClientFactory, scheme: str) -> Endpoint:
    """Serve the fleet and say where: plain HTTP on the test server's port."""
    if scheme != "http":
        raise NotImplementedError(scheme)
    server = (await client_for(fleet)).server
    return Endpoint(scheme, "127.0.0.1", server.port)


@pytest.fixture
async def connect(client_for: ClientFactory, transport: str) -> AsyncIterator[Connect]:
    """Connect the library to a fleet's (first) device as one of its users."""
    sessions: list[httpx.AsyncClient] = []
    served: dict[int, Endpoint] = {}

    async def make(fleet: Runtime, user: str) -> AxisDevice:
        if id(fleet) not in served:
            served[id(fleet)] = await endpoint(fleet, client_for, transport)
        where = served[id(fleet)]
        session = httpx.AsyncClient(verify=False)
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
