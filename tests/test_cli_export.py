"""``p8815-sim export`` writes the HTTP export's bytes; ``p8815-sim plot`` draws a PNG."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from simulator.cli import main
from simulator.schema.load import parse_scenario
from tests.conftest import T0, ClientFactory, make_fleet

NOW = datetime.fromtimestamp(T0, UTC).isoformat()
MALL = """
name: mall
seed: 9
devices:
  - {id: north, site: mall, serial: ACCC8E000001, crowd: {daily_visitors: 900, exit_share: 0.6}}
  - {id: south, site: mall, serial: ACCC8E000002, crowd: {daily_visitors: 500, exit_share: 0.3}}
"""


def export(tmp_path: Path, *args: str, scenario: str | None = None) -> bytes:
    out = tmp_path / "out.bin"
    argv = ["export", *([scenario] if scenario else []), "--now", NOW, "-o", str(out), *args]
    assert main(argv) == 0
    return out.read_bytes()


EXPORTS = [
    ("export/csv", {"start": "20240520", "end": "now", "resolution": "minute"}),
    ("export/json", {"start": "20240301", "end": "today", "resolution": "hour"}),
    ("export/csv", {"start": "20231001", "end": "20240101", "resolution": "day"}),
    ("export_occupancy/csv", {"start": "yesterday", "end": "now", "resolution": "hour"}),
    ("export_occupancy/json", {"start": "20240601", "end": "today", "resolution": "day"}),
]


@pytest.mark.parametrize(("path", "query"), EXPORTS)
async def test_export_writes_the_http_bytes(
    tmp_path: Path, client_for: ClientFactory, path: str, query: dict[str, str]
) -> None:
    client = await client_for(make_fleet())
    r = await client.get(f"/a3dpc/api/{path}", params=query)
    assert r.status == 200
    expected = await r.read()
    fmt = path.rsplit("/", 1)[1]
    data = "occupancy" if "occupancy" in path else "traffic"
    args = ["--start", query["start"], "--end", query["end"], "--resolution", query["resolution"]]
    got = export(tmp_path, *args, "--format", fmt, "--data", data)
    assert got == expected


async def test_export_of_a_site_door_matches_the_server(
    tmp_path: Path, client_for: ClientFactory
) -> None:
    (tmp_path / "mall.yaml").write_text(MALL)
    fleet = make_fleet(parse_scenario(MALL))
    client = await client_for(fleet)
    north = fleet.fleet.by_id["north"]
    fleet.fleet.bind(north, str(client.server.host), int(client.server.port or 0))
    q = {"start": "20240401", "end": "today", "resolution": "hour"}
    expected = await (await client.get("/a3dpc/api/export/csv", params=q)).read()
    args = ["--device", "north", "--start", "2024-04-01", "--end", "today"]
    got = export(tmp_path, *args, scenario=str(tmp_path / "mall.yaml"))
    assert got == expected and len(got.splitlines()) > 24 * 60


def test_export_of_a_fleet_with_progress(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "mall.yaml").write_text(MALL)
    pattern = str(tmp_path / "x" / "{device}.json")
    argv = ["export", str(tmp_path / "mall.yaml"), "--now", NOW, "--start", "20240101"]
    argv += ["--end", "20240201", "--resolution", "day", "--format", "json"]
    assert main([*argv, "-o", pattern, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "62/62 days" in err and "100%" in err
    north = (tmp_path / "x" / "north.json").read_text()
    south = (tmp_path / "x" / "south.json").read_text()
    assert north.startswith('{"data": [{"start": "2024-01-01 00:00:00"') and north != south


def test_export_refuses_bad_requests_like_the_device(tmp_path: Path, capsys: Any) -> None:
    base = ["export", "--now", NOW, "--end", "today"]
    assert main([*base, "--start", "20241301"]) == 2
    assert "--start: Invalid date '20241301', no such calendar day" in capsys.readouterr().err
    assert main([*base, "--start", "today", "--resolution", "week"]) == 2
    assert "--resolution: Invalid resolution 'week'" in capsys.readouterr().err
    assert main([*base, "--start", "today", "--device", "nope"]) == 2
    assert "no device nope" in capsys.readouterr().err
    (tmp_path / "mall.yaml").write_text(MALL)
    assert main(["export", str(tmp_path / "mall.yaml"), "--start", "today", "--end", "now"]) == 2
    assert "{device}" in capsys.readouterr().err


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "week.png"
    (tmp_path / "mall.yaml").write_text(MALL)
    argv = ["plot", str(tmp_path / "mall.yaml"), "--start", "2024-12-21", "--days", "7"]
    assert main([*argv, "--device", "south", "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
