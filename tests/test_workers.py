"""``serve --workers K``: K processes serve the fleet of one, behind one control plane."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator.schema.load import parse_scenario
from simulator.workers import parse_workers, sites_in, state_file, sub_shard
from tests.conftest import make_fleet
from tests.serving import ROOT, free_port, wait_ready

FLEET = """
seed: 5
fleet: {count: 7, id_prefix: door-, serial_start: ACCC8E200000}
"""
FROZEN = ("--speed", "0", "--start", "2024-06-07T12:00:00Z")
VIEWER = HTTPDigestAuth("viewer", "viewer")


@dataclass
class Server:
    """A serve process started by a test, its base port and ready document."""

    proc: subprocess.Popen[bytes]
    port: int
    ready: dict[str, Any]
    err: Path

    def control(self, device: int) -> str:
        """The control plane's base URL on device ``device``'s address."""
        return f"http://127.0.0.1:{self.port + device}/sim/v1"

    def occupancy(self, device: int) -> requests.Response:
        """A device's occupancy, read as a viewer."""
        url = f"http://127.0.0.1:{self.port + device}/a3dpc/api/occupancy"
        return requests.get(url, auth=VIEWER, timeout=10)

    @property
    def auth(self) -> dict[str, str]:
        """The control plane's Authorization header."""
        return {"Authorization": f"Bearer {self.ready['control']['token']}"}


