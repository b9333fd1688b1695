"""Sharding a fleet over processes: each device served once, sites whole, same data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator.cli import parse_shard
from simulator.schema.load import load_scenario, parse_scenario
from tests.conftest import T0, make_fleet
from tests.serving import first_answer, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
FLEET = """
seed: 5
fleet: {count: 7, id_prefix: door-, serial_start: ACCC8E200000}
"""


def test_shards_partition_the_fleet_and_keep_sites_whole() -> None:
    for scenario in (parse_scenario(FLEET), load_scenario(ROOT / "scenarios" / "mall.yaml")):
        ids = [d.id for d in make_fleet(scenario).fleet.devices]
        for n in (1, 2, 3):
            shards = [make_fleet(scenario, shard=(i, n)).fleet for i in range(n)]
            served = [[d.id for d in f.served] for f in shards]
            assert sorted(d for shard in served for d in shard) == sorted(ids)
            for shard in served:
                fleet = make_fleet(scenario)
                for dev in shard:
                    assert {x.id for x in fleet.fleet.by_id[dev].site.doors} <= set(shard)


def test_a_sharded_device_reports_what_the_whole_fleet_does() -> None:
    scenario = parse_scenario(FLEET)
    whole = make_fleet(scenario).fleet.by_id["door-0004"]
    part = make_fleet(scenario, shard=(1, 3)).fleet.by_id["door-0004"]
    for a, b in zip(
        whole.traffic(T0 - 86400, T0, "hour", T0),
        part.traffic(T0 - 86400, T0, "hour", T0),
        strict=True,
    ):
        assert a.values[0].tolist() == b.values[0].tolist()
    assert whole.realtime(whole.clock.now()) == part.realtime(part.clock.now())


@pytest.mark.parametrize("text", ["1/1", "2/1", "a/b", "1", "-1/2", "0/0"])
def test_bad_shard_arguments(text: str) -> None:
    with pytest.raises(Exception, match="--shard"):
        parse_shard(text)


def test_serve_a_shard(tmp_path: Path) -> None:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    port = free_port(7)
    args = ("--port", str(port), "--shard", "1/3", "--speed", "0")
    with serving(str(scenario), *args, "--start", "2024-06-07T12:00:00Z") as proc:
        url = f"http://127.0.0.1:{port + 4}/a3dpc/api/occupancy"  # door-0004: 4 % 3 == 1
        r = first_answer(proc, url)
        assert r.status_code == 200
        assert r.json()["serial"] == "ac:cc:8e:20:00:04"
        auth = HTTPDigestAuth("viewer", "viewer")
        with pytest.raises(requests.ConnectionError):  # door-0000 belongs to shard 0
            requests.get(f"http://127.0.0.1:{port}/a3dpc/api/occupancy", auth=auth, timeout=5)


def test_serve_each_device_on_its_own_loopback_address(tmp_path: Path) -> None:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    port = free_port()
    args = ("--host", "127.0.1.1", "--ip-per-device", "--port", str(port), "--speed", "0")
    with serving(str(scenario), *args) as proc:
        # the last device binds last
        r = first_answer(proc, f"http://127.0.1.7:{port}/a3dpc/api/occupancy")
        assert r.json()["serial"] == "ac:cc:8e:20:00:06"
        auth = HTTPDigestAuth("viewer", "viewer")
        r = requests.get(f"http://127.0.1.3:{port}/a3dpc/api/occupancy", auth=auth, timeout=5)
        assert r.json()["serial"] == "ac:cc:8e:20:00:02"


@pytest.mark.parametrize("host", ["localhost", "0.0.0.0", "255.255.255.254"])
def test_ip_per_device_needs_room_for_every_device(tmp_path: Path, host: str) -> None:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            str(scenario),
            "--host",
            host,
            "--ip-per-device",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--ip-per-device" in r.stderr and "Traceback" not in r.stderr
