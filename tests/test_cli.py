"""The command line as users' scripts and CI jobs run it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args], capture_output=True, text=True, timeout=60
    )


def test_serve_answers_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            "--port",
            str(port),
            "--start",
            "2024-06-07T15:30:00+02:00",
            "--speed",
            "0",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/a3dpc/api/occupancy"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(url, auth=HTTPDigestAuth("viewer", "viewer"), timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 200
        assert r.json()["timestamp"] == "2024-06-07T15:30:00+02:00"
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_validate_reports_located_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  - id: a\n    timezone: Nowhere/City\n")
    r = run("validate", str(bad))
    assert r.returncode == 2
    assert f"{bad}: invalid scenario" in r.stderr and "line 3: devices.0.timezone" in r.stderr
    good = run("validate", str(ROOT / "scenarios" / "default.yaml"))
    assert good.returncode == 0 and "valid" in good.stdout


def test_serve_refuses_an_invalid_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: many\n")
    r = run("serve", str(bad), "--port", str(free_port()))
    assert r.returncode == 2 and "seed" in r.stderr and "Traceback" not in r.stderr


def test_bad_arguments_are_named() -> None:
    r = run("serve", "--start", "yesterday-ish")
    assert r.returncode == 2 and "--start" in r.stderr
    r = run("serve", "--speed", "-3")
    assert r.returncode == 2 and "--speed" in r.stderr