def start(tmp: Path, scenario: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start ``serve SCENARIO --ready-file ARGS`` (not waiting): process, ready and stderr files."""
    tmp.mkdir(exist_ok=True)
    ready, err = tmp / "ready.json", tmp / "err.txt"
    cmd = [sys.executable, "-m", "simulator", "serve", str(scenario), "--ready-file", str(ready)]
    with err.open("wb") as e:
        proc = subprocess.Popen(
            [*cmd, *args],
            stdout=subprocess.DEVNULL,
            stderr=e,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    return proc, ready, err


def stop(server: Server) -> None:
    """SIGTERM, then a clean exit (0, no traceback)."""
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=60)
    text = server.err.read_text()
    assert server.proc.returncode == 0, text
    assert "Traceback" not in text, text


def processes_naming(text: str) -> list[int]:
    """The processes whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """One process and two workers serving the same fleet, frozen at the same time."""
    tmp = tmp_path_factory.mktemp("workers")
    scenario = tmp / "fleet.yaml"
    scenario.write_text(FLEET)
    ports = free_port(7), free_port(7)
    started = [
        start(tmp / "one", scenario, "--port", str(ports[0]), *FROZEN),
        start(tmp / "two", scenario, "--port", str(ports[1]), "--workers", "2", *FROZEN),
    ]
    servers = []
    try:
        for (proc, ready, err), port in zip(started, ports, strict=True):
            servers.append(Server(proc, port, wait_ready(proc, ready, err, timeout=120), err))
        yield servers[0], servers[1]
    finally:
        for proc, _, _ in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    for s in servers:
        assert s.proc.returncode == 0, s.err.read_text()


def shape(server: Server) -> list[tuple[str, str, int]]:
    """Each device of the ready document: id, serial and port offset from the base port."""
    return [
        (d["id"], d["serial"], int(d["url"].rsplit(":", 1)[1]) - server.port)
        for d in server.ready["devices"]
    ]


def test_the_workers_serve_the_fleet_of_one_process(pair: tuple[Server, Server]) -> None:
    one, two = pair
    assert shape(two) == shape(one)
    assert [(d, p) for d, _, p in shape(one)] == [(f"door-{i:04}", i) for i in range(7)]
    assert [w["shard"] for w in two.ready["workers"]] == ["0/2", "1/2"]
    assert two.ready["control"]["token"] == one.ready["control"]["token"]
    # the control plane of either worker lists every device, with the URL serving it
    for device in (0, 1):
        r = requests.get(f"{two.control(device)}/devices", headers=two.auth, timeout=30)
        urls = [d["url"] for d in r.json()["devices"]]
        assert urls == [d["url"] for d in two.ready["devices"]]


def test_a_device_answers_as_in_one_process(pair: tuple[Server, Server]) -> None:
    one, two = pair
    for device in range(7):
        a, b = one.occupancy(device), two.occupancy(device)
        assert a.status_code == b.status_code == 200
        assert a.json() == b.json()


def test_a_clock_set_through_one_worker_reaches_every_worker(pair: tuple[Server, Server]) -> None:
    one, two = pair
    body = {"time": "2024-06-08T10:00:00Z"}
    try:
        for server in pair:  # door-0000 is served by worker 0/2, door-0001 by worker 1/2
            r = requests.post(
                f"{server.control(0)}/clock/set", json=body, headers=server.auth, timeout=60
            )
            assert r.status_code == 200, r.text
        r = requests.get(f"{two.control(1)}/clock", headers=two.auth, timeout=30)
        assert r.json()["now"] == "2024-06-08T10:00:00Z"
        a, b = one.occupancy(1), two.occupancy(1)
        assert b.json()["timestamp"] == "2024-06-08T12:00:00+02:00"
        assert a.json() == b.json()
    finally:
        for server in pair:
            requests.post(f"{server.control(0)}/reset", headers=server.auth, timeout=60)
    assert two.occupancy(1).json() == one.occupancy(1).json()


def test_a_fault_and_a_reset_reach_every_worker(pair: tuple[Server, Server]) -> None:
    _, two = pair
    fault = {"status": 503, "path": "/a3dpc/*"}
    r = requests.post(f"{two.control(1)}/faults", json=fault, headers=two.auth, timeout=60)
    assert r.status_code == 201, r.text
    try:
        assert [two.occupancy(i).status_code for i in range(4)] == [503] * 4
        r = requests.get(f"{two.control(0)}/faults", headers=two.auth, timeout=30)
        assert [f["status"] for f in r.json()["faults"]] == [503]
    finally:
        r = requests.post(f"{two.control(0)}/reset", headers=two.auth, timeout=60)
    assert r.status_code == 200, r.text
    assert [two.occupancy(i).status_code for i in range(4)] == [200] * 4


def test_the_journal_and_a_device_state_come_from_every_worker(
    pair: tuple[Server, Server],
) -> None:
    _, two = pair
    requests.delete(f"{two.control(0)}/journal", headers=two.auth, timeout=60)
    two.occupancy(1)
    two.occupancy(0)
    r = requests.get(f"{two.control(0)}/journal", headers=two.auth, timeout=30)
    entries = r.json()["entries"]  # each read: a challenge (401), then the answer (200)
    assert [(e["device"], e["status"]) for e in entries] == [
        ("door-0001", 401), ("door-0001", 200), ("door-0000", 401), ("door-0000", 200),
    ]  # fmt: skip
    r = requests.get(f"{two.control(0)}/journal?limit=1", headers=two.auth, timeout=30)
    assert [e["device"] for e in r.json()["entries"]] == ["door-0000"]
    r = requests.get(f"{two.control(0)}/devices/door-0001", headers=two.auth, timeout=30)
    assert r.json()["url"] == f"http://127.0.0.1:{two.port + 1}"


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    proc, ready, err = start(tmp_path, scenario, "--port", "0", "--workers", "2")
    server = Server(proc, 0, wait_ready(proc, ready, err, timeout=120), err)
    workers = [p for p in processes_naming(str(ready)) if p != proc.pid]
    assert len(workers) == 2
    stop(server)
    deadline = time.monotonic() + 30
    while processes_naming(str(ready)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_naming(str(ready)) == []


def test_a_worker_that_cannot_start_stops_them_all(tmp_path: Path) -> None:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    port = free_port(7)
    with socket.socket() as taken:  # door-0001's port: worker 1/2 cannot listen
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        proc, ready, err = start(tmp_path, scenario, "--port", str(port), "--workers", "2")
        assert proc.wait(timeout=120) == 1
    text = err.read_text()
    assert "worker 1/2" in text and "cannot listen" in text and "door-0001" in text, text
    assert "Traceback" not in text
    assert not ready.exists()
    assert processes_naming(str(ready)) == []


@pytest.mark.parametrize("text", ["0", "-1", "two", ""])
def test_bad_workers_arguments(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--workers"):
        parse_workers(text)


def test_workers_auto_is_one_per_core() -> None:
    assert parse_workers("auto") == len(os.sched_getaffinity(0))
    assert parse_workers("3") == 3


def test_the_workers_of_a_shard_split_it() -> None:
    scenario = parse_scenario(FLEET)
    for shard in ((0, 1), (1, 3)):
        parts = [sub_shard(shard, 2, j) for j in range(2)]
        ids = {d.id for d in make_fleet(scenario, shard=shard).fleet.served}
        served = [{d.id for d in make_fleet(scenario, shard=p).fleet.served} for p in parts]
        assert served[0] | served[1] == ids and not served[0] & served[1]
        assert sum(sites_in(scenario, p) for p in parts) == sites_in(scenario, shard)


def test_each_worker_has_its_own_state_file() -> None:
    assert state_file("/var/lib/sim/state.db", (1, 4)) == "/var/lib/sim/state.shard-1-of-4.db"
    assert state_file(":memory:", (1, 4)) == ":memory:"


def test_one_ca_verifies_the_devices_of_every_worker(pair: tuple[Server, Server]) -> None:
    _, two = pair
    ca = two.ready["ca"]
    assert ca is not None and Path(ca).is_file()
    urls = {w["control"] for w in two.ready["workers"]}
    assert len(urls) == 2  # the devices below are served by two processes
    for d in two.ready["devices"]:
        r = requests.get(
            f"{d['https_url']}/a3dpc/api/occupancy", auth=VIEWER, verify=ca, timeout=10
        )
        assert r.status_code == 200, d["id"]


def test_the_consoles_fleet_page_shows_each_device_as_its_worker_does(
    pair: tuple[Server, Server],
) -> None:
    _, two = pair
    body = {"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 123}}
    url = f"http://127.0.0.1:{two.port + 1}/axis-cgi/a3dpc.cgi"  # door-0001: the other worker
    r = requests.post(url, json=body, auth=HTTPDigestAuth("operator", "operator"), timeout=10)
    assert r.status_code == 200, r.text
    try:
        r = requests.get(f"{two.control(0)}/fleet?limit=7", headers=two.auth, timeout=30)
        rows = {d["id"]: d for d in r.json()["devices"]}
        assert rows["door-0001"]["occupancy"] == 123
        assert [rows[f"door-000{i}"]["url"] for i in range(7)] == [
            f"http://127.0.0.1:{two.port + i}" for i in range(7)
        ]
    finally:
        requests.post(f"{two.control(0)}/reset", headers=two.auth, timeout=60)
