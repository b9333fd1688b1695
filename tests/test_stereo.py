"""The legacy stereo API of the older AXIS 3D People Counter, as legacy collectors read it."""

from __future__ import annotations

import json
import re
from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, PassthroughConfig, Scenario
from tests.conftest import T0, ClientFactory, make_fleet

Client = TestClient[Any, Any]
TZ = ZoneInfo("Europe/Stockholm")
LEGACY = DeviceConfig(model="3D People Counter", installed=datetime(2024, 1, 1).date())
EXPORT = "/stereo/people-counter/export"
HEADER = "Interval Start, Interval Start (Unixtime), In, Out\n"
ROW = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d), (\d+), (\d+), (\d+)$")


def legacy_fleet(**changes: Any) -> Runtime:
    return make_fleet(Scenario(devices=[LEGACY.model_copy(update=changes)]))


@pytest.fixture
async def legacy(client_for: ClientFactory) -> Client:
    return await client_for(legacy_fleet())


async def text_of(client: Client, path: str, **query: str) -> str:
    r = await client.get(path, params=query)
    assert r.status == 200, await r.text()
    return await r.text()


async def csv_rows(client: Client, **query: str) -> list[tuple[str, int, int, int]]:
    text = await text_of(client, EXPORT + ".csv", **query)
    assert text.startswith(HEADER)
    rows = []
    for line in text[len(HEADER) :].splitlines():
        m = ROW.match(line)
        assert m, line
        rows.append((m[1], int(m[2]), int(m[3]), int(m[4])))
    return rows


# ---- export: layout -----------------------------------------------------------------------


async def test_csv_bytes_header_and_rows(legacy: Client) -> None:
    r = await legacy.get(EXPORT + ".csv", params={"date": "20240606", "resolution": "hour"})
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = await r.read()
    assert body.startswith(b"Interval Start, Interval Start (Unixtime), In, Out\n")
    assert body.endswith(b"\n") and b"\r" not in body
    lines = body.decode().splitlines()[1:]
    assert len(lines) == 24
    assert lines[0].startswith("2024-06-06 00:00:00, 1717624800, ")
    for line in lines:
        m = ROW.match(line)
        assert m
        local = datetime.fromtimestamp(int(m[2]), TZ).strftime("%Y-%m-%d %H:%M:%S")
        assert local == m[1]


async def test_json_export_shape_matches_csv(legacy: Client) -> None:
    q = {"date": "20240606", "resolution": "hour"}
    text = await text_of(legacy, EXPORT + ".json", **q)
    body = json.loads(text)
    assert text == json.dumps(body, sort_keys=True)
    assert list(body) == ["data", "name", "resolution", "serial"]
    assert (body["name"], body["resolution"], body["serial"]) == (
        "Untitled AXIS 3D People Counter",
        3600,
        "ACCC8EF3D92E",
    )
    rows = await csv_rows(legacy, **q)
    assert [
        (d["interval_start"], d["interval_start_unixtime"], d["in"], d["out"]) for d in body["data"]
    ] == rows


@pytest.mark.parametrize(("word", "number"), [("minute", "60"), ("hour", "3600"), ("day", "86400")])
async def test_resolution_words_and_seconds_agree(legacy: Client, word: str, number: str) -> None:
    a = await text_of(legacy, EXPORT + ".csv", date="20240605", resolution=word)
    b = await text_of(legacy, EXPORT + ".csv", date="20240605", resolution=number)
    assert a == b
    assert len(a.splitlines()) - 1 == {"minute": 1440, "hour": 24, "day": 1}[word]


async def test_bins_agree_across_resolutions(legacy: Client) -> None:
    minute = await csv_rows(legacy, date="20240605", resolution="minute")
    hour = await csv_rows(legacy, date="20240605", resolution="hour")
    (day,) = await csv_rows(legacy, date="20240605", resolution="day")
    assert sum(r[2] for r in minute) == sum(r[2] for r in hour) == day[2] > 500
    assert sum(r[3] for r in minute) == sum(r[3] for r in hour) == day[3]


async def test_days_without_records_are_empty(legacy: Client) -> None:
    rows = await csv_rows(legacy, date="20231029", resolution="hour")
    assert rows == []  # before installation: the device has no records
    client_rows = await csv_rows(legacy, date="20241027", resolution="hour")
    assert client_rows == []  # the future: nothing yet


