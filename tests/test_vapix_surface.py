"""The VAPIX surface integrations touch: anonymous calls, user groups, readiness, restart, disks."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

Client = TestClient[Any, Any]
TOKEN = {"Authorization": "Bearer p8815-sim"}
BDI = "/axis-cgi/basicdeviceinfo.cgi"
READY = "/axis-cgi/systemready.cgi"
UNRESTRICTED = [
    "Brand", "BuildDate", "HardwareID", "ProdFullName", "ProdNbr", "ProdShortName",
    "ProdType", "ProdVariant", "SerialNumber", "Version", "WebURL",
]  # fmt: skip


async def post(client: Client, path: str, body: Any) -> aiohttp.ClientResponse:
    data = body if isinstance(body, str) else json.dumps(body)
    return await client.post(path, data=data, headers={"Content-Type": "application/json"})


async def rpc(client: Client, path: str, body: Any) -> dict[str, Any]:
    r = await post(client, path, body)
    assert r.status == 200
    result: dict[str, Any] = await r.json()
    return result


@pytest.fixture
async def anon(fleet: Runtime, client_for: ClientFactory) -> Client:
    """A client without credentials."""
    return await client_for(fleet, user=None)


# ---- basic device info: the unrestricted properties without credentials -------------------


async def test_unrestricted_properties_need_no_credentials(anon: Client) -> None:
    call = {"apiVersion": "1.1", "context": "c", "method": "getAllUnrestrictedProperties"}
    body = await rpc(anon, BDI, call)
    assert (body["apiVersion"], body["context"], body["method"]) == (
        "1.1",
        "c",
        "getAllUnrestrictedProperties",
    )
    props = body["data"]["propertyList"]
    assert sorted(props) == UNRESTRICTED  # no Architecture, Soc, SocSerialNumber
    assert props["ProdNbr"] == "P8815-2"
    assert props["SerialNumber"] == "ACCC8EF3D92E"


async def test_unrestricted_properties_with_credentials_too(viewer: Client) -> None:
    body = await rpc(viewer, BDI, {"apiVersion": "1.1", "method": "getAllUnrestrictedProperties"})
    assert sorted(body["data"]["propertyList"]) == UNRESTRICTED


@pytest.mark.parametrize(
    "body",
    [
        {"apiVersion": "1.1", "method": "getAllProperties"},
        {"apiVersion": "1.1", "method": "getProperties", "params": {"propertyList": ["Soc"]}},
        {"method": "getSupportedVersions"},
        {"apiVersion": "1.1", "method": ["getAllUnrestrictedProperties"]},
        {"apiVersion": "1.1", "method": "getallunrestrictedproperties"},
        '{"apiVersion": "1.1", "method": "getAllUnrestrictedProperties"',  # not JSON
        '["getAllUnrestrictedProperties"]',
        "",
    ],
)
async def test_everything_else_still_asks_for_digest(anon: Client, body: Any) -> None:
    r = await post(anon, BDI, body)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith('Digest realm="AXIS_ACCC8EF3D92E"')


async def test_anonymous_method_opens_no_other_path(anon: Client) -> None:
    unrestricted = json.dumps({"apiVersion": "1.1", "method": "getAllUnrestrictedProperties"})
    for path in ("/axis-cgi/apidiscovery.cgi", "/axis-cgi/a3dpc.cgi", "/axis-cgi/param.cgi"):
        r = await anon.post(path, data=unrestricted, headers={"Content-Type": "application/json"})
        assert r.status == 401, path
    r = await anon.get(BDI)  # GET is not a call
    assert r.status == 401


async def test_a_large_body_is_not_read_without_credentials(anon: Client) -> None:
    body = {"apiVersion": "1.1", "method": "getAllUnrestrictedProperties", "pad": "x" * 8000}
    assert (await post(anon, BDI, body)).status == 401


async def test_anonymous_calls_are_journaled_as_such(fleet: Runtime, anon: Client) -> None:
    await rpc(anon, BDI, {"apiVersion": "1.1", "method": "getAllUnrestrictedProperties"})
    r = await anon.get("/sim/v1/journal/entrance", headers=TOKEN)
    entries = (await r.json())["entries"]
    assert entries[-1]["auth"] == "anonymous"
    assert entries[-1]["status"] == 200


# ---- usergroup.cgi ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "text"),
    [
        ("root", "root\nroot admin operator ptz viewer\n"),
        ("operator", "operator\nusers operator viewer\n"),
        ("viewer", "viewer\nusers viewer\n"),
    ],
)
async def test_usergroup_names_the_user_and_its_groups(
    fleet: Runtime, client_for: ClientFactory, user: str, text: str
) -> None:
    client = await client_for(fleet, user)
    r = await client.get("/axis-cgi/usergroup.cgi")
    assert r.status == 200
    assert r.content_type == "text/plain"
    assert await r.text() == text


async def test_usergroup_of_another_administrator(client_for: ClientFactory) -> None:
    users = [{"name": "admin2", "password": "pw", "role": "administrator"}]
    fleet = make_fleet(Scenario.model_validate({"devices": [{"users": users}]}))
    client = await client_for(fleet, "admin2", "pw")
    r = await client.get("/axis-cgi/usergroup.cgi")
    assert await r.text() == "admin2\nusers admin operator viewer\n"


async def test_usergroup_needs_credentials(anon: Client) -> None:
    assert (await anon.get("/axis-cgi/usergroup.cgi")).status == 401


# ---- systemready.cgi ----------------------------------------------------------------------


async def test_systemready_answers_anonymously(anon: Client) -> None:
    call = {"apiVersion": "1.4", "context": "x", "method": "systemready", "params": {"timeout": 20}}
    body = await rpc(anon, READY, call)
    assert body["apiVersion"] == "1.4"
    assert body["context"] == "x"
    data = body["data"]
    assert set(data) == {"systemready", "needsetup", "uptime", "bootid"}
    assert (data["systemready"], data["needsetup"]) == ("yes", "no")
    assert data["uptime"].isdigit()
    assert uuid.UUID(data["bootid"]).version == 4
    body = await rpc(anon, READY, {"method": "getSupportedVersions"})
    assert body["data"] == {"apiVersions": ["1.4"]}


async def test_systemready_errors_in_the_envelope(anon: Client) -> None:
    body = await rpc(anon, READY, {"apiVersion": "2.0", "method": "systemready"})
    assert body["error"]["code"] == 2003
    body = await rpc(anon, READY, {"apiVersion": "1.0", "method": "reboot"})
    assert body["error"]["code"] == 2004


async def test_bootid_is_stable_during_a_boot(fleet: Runtime, anon: Client) -> None:
    ids = set()
    for _ in range(2):
        body = await rpc(anon, READY, {"apiVersion": "1", "method": "systemready"})
        ids.add(body["data"]["bootid"])
        await anon.post("/sim/v1/clock/advance", json={"by": 30}, headers=TOKEN)
    assert len(ids) == 1


# ---- restart.cgi --------------------------------------------------------------------------


async def _control(client: Client, method: str, path: str, **kwargs: Any) -> Any:
    """A control-plane call on the client's server (a session of its own: no Digest)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, client.make_url(path), headers=TOKEN, **kwargs) as r,
    ):
        assert r.status == 200
        return await r.json()


