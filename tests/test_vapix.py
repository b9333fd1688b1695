"""VAPIX discovery: API discovery, basic device info, param.cgi, applications, and the axis lib."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from simulator.schema.scenario import DeviceConfig, ProductConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

Client = TestClient[Any, Any]
LEGACY = Scenario(devices=[DeviceConfig(model="3D People Counter", serial="ACCC8E235294")])
PROPERTIES = [
    "Architecture", "Brand", "BuildDate", "HardwareID", "ProdFullName", "ProdNbr",
    "ProdShortName", "ProdType", "ProdVariant", "SerialNumber", "Soc", "SocSerialNumber",
    "Version", "WebURL",
]  # fmt: skip


async def call(client: Client, path: str, body: Any) -> dict[str, Any]:
    data = body if isinstance(body, str) else json.dumps(body)
    r = await client.post(path, data=data, headers={"Content-Type": "application/json"})
    assert r.status == 200
    assert r.content_type == "application/json"
    result: dict[str, Any] = await r.json()
    return result


# ---- API discovery ------------------------------------------------------------------------


async def test_api_list_names_what_the_device_answers(viewer: Client) -> None:
    body = await call(
        viewer,
        "/axis-cgi/apidiscovery.cgi",
        {"apiVersion": "1.0", "context": "Axis library", "method": "getApiList"},
    )
    assert body["apiVersion"] == "1.0"
    assert body["context"] == "Axis library"
    assert body["method"] == "getApiList"
    apis = {a["id"]: a for a in body["data"]["apiList"]}
    assert set(apis) == {"api-discovery", "basic-device-info", "param-cgi", "systemready"}
    assert apis["basic-device-info"]["version"] == "1.1"
    for api in apis.values():
        assert set(api) == {"id", "version", "name", "docLink", "status"}


async def test_supported_versions_take_no_api_version(viewer: Client) -> None:
    path = "/axis-cgi/apidiscovery.cgi"
    body = await call(viewer, path, {"context": "abc", "method": "getSupportedVersions"})
    assert body == {
        "apiVersion": "1.0",
        "context": "abc",
        "method": "getSupportedVersions",
        "data": {"apiVersions": ["1.0"]},
    }
    body = await call(viewer, path, {"apiVersion": "1.0", "method": "getSupportedVersions"})
    assert body["error"] == {
        "code": 4002,
        "message": "'apiVersion' must not be provided for method 'getSupportedVersions'",
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", 4000),
        ("[1, 2]", 4000),
        ({"apiVersion": "1.0"}, 4002),
        ({"method": "getApiList"}, 4002),
        ({"apiVersion": "one", "method": "getApiList"}, 4002),
        ({"apiVersion": "2.0", "method": "getApiList"}, 2003),
        ({"apiVersion": "1.5", "method": "getApiList"}, 2003),
        ({"apiVersion": "1.0", "method": "listEverything"}, 2004),
    ],
)
async def test_discovery_errors_in_the_envelope(viewer: Client, body: Any, code: int) -> None:
    result = await call(viewer, "/axis-cgi/apidiscovery.cgi", body)
    assert result["apiVersion"] == "1.0"
    assert result["error"]["code"] == code
    assert result["error"]["message"]
    assert "data" not in result


async def test_discovery_by_get_is_refused_in_the_envelope(viewer: Client) -> None:
    r = await viewer.get("/axis-cgi/apidiscovery.cgi")
    assert r.status == 200
    assert (await r.json())["error"]["code"] == 2002


# ---- basic device information -------------------------------------------------------------


async def test_all_properties_of_the_p8815_2(viewer: Client) -> None:
    body = await call(
        viewer,
        "/axis-cgi/basicdeviceinfo.cgi",
        {"apiVersion": "1.1", "context": "c1", "method": "getAllProperties"},
    )
    assert (body["apiVersion"], body["context"], body["method"]) == (
        "1.1",
        "c1",
        "getAllProperties",
    )
    props = body["data"]["propertyList"]
    assert sorted(props) == PROPERTIES
    assert props["ProdNbr"] == "P8815-2"
    assert props["ProdFullName"] == "AXIS P8815-2 3D People Counter"
    assert props["SerialNumber"] == "ACCC8EF3D92E"
    assert props["Version"] == "11.11.73"
    assert props["Brand"] == "AXIS"
    assert all(isinstance(v, str) for v in props.values())


async def test_the_legacy_model_is_another_product(client_for: ClientFactory) -> None:
    client = await client_for(make_fleet(LEGACY))
    body = await call(
        client, "/axis-cgi/basicdeviceinfo.cgi", {"apiVersion": "1.1", "method": "getAllProperties"}
    )
    props = body["data"]["propertyList"]
    assert props["ProdNbr"] != "P8815-2"
    assert "P8815" not in props["ProdFullName"]
    assert props["SerialNumber"] == "ACCC8E235294"


async def test_scenario_overrides_the_identity(client_for: ClientFactory) -> None:
    product = ProductConfig(prod_variant="Mk II", hardware_id="7F0")
    fleet = make_fleet(Scenario(devices=[DeviceConfig(product=product, firmware_version="12.0.1")]))
    client = await client_for(fleet)
    body = await call(
        client, "/axis-cgi/basicdeviceinfo.cgi", {"apiVersion": "1.1", "method": "getAllProperties"}
    )
    props = body["data"]["propertyList"]
    assert (props["ProdVariant"], props["HardwareID"], props["Version"]) == (
        "Mk II",
        "7F0",
        "12.0.1",
    )


async def test_some_properties(viewer: Client) -> None:
    path = "/axis-cgi/basicdeviceinfo.cgi"
    body = await call(
        viewer,
        path,
        {
            "apiVersion": "1.1",
            "method": "getProperties",
            "params": {"propertyList": ["ProdNbr", "Version"]},
        },
    )
    assert body["data"] == {"propertyList": {"ProdNbr": "P8815-2", "Version": "11.11.73"}}
    body = await call(
        viewer,
        path,
        {"apiVersion": "1.1", "method": "getProperties", "params": {"propertyList": ["Colour"]}},
    )
    assert body["error"]["code"] == 1000
    body = await call(viewer, path, {"apiVersion": "1.1", "method": "getProperties"})
    assert body["error"]["code"] == 4002
    for bad in ([1, {}], "ProdNbr", [["ProdNbr"]]):
        params = {"propertyList": bad}
        body = await call(
            viewer, path, {"apiVersion": "1.1", "method": "getProperties", "params": params}
        )
        assert body["error"]["code"] == 4002


# ---- param.cgi ----------------------------------------------------------------------------


async def test_param_list_by_get_and_post_form_agree(viewer: Client) -> None:
    r = await viewer.get("/axis-cgi/param.cgi", params={"action": "list", "group": "root.Brand"})
    assert r.status == 200
    assert r.content_type == "text/plain"
    by_get = await r.text()
    # The axis library posts a form with Content-Type text/plain.
    r = await viewer.post(
        "/axis-cgi/param.cgi",
        data="action=list&group=root.Brand",
        headers={"Content-Type": "text/plain"},
    )
    assert await r.text() == by_get
    assert by_get.splitlines() == [
        "root.Brand.Brand=AXIS",
        "root.Brand.ProdFullName=AXIS P8815-2 3D People Counter",
        "root.Brand.ProdNbr=P8815-2",
        "root.Brand.ProdShortName=AXIS P8815-2",
        "root.Brand.ProdType=People Counter",
        "root.Brand.ProdVariant=",
        "root.Brand.WebURL=http://www.axis.com",
    ]


@pytest.mark.parametrize("group", ["Brand", "Properties", "Network", "IOPort"])
async def test_param_groups_are_root_group_name_lines(viewer: Client, group: str) -> None:
    r = await viewer.get("/axis-cgi/param.cgi", params={"action": "list", "group": f"root.{group}"})
    lines = (await r.text()).splitlines()
    assert lines
    assert all(line.startswith(f"root.{group}.") and "=" in line for line in lines)
    r = await viewer.get("/axis-cgi/param.cgi", params={"action": "list", "group": group})
    assert (await r.text()).splitlines() == lines  # the root. prefix is optional


async def test_param_values_come_from_the_scenario(viewer: Client) -> None:
    r = await viewer.get(
        "/axis-cgi/param.cgi",
        params={"action": "list", "group": "root.Network,root.Properties.System"},
    )
    params = dict(line.split("=", 1) for line in (await r.text()).splitlines())
    assert params["root.Network.IPAddress"] == "192.168.0.90"
    assert params["root.Network.eth0.MACAddress"] == "AC:CC:8E:F3:D9:2E"
    assert params["root.Properties.System.SerialNumber"] == "ACCC8EF3D92E"
    assert not any(k.startswith("root.Brand") for k in params)


async def test_unknown_group_answers_the_axis_error_line(viewer: Client) -> None:
    r = await viewer.get(
        "/axis-cgi/param.cgi", params={"action": "list", "group": "root.Image,root.Brand.ProdNbr"}
    )
    assert r.status == 200
    assert await r.text() == (
        "# Error: Error -1 getting param in group 'root.Image'\nroot.Brand.ProdNbr=P8815-2\n"
    )


async def test_param_without_group_lists_everything(viewer: Client) -> None:
    text = await (await viewer.get("/axis-cgi/param.cgi", params={"action": "list"})).text()
    groups = {line.split(".")[1] for line in text.splitlines()}
    assert {"Brand", "Properties", "Network", "IOPort"} <= groups


async def test_param_cgi_is_read_only(viewer: Client) -> None:
    r = await viewer.get(
        "/axis-cgi/param.cgi", params={"action": "update", "root.Brand.ProdNbr": "X"}
    )
    assert r.status == 200
    assert (await r.text()).startswith("# Error:")


# ---- applications -------------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "name"), [(None, "a3dpc"), (LEGACY, "stereo")])
async def test_the_people_counter_application_runs(
    client_for: ClientFactory, scenario: Scenario | None, name: str
) -> None:
    client = await client_for(make_fleet(scenario))
    r = await client.post("/axis-cgi/applications/list.cgi")
    assert r.status == 200
    assert r.content_type == "text/xml"
    root = ET.fromstring(await r.text())
    assert root.tag == "reply"
    assert root.get("result") == "ok"
    (app,) = root.findall("application")
    assert app.get("Name") == name
    assert app.get("NiceName") == "AXIS 3D People Counter"
    assert app.get("Status") == "Running"
    assert app.get("Version") == "11.11.73"  # built into AXIS OS: the OS version


# ---- auth and what the device does not have -----------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/axis-cgi/apidiscovery.cgi"),
        ("POST", "/axis-cgi/basicdeviceinfo.cgi"),
        ("GET", "/axis-cgi/param.cgi?action=list"),
        ("POST", "/axis-cgi/applications/list.cgi"),
    ],
)
async def test_discovery_is_behind_digest(
    client_for: ClientFactory, method: str, path: str
) -> None:
    client = await client_for(make_fleet(), user=None)
    r = await client.request(method, path, data="{}")
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith('Digest realm="AXIS_ACCC8EF3D92E"')


async def test_apis_the_device_lacks_are_404(viewer: Client) -> None:
    for path in ("/axis-cgi/io/port.cgi", "/axis-cgi/pwdgrp.cgi", "/axis-cgi/jpg/image.cgi"):
        assert (await viewer.get(path)).status == 404
