"""The command line as users' scripts and CI jobs run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.serving import first_answer, free_port, serving

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args], capture_output=True, text=True, timeout=60
    )


def test_serve_answers_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    args = ("--port", str(port), "--start", "2024-06-07T15:30:00+02:00", "--speed", "0")
    with serving(*args, "--seed", "1") as proc:
        r = first_answer(proc, f"http://127.0.0.1:{port}/a3dpc/api/occupancy")
        assert r.status_code == 200
        assert r.json()["timestamp"] == "2024-06-07T15:30:00+02:00"


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
