"""The a3dpc foot traffic and occupancy exports, as integrations read them."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from simulator.schema.scenario import DeviceConfig, Scenario
from tests.conftest import T0, ClientFactory, make_fleet

Client = TestClient[Any, Any]


async def get_csv(client: Client, path: str, **query: str) -> list[list[str]]:
    r = await client.get(path, params=query)
    assert r.status == 200, await r.text()
    assert r.content_type == "text/csv"
    return list(csv.reader(io.StringIO(await r.text())))


async def get_json(client: Client, path: str, **query: str) -> Any:
    r = await client.get(path, params=query)
    assert r.status == 200, await r.text()
    assert r.content_type == "application/json"
    return json.loads(await r.text())


async def test_yesterday_by_hour_json_matches_vendor_shape(viewer: Client) -> None:
    body = await get_json(
        viewer, "/a3dpc/api/export/json", start="yesterday", end="today", resolution="hour"
    )
    rows = body["data"]
    assert list(body) == ["data"]
    assert len(rows) == 24
    assert list(rows[0]) == ["start", "end", "in", "out"]
    assert rows[0]["start"] == "2024-06-06 00:00:00"
    assert rows[0]["end"] == "2024-06-06 01:00:00"
    assert rows[-1]["end"] == "2024-06-07 00:00:00"
    assert all(isinstance(r["in"], int) and r["in"] >= 0 for r in rows)
    assert sum(r["in"] for r in rows) > 500  # a store's Thursday


async def test_json_body_is_what_json_dumps_writes(viewer: Client) -> None:
    r = await viewer.get(
        "/a3dpc/api/export/json",
        params={"start": "yesterday", "end": "today", "resolution": "hour"},
    )
    text = await r.text()
    assert text == json.dumps(json.loads(text))


async def test_today_to_now_by_minute_csv_stops_at_now(viewer: Client) -> None:
    rows = await get_csv(
        viewer, "/a3dpc/api/export/csv", start="today", end="now", resolution="minute"
    )
    assert rows[0] == ["start", "end", "in", "out"]
    assert rows[1][:2] == ["2024-06-07 00:00:00", "2024-06-07 00:01:00"]
    # Now is 15:30:20 local: the bin holding now (15:30) is the last one, partial.
    assert rows[-1][:2] == ["2024-06-07 15:30:00", "2024-06-07 15:31:00"]
    assert len(rows) - 1 == 15 * 60 + 31


async def test_day_resolution_from_a_date(viewer: Client) -> None:
    rows = await get_csv(
        viewer, "/a3dpc/api/export/csv", start="20240601", end="today", resolution="day"
    )
    assert [r[0] for r in rows[1:]] == [f"2024-06-0{d} 00:00:00" for d in range(1, 7)]
    assert rows[-1][1] == "2024-06-07 00:00:00"


async def test_minute_hour_and_day_bins_agree(viewer: Client) -> None:
    q = {"start": "20240603", "end": "20240605"}
    minute = await get_csv(viewer, "/a3dpc/api/export/csv", resolution="minute", **q)
    hour = await get_csv(viewer, "/a3dpc/api/export/csv", resolution="hour", **q)
    day = await get_csv(viewer, "/a3dpc/api/export/csv", resolution="day", **q)
    assert len(minute) - 1 == 2 * 1440 and len(hour) - 1 == 48 and len(day) - 1 == 2
    for col in (2, 3):
        per_hour: dict[str, int] = {}
        for r in minute[1:]:
            per_hour[r[0][:13]] = per_hour.get(r[0][:13], 0) + int(r[col])
        assert [per_hour[r[0][:13]] for r in hour[1:]] == [int(r[col]) for r in hour[1:]]
        for d in day[1:]:
            assert int(d[col]) == sum(int(h[col]) for h in hour[1:] if h[0][:10] == d[0][:10])


async def test_today_so_far_equals_realtime_totals(viewer: Client) -> None:
    day = await get_json(
        viewer, "/a3dpc/api/export/json", start="today", end="now", resolution="day"
    )
    rt = await get_json(viewer, "/a3dpc/api/occupancy")
    assert day["data"][0]["in"] == rt["total_in"]
    assert day["data"][0]["out"] == rt["total_out"]


async def test_future_and_empty_ranges_return_no_rows(viewer: Client) -> None:
    rows = await get_csv(
        viewer, "/a3dpc/api/export/csv", start="20300101", end="20300105", resolution="day"
    )
    assert rows == [["start", "end", "in", "out"]]
    body = await get_json(
        viewer, "/a3dpc/api/export/json", start="today", end="today", resolution="hour"
    )
    assert body == {"data": []}


async def test_no_rows_before_installation(client_for: ClientFactory) -> None:
    scenario = Scenario(devices=[DeviceConfig(installed=date(2024, 6, 5))])
    client = await client_for(make_fleet(scenario))
    rows = await get_csv(
        client, "/a3dpc/api/export/csv", start="20240101", end="today", resolution="day"
    )
    assert [r[0][:10] for r in rows[1:]] == ["2024-06-05", "2024-06-06"]


async def test_default_installation_is_a_year_back(viewer: Client) -> None:
    rows = await get_csv(
        viewer, "/a3dpc/api/export/csv", start="20230101", end="today", resolution="day"
    )
    assert rows[1][0] == "2023-06-08 00:00:00"
    assert sum(int(r[2]) for r in rows[1:]) > 100_000


@pytest.mark.parametrize(
    ("query", "field", "fragment"),
    [
        ({"end": "today", "resolution": "hour"}, "start", "Required"),
        ({"start": "today", "resolution": "hour"}, "end", "Required"),
        ({"start": "today", "end": "now"}, "resolution", "Required"),
        ({"start": "2024-06-01", "end": "now", "resolution": "hour"}, "start", "2024-06-01"),
        ({"start": "20240230", "end": "now", "resolution": "hour"}, "start", "no such"),
        ({"start": "today", "end": "tomorrow", "resolution": "hour"}, "end", "tomorrow"),
        ({"start": "today", "end": "now", "resolution": "week"}, "resolution", "week"),
        ({"start": "today", "end": "now", "resolution": "60"}, "resolution", "60"),
        ({"start": "today", "end": "yesterday", "resolution": "hour"}, "start", "later than end"),
        ({"start": "now", "end": "today", "resolution": "day"}, "start", "later than end"),
    ],
)
async def test_bad_parameters_are_400_validation_failed(
    viewer: Client, query: dict[str, str], field: str, fragment: str
) -> None:
    for fmt in ("csv", "json"):
        r = await viewer.get(f"/a3dpc/api/export/{fmt}", params=query)
        assert r.status == 400
        body = await r.json()
        assert body["error"]["message"] == "Validation failed"
        errors = body["error"]["error"]
        assert any(e["field"] == field and fragment in e["reason"] for e in errors), errors


async def test_every_bad_field_is_named(viewer: Client) -> None:
    r = await viewer.get("/a3dpc/api/export/csv", params={"start": "x", "resolution": "y"})
    fields = [e["field"] for e in (await r.json())["error"]["error"]]
    assert fields == ["start", "end", "resolution"]


async def test_occupancy_export_refuses_minute(viewer: Client) -> None:
    r = await viewer.get(
        "/a3dpc/api/export_occupancy/csv",
        params={"start": "today", "end": "now", "resolution": "minute"},
    )
    assert r.status == 400
    errors = (await r.json())["error"]["error"]
    assert errors[0]["field"] == "resolution"


async def test_occupancy_export_shapes(viewer: Client) -> None:
    rows = await get_csv(
        viewer, "/a3dpc/api/export_occupancy/csv", start="yesterday", end="today", resolution="hour"
    )
    assert rows[0] == ["start", "end", "peak"]
    assert len(rows) == 25
    body = await get_json(
        viewer, "/a3dpc/api/export_occupancy/json", start="yesterday", end="today", resolution="day"
    )
    assert list(body["data"][0]) == ["start", "end", "peak"]
    assert body["data"][0]["peak"] == max(int(r[2]) for r in rows[1:])


async def test_peaks_are_never_below_the_occupancy_at_the_hour_end(fleet: Any) -> None:
    device = fleet.fleet.devices[0]
    day = date(2024, 6, 6)
    occ, _ = device.day_occupancy(day, T0)
    grid = device.grid(day)
    peaks = next(iter(device.occupancy_peaks(grid.start, grid.end, "hour", T0)))
    assert peaks.grid.day == day
    ends = [*occ[peaks.grid.hour_starts[1:] - 1].tolist(), int(occ[-1])]
    assert all(p >= e for p, e in zip(peaks.values[0].tolist(), ends, strict=True))
    assert (occ >= 0).all()
    assert max(peaks.values[0].tolist()) == occ.max()


def _utc(y: int, m: int, d: int, h: int) -> float:
    return datetime(y, m, d, h, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("day", "hours", "minutes"),
    [(date(2024, 3, 31), 23, 1380), (date(2024, 10, 27), 25, 1500), (date(2024, 6, 1), 24, 1440)],
)
async def test_dst_days(client_for: ClientFactory, day: date, hours: int, minutes: int) -> None:
    client = await client_for(make_fleet(at=_utc(2024, 11, 20, 12)))
    q = {"start": day.strftime("%Y%m%d"), "end": (day + timedelta(days=1)).strftime("%Y%m%d")}
    hour = await get_csv(client, "/a3dpc/api/export/csv", resolution="hour", **q)
    minute = await get_csv(client, "/a3dpc/api/export/csv", resolution="minute", **q)
    dayrow = await get_csv(client, "/a3dpc/api/export/csv", resolution="day", **q)
    peaks = await get_csv(client, "/a3dpc/api/export_occupancy/csv", resolution="hour", **q)
    assert len(hour) - 1 == hours and len(peaks) - 1 == hours
    assert len(minute) - 1 == minutes
    assert dayrow[1][:2] == [f"{day} 00:00:00", f"{day + timedelta(days=1)} 00:00:00"]
    for col in (2, 3):
        total = int(dayrow[1][col])
        assert sum(int(r[col]) for r in hour[1:]) == total
        assert sum(int(r[col]) for r in minute[1:]) == total
    labels = [r[0][11:] for r in hour[1:]]
    if hours == 23:
        assert "02:00:00" not in labels
        assert hour[2][:2] == [f"{day} 01:00:00", f"{day} 03:00:00"]
    if hours == 25:
        assert labels.count("02:00:00") == 2
        # the repeated hour: two rows, each from 02:00 to 03:00 on its own clock (CEST, CET)
        assert hour[3][:2] == [f"{day} 02:00:00", f"{day} 03:00:00"]
        assert hour[4][:2] == [f"{day} 02:00:00", f"{day} 03:00:00"]
    for rows in (hour, minute):  # labels never make an empty bin
        assert all(_span(r[0], r[1]) > 0 for r in rows[1:])
    if hours in (24, 25):  # every bin spans its real length, the repeated hour too
        assert {_span(r[0], r[1]) for r in hour[1:]} == {3600}
        assert {_span(r[0], r[1]) for r in minute[1:]} == {60}


def _span(start: str, end: str) -> int:
    """Seconds between two naive labels, as a client computing durations would."""
    fmt = "%Y-%m-%d %H:%M:%S"
    return int((datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds())


async def test_same_seed_same_bytes_other_seed_other_bytes(client_for: ClientFactory) -> None:
    q = {"start": "20230608", "end": "today", "resolution": "minute"}
    bodies = []
    for seed in (7, 7, 8):
        client = await client_for(make_fleet(seed=seed))
        r = await client.get("/a3dpc/api/export/csv", params=q)
        bodies.append(await r.read())
    assert len(bodies[0]) > 20_000_000  # a year of minute bins
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


async def test_days_do_not_depend_on_request_order(client_for: ClientFactory) -> None:
    q = {"start": "20240301", "end": "20240302", "resolution": "minute"}
    a = await client_for(make_fleet())
    first = await (await a.get("/a3dpc/api/export/csv", params=q)).read()
    b = await client_for(make_fleet())
    await b.get("/a3dpc/api/export/csv", params={**q, "start": "20240101", "end": "20240401"})
    second = await (await b.get("/a3dpc/api/export/csv", params=q)).read()
    assert first == second
