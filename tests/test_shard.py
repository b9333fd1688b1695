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
from simulator.schema.scenario import Scenario
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


MIXED = """
seed: 3
devices:
  - {id: a, serial: ACCC8E100000, site: s, crowd: {daily_visitors: 300}}
  - {id: b, serial: ACCC8E100001}
  - {id: c, serial: ACCC8E100002, site: s, occupancy: {role: secondary}}
fleet: {count: 9, id_prefix: door-, serial_start: ACCC8E200000, template: {site: %s}}
"""


@pytest.mark.parametrize("site", ["null", "s", "t"])
def test_a_mixed_fleet_is_split_by_sites_as_the_whole_fleet_groups_them(site: str) -> None:
    scenario = parse_scenario(MIXED % site)
    whole = make_fleet(scenario).fleet
    assert len(whole.devices) == 12
    for n in (1, 2, 3, 5):
        shards = [make_fleet(scenario, shard=(i, n)).fleet for i in range(n)]
        served = sorted(d.index for f in shards for d in f.served)
        assert served == list(range(12))
        for f in shards:
            for d in f.served:  # a site goes whole to the shard of its first door
                doors = whole.by_id[d.id].site.doors
                assert doors[0].index % n == f.shard[0]
                assert [x.id for x in d.site.doors] == [x.id for x in doors]


def test_a_shard_of_a_template_fleet_builds_only_its_devices() -> None:
    scenario = parse_scenario("fleet: {count: 100000, serial_start: ACCC8E000000}")
    fleet = make_fleet(scenario, shard=(3, 50)).fleet
    assert len(fleet.by_id) == len(fleet.served) == 2000  # built: its own, no other
    assert [d.id for d in fleet.served[:2]] == ["door-00003", "door-00053"]
    assert fleet.served[-1].index == 99953
    assert len(fleet.all_configs()) == 100000
    assert "door-99999" in fleet.by_id and "door-100000" not in fleet.by_id
    assert len(fleet.by_id) == 2000  # asking whether a device exists builds none


def test_a_device_a_shard_does_not_serve_is_the_whole_fleets_when_asked() -> None:
    scenario = parse_scenario(MIXED % "null")
    whole = make_fleet(scenario).fleet
    shard = make_fleet(scenario, shard=(1, 3)).fleet
    assert "a" not in {d.id for d in shard.served}
    for name in ("a", "c", "door-0003"):
        part, full = shard.by_id[name], whole.by_id[name]
        assert (part.index, part.cfg, part.site.name) == (full.index, full.cfg, full.site.name)
        for x, y in zip(
            part.traffic(T0 - 86400, T0, "hour", T0),
            full.traffic(T0 - 86400, T0, "hour", T0),
            strict=True,
        ):
            assert x.values[0].tolist() == y.values[0].tolist()
    with pytest.raises(KeyError):
        shard.by_id["nobody"]


def test_a_template_fleets_ids_are_checked_against_the_listed_ones() -> None:
    text = "devices: [{id: door-0002}]\nfleet: {count: 3}\n"
    with pytest.raises(Exception, match=r"duplicate device id\(s\): door-0002"):
        parse_scenario(text)
    ok = parse_scenario("devices: [{id: door-0003}, {id: door-002}]\nfleet: {count: 3}\n")
    assert [d.id for d in ok.devices] == ["door-0003", "door-002", *FLEET_IDS]
    timeline = "fleet: {count: 3}\ntimeline: [{at: '2024-06-07T10:00:00Z', kind: reboot, "
    timeline += "device: %s}]"
    assert parse_scenario(timeline % "door-0002").timeline
    with pytest.raises(Exception, match="no device 'door-0003'"):
        parse_scenario(timeline % "door-0003")


FLEET_IDS = ["door-0000", "door-0001", "door-0002"]
TOKEN = {"Authorization": "Bearer p8815-sim"}


def test_a_scenario_with_a_template_writes_and_reads_back_the_same() -> None:
    scenario = parse_scenario(MIXED % "s")
    again = Scenario.model_validate_json(scenario.model_dump_json())
    assert list(again.devices) == list(scenario.devices)


def test_a_shard_lists_every_device_and_answers_for_one_it_does_not_serve(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    port = free_port(7)
    args = ("--port", str(port), "--shard", "1/3", "--speed", "0", "--no-https")
    with serving(str(scenario), *args, "--start", "2024-06-07T12:00:00Z") as proc:
        control = f"http://127.0.0.1:{port + 1}/sim/v1"
        first_answer(proc, f"http://127.0.0.1:{port + 1}/a3dpc/api/occupancy")
        listed = requests.get(f"{control}/devices", headers=TOKEN, timeout=10).json()["devices"]
        assert [d["id"] for d in listed] == [f"door-{i:04d}" for i in range(7)]
        assert [d["serial"] for d in listed] == [f"ACCC8E20000{i}" for i in range(7)]
        assert [d["url"] is not None for d in listed] == [i % 3 == 1 for i in range(7)]
        r = requests.get(f"{control}/devices/door-0002", headers=TOKEN, timeout=10)
        assert r.status_code == 200 and r.json()["serial"] == "ACCC8E200002"
