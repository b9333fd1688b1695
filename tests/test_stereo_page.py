"""The older model's application page, ``/local/stereo/index.html`` (the ``ConfigurationPage``
its ``applications/list.cgi`` names): Digest, viewer level, its stereo API's values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator.schema.scenario import DeviceConfig, Scenario
from simulator.testing import Simulator, ThreadedSimulator

T = 10
PAGE = "/local/stereo/index.html"
VIEWER = HTTPDigestAuth("viewer", "viewer")
OLD = DeviceConfig(id="old", model="3D People Counter", installed=date(2024, 1, 1))
NEW = DeviceConfig(id="new", installed=date(2024, 1, 1))


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    start = datetime(2024, 6, 5, 12, 30, 20, tzinfo=UTC)  # a Wednesday afternoon in Stockholm
    with ThreadedSimulator(Scenario(start=start, devices=[OLD, NEW]), speed=0) as s:
        yield s


def get(sim: Simulator, device: str, path: str, **kw: object) -> requests.Response:
    url = sim.devices[device].url
    assert url is not None
    return requests.get(url + path, timeout=T, **kw)  # type: ignore[arg-type]


def test_the_page_asks_for_digest_credentials(sim: Simulator) -> None:
    r = get(sim, "old", PAGE)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Digest ")
    journal = sim.control.journal("old", limit=1)["entries"]
    assert journal[-1]["path"] == PAGE and journal[-1]["status"] == 401


def test_a_wrong_password_is_refused(sim: Simulator) -> None:
    r = get(sim, "old", PAGE, auth=HTTPDigestAuth("viewer", "nope"))
    assert r.status_code == 401


def test_a_viewer_sees_the_stereo_apis_values(sim: Simulator) -> None:
    # a frozen clock: the page and the API read the same instant
    r = get(sim, "old", PAGE, auth=VIEWER)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    counts = get(sim, "old", "/stereo/people-counter/counts.json", auth=VIEWER).json()
    fps = get(sim, "old", "/stereo/fps.json", auth=VIEWER).json()
    assert counts["in"] > 0
    assert f'<span class="big" id="total-in">{counts["in"]}</span>' in r.text
    assert f'<strong id="total-out">{counts["out"]}</strong>' in r.text
    t = counts["timestamp"]
    assert f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:]}</time>" in r.text
    assert f'<strong id="fps">{fps["fps"]}</strong> fps' in r.text
    assert f"<dt>Device name</dt><dd>{counts['name']}</dd>" in r.text
    assert f"<dt>Serial number</dt><dd>{counts['serial']}</dd>" in r.text
    assert "<dt>Product</dt><dd>AXIS P8804 Stereo Sensor Kit</dd>" in r.text
    assert "<dt>Status</dt><dd>counting</dd>" in r.text
    assert 'get("/stereo/people-counter/counts.json"' in r.text
    assert 'get("/stereo/fps.json"' in r.text
    assert "/a3dpc/" not in r.text  # the older model has no a3dpc API to call


def test_the_page_shows_a_closed_door(sim: Simulator) -> None:
    sim.control.inject("door_closed", device="old")
    try:
        r = get(sim, "old", PAGE, auth=HTTPDigestAuth("root", "pass"))
        assert "<dt>Status</dt><dd>door closed: not counting</dd>" in r.text
    finally:
        sim.control.inject("door_open", device="old")


@pytest.mark.parametrize(("device", "path"), [("new", PAGE), ("old", "/local/a3dpc/index.html")])
def test_each_model_has_only_its_own_page(sim: Simulator, device: str, path: str) -> None:
    r = get(sim, device, path, auth=VIEWER)
    assert r.status_code == 404
