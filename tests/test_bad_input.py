"""Hostile query strings on every GET endpoint: the device's error or data, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.schema.scenario import DeviceConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

NASTY = [
    "",
    "\x00",
    "99991231",
    "99981231-99991231",
    "00000101",
    "19700101",
    "20240101-20230101",
    "2024-01-01",
    "all,all",
    "today,now",
    "-",
    ",",
    "\U0001f600",
    "1" * 2000,
    "20240101" * 50,
    "now-today",
    "NaN",
    "-1",
    "60.0",
    "1e9",
]
A3DPC = [
    "/a3dpc/api/export/csv",
    "/a3dpc/api/export/json",
    "/a3dpc/api/export_occupancy/csv",
    "/a3dpc/api/export_occupancy/json",
]
STEREO = [
    "/stereo/people-counter/export.csv",
    "/stereo/people-counter/export.json",
]


@pytest.mark.parametrize("value", NASTY)
async def test_a3dpc_exports_never_fail(client_for: ClientFactory, value: str) -> None:
    client = await client_for(make_fleet())
    for path in A3DPC:
        for field in ("start", "end", "resolution"):
            query = {"start": "yesterday", "end": "today", "resolution": "hour", field: value}
            r = await client.get(path, params=query)
            assert r.status in (200, 400), (path, field, value, r.status)
            if r.status == 400:
                body: Any = await r.json()
                assert body["error"]["message"] == "Validation failed"
                assert body["error"]["error"][0]["field"] == field


@pytest.mark.parametrize("value", NASTY)
async def test_stereo_exports_never_fail(client_for: ClientFactory, value: str) -> None:
    legacy = Scenario(devices=[DeviceConfig(model="3D People Counter")])
    client = await client_for(make_fleet(legacy))
    for path in STEREO:
        for field in ("date", "resolution", "method"):
            query = {"date": "20240601", field: value}
            r = await client.get(path, params=query)
            assert r.status in (200, 400), (path, field, value, r.status)