async def test_autumn_dst_hours(client_for: ClientFactory) -> None:
    fleet = make_fleet(
        Scenario(devices=[LEGACY]), at=datetime(2024, 10, 28, 12, tzinfo=TZ).timestamp()
    )
    rows = await csv_rows(await client_for(fleet), date="20241027", resolution="hour")
    assert len(rows) == 25
    labels = [r[0][11:13] for r in rows]
    assert labels.count("02") == 2
    assert all(b[1] - a[1] == 3600 for a, b in pairwise(rows))


# ---- export: dates ------------------------------------------------------------------------


def days_of(rows: list[tuple[str, int, int, int]]) -> list[str]:
    return [r[0][:10] for r in rows]


async def test_an_interval_of_days(legacy: Client) -> None:
    rows = await csv_rows(legacy, date="20240601-20240603", resolution="day")
    assert days_of(rows) == ["2024-06-01", "2024-06-02", "2024-06-03"]


async def test_a_list_of_days_sorted_and_merged(legacy: Client) -> None:
    rows = await csv_rows(
        legacy, date="20240605,20240601,20240602-20240603,20240601", resolution="day"
    )
    assert days_of(rows) == ["2024-06-01", "2024-06-02", "2024-06-03", "2024-06-05"]


async def test_all_is_the_default_and_spans_the_retained_data(legacy: Client) -> None:
    rows = await csv_rows(legacy, resolution="day")
    assert rows[0][0] == "2024-01-01 00:00:00"  # the installation day
    assert rows[-1][0] == "2024-06-07 00:00:00"  # today, so far
    assert len(rows) == 159
    assert await text_of(legacy, EXPORT + ".csv", date="all", resolution="day") == await text_of(
        legacy, EXPORT + ".csv", date="", resolution="day"
    )


async def test_today_so_far_is_the_counts_of_counts_json(legacy: Client) -> None:
    (today,) = await csv_rows(legacy, date="20240607", resolution="day")
    counts = json.loads(await text_of(legacy, "/stereo/people-counter/counts.json"))
    assert (today[2], today[3]) == (counts["in"], counts["out"])
    minutes = await csv_rows(legacy, date="20240607", resolution="60")
    assert minutes[-1][0] == "2024-06-07 15:30:00"  # the bin holding now is the last


async def test_default_resolution_is_minute(legacy: Client) -> None:
    rows = await csv_rows(legacy, date="20240606")
    assert len(rows) == 1440


async def test_unknown_parameters_are_ignored(legacy: Client) -> None:
    # The vendor's own example carries export-method=on.
    plain = await text_of(legacy, EXPORT + ".csv", date="20240606", resolution="60", method="open")
    extra = await text_of(
        legacy, EXPORT + ".csv", date="20240606", resolution="60", method="open",
        **{"export-method": "on", "foo": "bar"},
    )  # fmt: skip
    assert plain == extra


async def test_open_is_inline_and_download_an_attachment(legacy: Client) -> None:
    q = {"date": "20170110", "resolution": "day"}
    r = await legacy.get(EXPORT + ".json", params={**q, "method": "download"})
    assert r.status == 200
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="people-counter-ACCC8EF3D92E-20170110.json"'
    )
    r = await legacy.get(EXPORT + ".csv", params={"date": "20240601-20240603"})
    assert r.headers["Content-Disposition"] == (
        'inline; filename="people-counter-ACCC8EF3D92E-20240601-20240603.csv"'
    )
    r = await legacy.get(EXPORT + ".csv", params={"method": "download", "resolution": "day"})
    assert r.headers["Content-Disposition"].endswith('-all.csv"')


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"date": "2024060"}, "date"),
        ({"date": "20240230"}, "date"),
        ({"date": "20240610-20240601"}, "date"),
        ({"date": "20240601,"}, "date"),
        ({"date": "yesterday"}, "date"),
        ({"date": "19690101"}, "date"),
        ({"resolution": "week"}, "resolution"),
        ({"resolution": "120"}, "resolution"),
        ({"method": "save"}, "method"),
    ],
)
async def test_malformed_values_are_a_clear_400(
    legacy: Client, query: dict[str, str], field: str
) -> None:
    r = await legacy.get(EXPORT + ".csv", params=query)
    assert r.status == 400
    body = await r.json()
    assert body["error"]["message"] == "Validation failed"
    (problem,) = body["error"]["error"]
    assert problem["field"] == field
    assert next(iter(query.values())) in problem["reason"]


async def test_every_bad_field_is_named(legacy: Client) -> None:
    r = await legacy.get(EXPORT + ".json", params={"date": "x", "resolution": "y", "method": "z"})
    assert r.status == 400
    fields = [p["field"] for p in (await r.json())["error"]["error"]]
    assert fields == ["date", "resolution", "method"]


