"""Nothing the device advertises leads a client into a 404.

API discovery (``getApiList``) and ``param.cgi``'s ``Properties`` group are how clients
decide what to call: every API listed and every path a property implies must be served,
and so must the page of every application ``applications/list.cgi`` names.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp.test_utils import TestClient

from simulator.schema.scenario import DeviceConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

Client = TestClient[Any, Any]
LEGACY = Scenario(devices=[DeviceConfig(model="3D People Counter", serial="ACCC8E235294")])

#: The path of each API discovery id (an id missing here fails the test: map it first).
API_PATHS = {
    "api-discovery": "/axis-cgi/apidiscovery.cgi",
    "basic-device-info": "/axis-cgi/basicdeviceinfo.cgi",
    "param-cgi": "/axis-cgi/param.cgi",
    "systemready": "/axis-cgi/systemready.cgi",
    "user-management": "/axis-cgi/pwdgrp.cgi",
    "io-port-management": "/axis-cgi/io/portmanagement.cgi",
    "light-control": "/axis-cgi/lightcontrol.cgi",
    "mqtt-client": "/axis-cgi/mqtt/client.cgi",
    "stream-profiles": "/axis-cgi/streamprofile.cgi",
    "view-area": "/axis-cgi/viewarea/info.cgi",
    "disk-management": "/axis-cgi/disks/list.cgi",
}

#: What a ``Properties`` parameter implies a client may call: (parameter, value test, paths).
PROPERTY_PATHS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("ApiDiscovery.ApiDiscovery", "yes", ("/axis-cgi/apidiscovery.cgi",)),
    ("API.HTTP.Version", "3", ("/axis-cgi/param.cgi", "/axis-cgi/usergroup.cgi")),
    ("EmbeddedDevelopment.EmbeddedDevelopment", "yes", ("/axis-cgi/applications/list.cgi",)),
    ("BasicDeviceInfo.BasicDeviceInfo", "yes", ("/axis-cgi/basicdeviceinfo.cgi",)),
    ("Image.Format", "jpeg", ("/axis-cgi/jpg/image.cgi",)),
    ("Image.Format", "mjpeg", ("/axis-cgi/mjpg/video.cgi",)),
    ("PTZ.PTZ", "yes", ("/axis-cgi/com/ptz.cgi",)),
    ("Audio.Audio", "yes", ("/axis-cgi/audio/receive.cgi",)),
    ("LightControl.LightControl2", "yes", ("/axis-cgi/lightcontrol.cgi",)),
    ("API.PTZ.Presets.Version", None, ("/axis-cgi/com/ptz.cgi",)),
]


def _implied(properties: dict[str, str]) -> set[str]:
    """The paths the device's properties imply."""
    paths: set[str] = set()
    for name, value, implied in PROPERTY_PATHS:
        have = properties.get(name)
        if have is None:
            continue
        if value is None or value in have.split(","):
            paths.update(implied)
    return paths


async def _properties(client: Client) -> dict[str, str]:
    r = await client.get("/axis-cgi/param.cgi", params={"action": "list", "group": "Properties"})
    lines = (await r.text()).splitlines()
    return {k.removeprefix("root.Properties."): v for k, v in (ln.split("=", 1) for ln in lines)}


async def _listed(client: Client) -> list[str]:
    body = {"apiVersion": "1.0", "method": "getApiList"}
    r = await client.post("/axis-cgi/apidiscovery.cgi", json=body)
    return [a["id"] for a in (await r.json())["data"]["apiList"]]


async def _answers(client: Client, path: str) -> int:
    """The status of the path: a JSON call to a JSON API, else a plain GET."""
    if path in API_PATHS.values() and path.endswith(("discovery.cgi", "info.cgi", "ready.cgi")):
        r = await client.post(path, json={"method": "getSupportedVersions"})
    else:
        r = await client.get(path)
    return r.status


@pytest.mark.parametrize("scenario", [None, LEGACY], ids=["P8815-2", "legacy"])
async def test_every_listed_api_is_served(client_for: ClientFactory, scenario: Any) -> None:
    client = await client_for(make_fleet(scenario), "root")
    listed = await _listed(client)
    assert "api-discovery" in listed
    for api in listed:
        assert api in API_PATHS, f"{api}: which path serves it?"
        assert await _answers(client, API_PATHS[api]) != 404, api


@pytest.mark.parametrize("scenario", [None, LEGACY], ids=["P8815-2", "legacy"])
async def test_every_path_properties_imply_is_served(
    client_for: ClientFactory, scenario: Any
) -> None:
    client = await client_for(make_fleet(scenario), "root")
    properties = await _properties(client)
    assert properties["ApiDiscovery.ApiDiscovery"] == "yes"
    implied = _implied(properties)
    assert "/axis-cgi/applications/list.cgi" in implied
    for path in sorted(implied):
        assert await _answers(client, path) != 404, path


async def _application_pages(client: Client) -> list[str]:
    """The ``ConfigurationPage`` of every application ``list.cgi`` names."""
    r = await client.get("/axis-cgi/applications/list.cgi")
    root = ElementTree.fromstring(await r.text())
    return [app.attrib["ConfigurationPage"] for app in root.iter("application")]


@pytest.mark.parametrize(
    ("scenario", "page"),
    [(None, "local/a3dpc/index.html"), (LEGACY, "local/stereo/index.html")],
    ids=["P8815-2", "legacy"],
)
async def test_every_listed_application_page_is_served(
    client_for: ClientFactory, scenario: Any, page: str
) -> None:
    client = await client_for(make_fleet(scenario), "viewer")
    pages = await _application_pages(client)
    assert pages == [page]
    for path in pages:
        r = await client.get("/" + path)
        assert r.status == 200, path
        assert r.content_type == "text/html"


def test_the_walk_would_see_an_unserved_image_api() -> None:
    assert "/axis-cgi/jpg/image.cgi" in _implied({"Image.Format": "jpeg,mjpeg,h264"})
    assert not _implied({"Image.Format": "h264", "PTZ.PTZ": "no"})
