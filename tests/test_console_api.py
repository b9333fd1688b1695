"""The web console's HTTP side (no browser): its files, /sim/v1/fleet, the series, paging of
/sim/v1/devices, and the device's application page /local/a3dpc/index.html."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator.api.console import is_exposed
from simulator.schema.scenario import DeviceConfig, FleetTemplate, Scenario
from simulator.testing import Simulator, ThreadedSimulator

AUTH = {"Authorization": "Bearer p8815-sim"}
T = 10


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with ThreadedSimulator("mall", speed=0) as s:
        yield s


def get(sim: Simulator, path: str, **kw: object) -> requests.Response:
    return requests.get(sim.url + path, timeout=T, **kw)  # type: ignore[arg-type]


# ---- the console's files -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sim/", "/sim/index.html"])
def test_the_console_page_is_served_without_a_token(sim: Simulator, path: str) -> None:
    r = get(sim, path)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert 'data-bind-host="127.0.0.1" data-exposed="false"' in r.text
    assert '<script src="/sim/static/console.js"' in r.text


@pytest.mark.parametrize(
    ("name", "kind"), [("console.js", "text/javascript"), ("console.css", "text/css")]
)
def test_the_console_files_are_served_without_a_token(sim: Simulator, name: str, kind: str) -> None:
    r = get(sim, f"/sim/static/{name}")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(kind)
    assert len(r.content) > 1000


@pytest.mark.parametrize(
    "path", ["/sim/static/nope.js", "/sim/static/index.html", "/sim/static/..%2Fapi%2Fcontrol.py"]
)
def test_nothing_else_is_served_from_the_package(sim: Simulator, path: str) -> None:
    r = get(sim, path)
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("no console file")


def test_the_data_calls_still_need_the_token(sim: Simulator) -> None:
    for path in ("/sim/v1/fleet", "/sim/v1/devices/shop/series", "/sim/v1/clock"):
        r = get(sim, path)
        assert r.status_code == 401, path
        assert "wrong control token" in r.json()["error"]["message"]


def test_a_bind_beyond_loopback_is_exposed() -> None:
    assert is_exposed("0.0.0.0") and is_exposed("::") and is_exposed("192.168.1.20")
    assert not is_exposed("127.0.0.1") and not is_exposed("::1") and not is_exposed(None)


# ---- /sim/v1/fleet and /sim/v1/devices ---------------------------------------------------------


def test_the_fleet_page_has_each_devices_live_state(sim: Simulator) -> None:
    body = get(sim, "/sim/v1/fleet", headers=AUTH).json()
    assert body["total"] == 4 and body["offset"] == 0 and body["limit"] == 50
    rows = {d["id"]: d for d in body["devices"]}
    assert list(rows) == ["parking", "street", "metro", "shop"]
    shop = rows["shop"]
    state = get(sim, "/sim/v1/devices/shop", headers=AUTH).json()
    for key in ("model", "serial", "url", "occupancy", "total_in", "total_out", "push"):
        assert shop[key] == state[key], key
    assert shop["faults"] == []


def test_the_fleet_page_names_the_faults_on_each_device(sim: Simulator) -> None:
    ctl = sim.control
    ctl.add_fault(id="slow-shop", device="shop", latency={"ms": 1})
    ctl.add_fault(id="everyone", status=503, path="/nowhere")
    try:
        rows = {d["id"]: d for d in get(sim, "/sim/v1/fleet", headers=AUTH).json()["devices"]}
        assert rows["shop"]["faults"] == ["slow-shop", "everyone"]
        assert rows["metro"]["faults"] == ["everyone"]
    finally:
        ctl.clear_faults()


@pytest.mark.parametrize(
    ("query", "ids", "total"),
    [
        ("?limit=2", ["parking", "street"], 4),
        ("?offset=3", ["shop"], 4),
        ("?offset=9", [], 4),
        ("?q=ETR", ["metro"], 1),  # any case
        ("?q=accc8e100002", ["street"], 1),  # the serial
        ("?q=r&offset=1&limit=1", ["street"], 3),
    ],
)
def test_the_fleet_is_searched_and_paged(
    sim: Simulator, query: str, ids: list[str], total: int
) -> None:
    for path in ("/sim/v1/fleet", "/sim/v1/devices"):
        body = get(sim, path + query, headers=AUTH).json()
        assert [d["id"] for d in body["devices"]] == ids, path
        assert body["total"] == total, path


def test_the_devices_default_answer_is_unchanged(sim: Simulator) -> None:
    body = get(sim, "/sim/v1/devices", headers=AUTH).json()
    assert list(body) == ["devices"]
    assert len(body["devices"]) == 4
    assert set(body["devices"][0]) == {"id", "model", "serial", "url"}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/sim/v1/fleet?limit=0", "limit"),
        ("/sim/v1/fleet?limit=501", "limit"),
        ("/sim/v1/fleet?limit=ten", "limit"),
        ("/sim/v1/fleet?offset=-1", "offset"),
        ("/sim/v1/devices?offset=x", "offset"),
        ("/sim/v1/devices?limit=" + "9" * 5000, None),  # a huge number is no failure
        ("/sim/v1/devices/shop/series?resolution=day", "resolution"),
    ],
)
def test_bad_paging_is_a_400_naming_it(sim: Simulator, path: str, field: str | None) -> None:
    r = get(sim, path, headers=AUTH)
    if field is None:
        assert r.status_code == 200
        return
    assert r.status_code == 400
    assert r.json()["error"]["field"] == field


def test_a_fleet_page_of_10000_devices_sends_50_rows() -> None:
    scenario = Scenario(name="big", fleet=FleetTemplate(count=10_000))
    with ThreadedSimulator(scenario, speed=0, devices=["door-0000"]) as s:
        body = get(s, "/sim/v1/fleet", headers=AUTH).json()
        assert body["total"] == 10_000
        assert len(body["devices"]) == 50
        last = get(s, "/sim/v1/fleet?q=door-9999", headers=AUTH).json()["devices"]
        assert [d["id"] for d in last] == ["door-9999"] and last[0]["url"] is None


# ---- the series ------------------------------------------------------------------------------


def test_the_minute_series_matches_the_devices_export(sim: Simulator) -> None:
    series = get(sim, "/sim/v1/devices/parking/series", headers=AUTH).json()
    auth = HTTPDigestAuth("viewer", "viewer")
    export = get(
        sim, "/a3dpc/api/export/json?start=today&end=now&resolution=minute", auth=auth
    ).json()
    assert series["day"] == "2024-12-02" and series["timezone"] == "Europe/Stockholm"
    assert series["wall_minute"][:3] == [0, 1, 2]
    assert len(series["start"]) == len(series["in"]) == len(series["occupancy"])
    assert sum(series["in"]) == sum(b["in"] for b in export["data"]) > 0
    assert sum(series["out"]) == sum(b["out"] for b in export["data"])
    state = get(sim, "/sim/v1/devices/parking", headers=AUTH).json()
    assert series["occupancy"][-1] == state["occupancy"]


def test_the_hour_series_sums_the_minutes(sim: Simulator) -> None:
    minutes = get(sim, "/sim/v1/devices/shop/series", headers=AUTH).json()
    hours = get(sim, "/sim/v1/devices/shop/series?resolution=hour", headers=AUTH).json()
    assert hours["wall_minute"] == [60 * h for h in range(len(hours["start"]))]
    assert sum(hours["in"]) == sum(minutes["in"])
    assert max(hours["occupancy"]) == max(minutes["occupancy"])


def test_the_series_moves_with_the_clock(sim: Simulator) -> None:
    before = get(sim, "/sim/v1/devices/metro/series", headers=AUTH).json()
    sim.control.advance("5m")
    after = get(sim, "/sim/v1/devices/metro/series", headers=AUTH).json()
    assert len(after["in"]) == len(before["in"]) + 5
    assert get(sim, "/sim/v1/devices/nope/series", headers=AUTH).status_code == 404


def test_the_openapi_document_lists_the_console_endpoints(sim: Simulator) -> None:
    paths = get(sim, "/sim/v1/openapi.json").json()["paths"]
    assert {"/sim/v1/fleet", "/sim/v1/devices/{device}/series"} <= set(paths)
    names = {p["name"] for p in paths["/sim/v1/devices"]["get"]["parameters"]}
    assert names == {"q", "offset", "limit"}


# ---- the device's application page -------------------------------------------------------------


def test_the_app_page_asks_for_digest_credentials(sim: Simulator) -> None:
    r = get(sim, "/local/a3dpc/index.html")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Digest ")
    journal = sim.control.journal("parking", limit=1)["entries"]
    assert journal[-1]["path"] == "/local/a3dpc/index.html" and journal[-1]["status"] == 401


def test_a_viewer_sees_the_app_page(sim: Simulator) -> None:
    r = get(sim, "/local/a3dpc/index.html", auth=HTTPDigestAuth("viewer", "viewer"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    state = get(sim, "/sim/v1/devices/parking", headers=AUTH).json()
    assert "ACCC8E100001" in r.text and "AXIS 3D People Counter" in r.text
    assert f'<span class="big" id="occupancy">{state["occupancy"]}</span>' in r.text
    assert f'<strong id="total-in">{state["total_in"]}</strong>' in r.text
    assert "<dt>Status</dt><dd>counting</dd>" in r.text
    assert 'fetch("/a3dpc/api/occupancy"' in r.text


def test_the_app_page_shows_the_firmware_and_a_closed_door(sim: Simulator) -> None:
    sim.control.inject("door_closed", device="shop")
    try:
        r = get(sim, "/local/a3dpc/index.html", auth=HTTPDigestAuth("root", "pass"))
        assert r.status_code == 200
        firmware = sim.fleet.by_id["parking"].cfg.firmware_version
        assert f"<dt>Firmware</dt><dd>{firmware}</dd>" in r.text
        shop = requests.get(
            sim.devices["shop"].url + "/local/a3dpc/index.html",
            auth=HTTPDigestAuth("viewer", "viewer"),
            timeout=T,
        )
        assert "<dt>Status</dt><dd>door closed: not counting</dd>" in shop.text
    finally:
        sim.control.inject("door_open", device="shop")


def test_the_older_model_has_no_a3dpc_page() -> None:
    old = DeviceConfig(id="old", model="3D People Counter", installed=date(2024, 1, 1))
    with ThreadedSimulator(Scenario(devices=[old]), speed=0) as s:
        r = get(s, "/local/a3dpc/index.html", auth=HTTPDigestAuth("viewer", "viewer"))
        assert r.status_code == 404
