"""Every shipped scenario loads, serves and answers a request; replay round-trips."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from simulator.api.common import MODEL_APIS
from simulator.schema.load import load_scenario
from simulator.testing import Simulator

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
TOKEN = {"Authorization": "Bearer p8815-sim"}


def test_the_required_scenarios_are_shipped() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"default", "mall", "legacy", "dst-weekend", "push-outage", "fleet-1000", "ci"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario_loads_serves_and_answers(path: Path) -> None:
    scenario = load_scenario(path)
    assert path.read_text().startswith("#")  # documented at its top
    first = scenario.devices[0]
    user = next(u for u in first.users if u.role == "viewer")
    api = "a3dpc" if "a3dpc" in MODEL_APIS[first.model] else "stereo"
    url = {"a3dpc": "/a3dpc/api/occupancy", "stereo": "/stereo/people-counter/counts.json"}[api]
    async with Simulator(scenario, devices=[first.id]) as sim:
        mw = (aiohttp.DigestAuthMiddleware(user.name, user.password),)
        async with aiohttp.ClientSession(middlewares=mw) as s, s.get(sim.url + url) as r:
            assert r.status == 200, await r.text()
        async with aiohttp.ClientSession(headers=TOKEN) as s:
            async with s.post(sim.url + "/sim/v1/clock/advance", json={"by": "3h"}) as r:
                assert r.status == 200
            async with s.get(sim.url + "/sim/v1/events") as r:
                assert (await r.json())["scheduled"] == [] or scenario.timeline


def test_fleet_of_1000_loads_quickly() -> None:
    t = time.perf_counter()
    scenario = load_scenario(ROOT / "scenarios" / "fleet-1000.yaml")
    assert time.perf_counter() - t < 1.0
    assert len(scenario.devices) == 1000
    assert len({d.serial for d in scenario.devices}) == 1000


async def test_dst_sunday_has_25_hours() -> None:
    async with Simulator(ROOT / "scenarios" / "dst-weekend.yaml") as sim:
        await sim.acontrol.set_time("2024-10-28T09:00:00+01:00")
        mw = (aiohttp.DigestAuthMiddleware("viewer", "viewer"),)
        q = "/a3dpc/api/export/csv?start=20241027&end=20241028&resolution=hour"
        async with aiohttp.ClientSession(middlewares=mw) as s, s.get(sim.url + q) as r:
            lines = (await r.text()).splitlines()
    assert len(lines) == 1 + 25


async def test_replay_exports_the_recording_byte_for_byte() -> None:
    recording = (ROOT / "scenarios" / "recordings" / "store-2024-06-03.csv").read_bytes()
    async with Simulator(ROOT / "scenarios" / "replay.yaml") as sim:
        mw = (aiohttp.DigestAuthMiddleware("viewer", "viewer"),)
        q = "/a3dpc/api/export/csv?start=20240603&end=20240605&resolution=minute"
        async with aiohttp.ClientSession(middlewares=mw) as s, s.get(sim.url + q) as r:
            assert await r.read() == recording


def test_replay_errors_are_located(tmp_path: Path) -> None:
    from simulator.replay import ReplayError, parse_recording
    from simulator.schema.load import ScenarioError

    f = tmp_path / "s.yaml"
    f.write_text("devices:\n  - replay: {file: missing.csv}\n")
    with pytest.raises(ScenarioError, match=r"devices\.0\.replay\.file: cannot read"):
        load_scenario(f)
    with pytest.raises(ReplayError, match="line 1"):
        parse_recording("a,b\n")
    with pytest.raises(ReplayError, match="line 3"):
        parse_recording("start,end,in,out\n2024-06-03 00:00:00,2024-06-03 00:01:00,1,2\nxx\n")
