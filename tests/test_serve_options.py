"""``serve`` options as integrators use them: free ports, ready file, names, tokens, health, env."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator.cli import StartError, control_token, loop_factory
from simulator.schema.load import parse_scenario
from simulator.schema.scenario import Scenario
from tests.serving import ROOT, free_port, serve_ready

MALL = str(ROOT / "scenarios" / "mall.yaml")
FROZEN = ("--speed", "0", "--start", "2024-06-07T12:00:00Z")
VIEWER = HTTPDigestAuth("viewer", "viewer")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **(env or {})},
    )


def serials(served_urls: list[str]) -> list[str]:
    return [
        requests.get(u + "/a3dpc/api/occupancy", auth=VIEWER, timeout=10).json()["serial"]
        for u in served_urls
    ]


def test_port_0_gives_each_device_a_free_port_and_the_ready_file_names_them(
    tmp_path: Path,
) -> None:
    with serve_ready(tmp_path, MALL, *FROZEN) as s:
        doc = s.ready
        assert doc["scenario"] == "mall"
        assert doc["control"]["token"] == "p8815-sim"
        assert [d["id"] for d in doc["devices"]] == ["parking", "street", "metro", "shop"]
        urls = [d["url"] for d in doc["devices"]]
        assert len(set(urls)) == 4 and all(u.startswith("http://127.0.0.1:") for u in urls)
        assert serials(urls) == [f"ac:cc:8e:10:00:0{i}" for i in range(1, 5)]
        head = {"Authorization": f"Bearer {s.token}"}
        listed = requests.get(doc["control"]["url"] + "devices", headers=head, timeout=10).json()
        assert [d["url"] for d in listed["devices"]] == urls
        line = s.out.read_text()
        assert all(u in line for u in urls)  # the readiness line names the real addresses


@pytest.mark.parametrize("host", ["localhost", "0:0:0:0:0:0:0:1"])
def test_a_host_name_or_another_spelling_routes_every_device(tmp_path: Path, host: str) -> None:
    with serve_ready(tmp_path, MALL, "--host", host, *FROZEN) as s:
        urls = [d["url"] for d in s.ready["devices"]]
        if ":" in host:
            assert all(u.startswith("http://[::1]:") for u in urls)
        assert serials(urls) == [f"ac:cc:8e:10:00:0{i}" for i in range(1, 5)]


def test_a_port_taken_is_named_with_its_device(tmp_path: Path) -> None:
    base = free_port(2)  # below the ephemeral range: nothing else takes base, the first door's
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("serve", MALL, "--port", str(base))
    assert r.returncode == 1, r.stderr
    said = f"p8815-sim: cannot listen on 127.0.0.1:{port} (device street): address already in use"
    assert said in r.stderr
    assert "Traceback" not in r.stderr


def test_health_needs_no_token_and_everything_else_does(tmp_path: Path) -> None:
    with serve_ready(tmp_path, MALL, *FROZEN) as s:
        h = requests.get(s.url(2) + "/sim/v1/health", timeout=10)
        assert h.status_code == 200
        assert h.json() == {"status": "ok", "devices": 4, "time": "2024-06-07T12:00:00Z"}
        assert requests.get(s.url() + "/sim/v1/clock", timeout=10).status_code == 401
        spec = requests.get(s.url() + "/sim/v1/openapi.json", timeout=10).json()
        assert spec["paths"]["/sim/v1/health"]["get"]["security"] == []


def _args(host: str, token: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(host=host, control_token=token)


def test_the_default_token_is_kept_on_loopback_only() -> None:
    default = Scenario()
    assert control_token(_args("127.0.0.1"), default) == ("p8815-sim", False)
    assert control_token(_args("localhost"), default) == ("p8815-sim", False)
    for host in ("0.0.0.0", "::", "192.0.2.7"):
        token, generated = control_token(_args(host), default)
        assert generated and token and token != "p8815-sim" and len(token) >= 24
        assert control_token(_args(host, "mine"), default) == ("mine", False)
    chosen = parse_scenario("control: {token: s3cret}\n")
    assert control_token(_args("0.0.0.0"), chosen) == ("s3cret", False)


def test_a_generated_token_is_printed_written_and_the_only_one_accepted(tmp_path: Path) -> None:
    code = "import sys, simulator.cli as c; c.is_loopback = lambda h: False; sys.exit(c.main())"
    with serve_ready(tmp_path, *FROZEN, command=("-c", code, "serve")) as s:
        token = s.token
        assert token != "p8815-sim"
        assert f"control plane token (generated for this run): {token}" in s.out.read_text()
        clock = s.url() + "/sim/v1/clock"
        bad = {"Authorization": "Bearer p8815-sim"}
        assert requests.get(clock, headers=bad, timeout=10).status_code == 401
        good = {"Authorization": f"Bearer {token}"}
        assert requests.get(clock, headers=good, timeout=10).status_code == 200


def test_options_from_the_environment_and_the_command_line_wins(tmp_path: Path) -> None:
    ready = tmp_path / "env-ready.json"
    env = {
        "P8815_SIM_SCENARIO": MALL,
        "P8815_SIM_READY_FILE": str(ready),
        "P8815_SIM_SPEED": "0",
        "P8815_SIM_START": "2024-06-07T12:00:00Z",
        "P8815_SIM_CONTROL_TOKEN": "from-env",
        "P8815_SIM_SHARD": "1/2",
        "P8815_SIM_LOG_FORMAT": "json",
    }
    with serve_ready(tmp_path, "--start", "2024-06-08T08:00:00Z", env=env) as s:
        assert s.ready["scenario"] == "mall" and s.token == "from-env"
        assert ready.exists() is False  # --ready-file on the command line wins over the env
        h = requests.get(s.url() + "/sim/v1/health", timeout=10).json()
        assert h["time"] == "2024-06-08T08:00:00Z" and h["devices"] == len(s.ready["devices"])
    for line in s.err.read_text().splitlines():
        json.loads(line)  # --log-format from the environment: JSON lines


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("P8815_SIM_PORT", "eighty"),
        ("P8815_SIM_SPEED", "-1"),
        ("P8815_SIM_IP_PER_DEVICE", "maybe"),
        ("P8815_SIM_LOG_FORMAT", "xml"),
        ("P8815_SIM_READ_TIMEOUT", "header=0"),
        ("P8815_SIM_LOOP", "trio"),
    ],
)
def test_a_bad_environment_value_names_the_variable(var: str, value: str) -> None:
    r = run("serve", env={var: value})
    assert r.returncode == 2 and var in r.stderr and "Traceback" not in r.stderr


def test_a_fleet_says_one_line_at_info_and_one_per_device_at_debug(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("fleet: {count: 40}\nspeed: 0\n")
    with serve_ready(tmp_path, str(fleet)) as s:
        assert len(s.ready["devices"]) == 40
    assert len(s.err.read_text().splitlines()) == 1
    assert len(s.out.read_text().splitlines()) == 1
    with serve_ready(tmp_path, str(fleet), "--log-level", "debug") as s:
        pass
    assert sum(" on http://127.0.0.1:" in line for line in s.err.read_text().splitlines()) == 40


def test_the_access_log_is_off_unless_asked(tmp_path: Path) -> None:
    for flag, lines in ((), 0), (("--access-log",), 1):
        with serve_ready(tmp_path, *flag) as s:
            requests.get(s.url() + "/a3dpc/api/occupancy", auth=VIEWER, timeout=10)
        logged = [x for x in s.err.read_text().splitlines() if "/a3dpc/api/occupancy" in x]
        assert len(logged) == 2 * lines  # the challenge and the answer


def test_version_and_plain_help() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == "p8815-sim 0.1.0"
    h = run("serve", "--help")
    assert h.returncode == 0 and "P8815_SIM_" in h.stdout
    assert "store" not in h.stdout and "issue" not in h.stdout


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_serve_answers_on_either_event_loop(tmp_path: Path, loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    with serve_ready(tmp_path, "--loop", loop, "--log-level", "debug", *FROZEN) as s:
        for _ in range(3):  # fresh Digest headers on one nonce: nc 1, 2, 3
            r = requests.get(s.url() + "/a3dpc/api/occupancy", auth=VIEWER, timeout=10)
            assert r.status_code == 200 and "occupancy" in r.json()
    assert f"event loop: {loop}" in s.err.read_text()


def test_a_bad_loop_is_a_clear_error() -> None:
    r = run("serve", "--loop", "trio")
    assert r.returncode == 2 and "--loop" in r.stderr and "uvloop" in r.stderr
    assert "Traceback" not in r.stderr


def test_loop_uvloop_without_uvloop_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    with pytest.raises(StartError, match=r"pip install 'p8815-sim\[fast\]'"):
        loop_factory("uvloop")
    assert loop_factory("auto") is None  # auto falls back to asyncio's loop