async def test_the_same_seed_gives_the_same_bytes(client_for: ClientFactory) -> None:
    q = {"date": "20240603-20240605", "resolution": "hour"}
    a = await text_of(await client_for(legacy_fleet()), EXPORT + ".csv", **q)
    b = await text_of(await client_for(legacy_fleet()), EXPORT + ".csv", **q)
    assert a == b
    other = make_fleet(Scenario(devices=[LEGACY]), seed=7)
    assert await text_of(await client_for(other), EXPORT + ".csv", **q) != a


# ---- counts, fps, io, params --------------------------------------------------------------


async def test_counts_json(client_for: ClientFactory) -> None:
    client = await client_for(legacy_fleet(name="Main entrance", serial="accc8e235294"))
    text = await text_of(client, "/stereo/people-counter/counts.json")
    body = json.loads(text)
    assert text == json.dumps(body, sort_keys=True)
    assert list(body) == ["in", "name", "out", "serial", "timestamp"]
    assert body["name"] == "Main entrance"
    assert body["serial"] == "ACCC8E235294"
    assert body["timestamp"] == "20240607153020"  # local time (CEST)
    assert body["in"] > body["out"] > 0


async def test_fps_json(client_for: ClientFactory) -> None:
    fleet = legacy_fleet()
    client = await client_for(fleet)
    first = json.loads(await text_of(client, "/stereo/fps.json"))
    assert list(first) == ["fps", "fps_100", "fps_1000", "fps_5", "fps_50", "frames"]
    assert first["frames"] == 0  # the device has just booted
    fleet.clock.advance(600)
    later = json.loads(await text_of(client, "/stereo/fps.json"))
    assert 0.6 * 20 * 600 < later["frames"] <= 20 * 600 * 1.1
    for key in ("fps", "fps_5", "fps_50", "fps_100", "fps_1000"):
        assert 2 <= later[key] <= 30
        assert later[key] == round(later[key], 2)
    fleet.clock.advance(1)
    assert json.loads(await text_of(client, "/stereo/fps.json"))["frames"] > later["frames"]


async def test_io_json_follows_the_passthrough_threshold(client_for: ClientFactory) -> None:
    fleet = legacy_fleet(passthrough=PassthroughConfig(threshold=50))
    client = await client_for(fleet)
    events = fleet.fleet.devices[0].passthrough(T0).events
    assert len(events) >= 3
    event = float(events[-1])
    fleet.clock.set(event + 1)
    r = await client.get("/stereo/io.json")
    assert r.content_type == "application/json"
    assert await r.read() == b'"True"'
    fleet.clock.set(event + 11)  # the pulse lasts 10 s
    assert await (await client.get("/stereo/io.json")).read() == b'"False"'


async def test_params_json(client_for: ClientFactory) -> None:
    client = await client_for(legacy_fleet(passthrough=PassthroughConfig(threshold=42)))
    text = await text_of(client, "/stereo/params.json")
    params = json.loads(text)
    assert text == json.dumps(params, sort_keys=True)
    assert params["passthrough_threshold"] == 42
    assert params["passthrough_events"] is True
    assert params["serial"] == "ACCC8EF3D92E"
    assert params["timezone"] == "Europe/Stockholm"
    assert params["occupancy_reset_time"] == "00:00"
    assert params["installed"] == "20240101"
    assert "pass" not in text.replace("passthrough", "")  # no passwords


# ---- which model serves what --------------------------------------------------------------


async def test_the_p8815_2_has_no_stereo_api(client_for: ClientFactory) -> None:
    anonymous = await client_for(make_fleet(), user=None)
    for path in ("/stereo/fps.json", EXPORT + ".csv", "/stereo/people-counter/counts.json"):
        r = await anonymous.get(path)
        assert r.status == 404  # not even a challenge: the path does not exist
    viewer = await client_for(make_fleet())
    assert (await viewer.get("/stereo/io.json")).status == 404


async def test_the_legacy_model_has_no_a3dpc_api(client_for: ClientFactory) -> None:
    client = await client_for(legacy_fleet(), user="operator")
    assert (await client.get("/a3dpc/api/occupancy")).status == 404
    assert (
        await client.get("/a3dpc/api/export/csv?start=today&end=now&resolution=hour")
    ).status == 404
    r = await client.post("/axis-cgi/a3dpc.cgi", json={"apiVersion": "1", "method": "x"})
    assert r.status == 404


async def test_stereo_is_behind_digest(client_for: ClientFactory) -> None:
    client = await client_for(legacy_fleet(), user="viewer", password="wrong")
    assert (await client.get("/stereo/people-counter/counts.json")).status == 401