async def _advance(client: Client, seconds: float) -> None:
    await _control(client, "POST", "/sim/v1/clock/advance", json={"by": seconds})


async def _state(client: Client) -> dict[str, Any]:
    state: dict[str, Any] = await _control(client, "GET", "/sim/v1/devices/entrance")
    return state


async def _ready(client: Client) -> dict[str, Any]:
    body = await rpc(client, READY, {"apiVersion": "1.4", "method": "systemready"})
    data: dict[str, Any] = body["data"]
    return data


async def test_restart_goes_away_and_comes_back_with_a_new_boot(
    fleet: Runtime, client_for: ClientFactory
) -> None:
    root = await client_for(fleet, "root")
    await _advance(root, 3600)
    before, state = await _ready(root), await _state(root)
    assert state["frames"] > 0 and state["total_in"] > 0
    r = await root.post("/axis-cgi/restart.cgi")
    assert r.status == 200
    assert r.content_type == "text/html"
    assert "Restarting" in await r.text()
    for path in ("/axis-cgi/systemready.cgi", "/a3dpc/api/occupancy"):
        with pytest.raises(aiohttp.ClientError):  # connection reset: no answer at all
            await root.post(path, data="{}")
    await _advance(root, 74)
    with pytest.raises(aiohttp.ClientError):
        await _ready(root)  # still away one second before restart_s (75 s)
    await _advance(root, 6)
    after = await _ready(root)
    assert after["bootid"] != before["bootid"]
    assert int(after["uptime"]) == 5 < int(before["uptime"])
    fresh = await _state(root)
    assert 0 < fresh["frames"] < state["frames"]  # the frame counter started again
    assert fresh["total_in"] >= state["total_in"]  # counts go on: nothing is reset
    assert (await root.get("/a3dpc/api/occupancy")).status == 200


async def test_restart_time_comes_from_the_scenario(client_for: ClientFactory) -> None:
    fleet = make_fleet(Scenario(devices=[DeviceConfig(restart_s=10)]))
    root = await client_for(fleet, "root")
    assert (await root.get("/axis-cgi/restart.cgi")).status == 200
    await _advance(root, 9)
    with pytest.raises(aiohttp.ClientError):
        await _ready(root)
    await _advance(root, 1)
    assert (await _ready(root))["uptime"] == "0"


async def test_restart_is_a_reboot_event(fleet: Runtime, client_for: ClientFactory) -> None:
    root = await client_for(fleet, "root")
    await root.post("/axis-cgi/restart.cgi")
    applied = (await _control(root, "GET", "/sim/v1/events"))["applied"]
    assert [(e["kind"], e["device"], e["down_s"]) for e in applied] == [("reboot", "entrance", 75)]


@pytest.mark.parametrize("user", ["viewer", "operator"])
async def test_restart_needs_an_administrator(
    fleet: Runtime, client_for: ClientFactory, user: str
) -> None:
    client = await client_for(fleet, user)
    assert (await client.post("/axis-cgi/restart.cgi")).status == 401
    assert (await _ready(client))["systemready"] == "yes"  # still there


async def test_restart_anonymously_is_refused(anon: Client) -> None:
    assert (await anon.post("/axis-cgi/restart.cgi")).status == 401
    assert (await _ready(anon))["systemready"] == "yes"


# ---- disks/list.cgi -----------------------------------------------------------------------


async def test_disks_list_the_empty_sd_card_slot(viewer: Client) -> None:
    r = await viewer.get("/axis-cgi/disks/list.cgi", params={"diskid": "all"})
    assert r.status == 200
    assert r.content_type == "text/xml"
    root = ET.fromstring(await r.text())
    disks = root.find("disks")
    assert disks is not None and disks.get("numberofdisks") == "1"
    (disk,) = disks.findall("disk")
    assert disk.get("diskid") == "SD_DISK"
    assert disk.get("status") == "disconnected"
    assert disk.get("totalsize") == "0"
    r = await viewer.get("/axis-cgi/disks/list.cgi", params={"diskid": "NetworkShare"})
    disks = ET.fromstring(await r.text()).find("disks")
    assert disks is not None and disks.get("numberofdisks") == "0"
    assert (await viewer.get("/axis-cgi/disks/list.cgi")).status == 200
