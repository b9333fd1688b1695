"""Shipped scenarios by name, wherever a scenario is taken; fixed ports of Simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator.schema.load import ScenarioError, load_scenario, shipped_scenarios
from simulator.testing import ThreadedSimulator
from tests.serving import first_answer, free_port, serving

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_the_repository_scenarios_are_the_shipped_ones() -> None:
    assert (ROOT / "scenarios").resolve() == (ROOT / "simulator" / "scenarios")
    assert set(shipped_scenarios()) == {p.stem for p in (ROOT / "scenarios").glob("*.yaml")}


def test_a_name_loads_the_shipped_scenario_from_anywhere(tmp_path: Path) -> None:
    r = run("validate", "mall", cwd=tmp_path)
    assert r.returncode == 0 and "mall: valid (4 device(s))" in r.stdout, r.stderr
    assert load_scenario("legacy.yaml") == load_scenario(ROOT / "scenarios" / "legacy.yaml")
    replay = load_scenario("replay")  # its recording is found next to the shipped file
    assert replay.devices[0].replay is not None
    assert Path(replay.devices[0].replay.file).is_file()


def test_an_existing_path_wins_over_a_name(tmp_path: Path) -> None:
    (tmp_path / "mall").write_text("name: my-own\n")
    r = run("validate", "mall", cwd=tmp_path)
    assert r.returncode == 0 and "mall: valid (1 device(s))" in r.stdout, r.stderr


def test_an_unknown_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    r = run("validate", "nosuch", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "nosuch: invalid scenario" in r.stderr
    assert "no such file, and no shipped scenario has that name (shipped: ci, default, " in r.stderr
    with pytest.raises(ScenarioError, match="shipped: ci, default"):
        load_scenario("some/dir/mall.yaml")  # a path, not a name: no such file


def test_scenarios_lists_names_and_descriptions() -> None:
    r = run("scenarios")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert set(lines) == set(shipped_scenarios())
    assert lines["mall"] == "Three entrances of a shopping centre (one site) and a shop inside it."
    assert lines["default"].startswith("The built-in default scenario")  # its first comment


def test_export_and_serve_take_a_name(tmp_path: Path) -> None:
    args = ("--start", "20240603", "--end", "20240604", "--resolution", "hour")
    r = run("export", "replay", *args, "--now", "2024-06-05T00:00:00+02:00", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "start,end,in,out" and len(r.stdout.splitlines()) == 25
    port = free_port()
    with serving("ci", "--port", str(port)) as proc:
        r2 = first_answer(proc, f"http://127.0.0.1:{port}/a3dpc/api/occupancy")
        assert r2.json()["timestamp"] == "2024-06-07T12:00:00+02:00"  # ci's frozen start


def test_a_fixed_port_binds_device_i_on_port_plus_i() -> None:
    port = free_port(2)
    with ThreadedSimulator("mall", port=port, devices=["parking", "street"]) as sim:
        assert sim.devices["parking"].url == f"http://127.0.0.1:{port}"
        assert sim.devices["street"].url == f"http://127.0.0.1:{port + 1}"
        user = next(iter(sim.users("street").items()))
        r = requests.get(
            f"http://127.0.0.1:{port + 1}/a3dpc/api/occupancy",
            auth=HTTPDigestAuth(*user),
            timeout=10,
        )
        assert r.status_code == 200
    with ThreadedSimulator("ci") as sim:  # port=0: one the OS chooses
        assert sim.url != "http://127.0.0.1:0"
        assert int(sim.url.rsplit(":", 1)[1]) > 0
