"""``p8815-sim control``: one control call made on every shard's simulator."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from simulator.cli import parse_args
from simulator.control_cli import call_of, targets_of
from tests.serving import ROOT, free_port, wait_ready
from tests.test_workers import FLEET, FROZEN, start

HEADERS = {"Authorization": "Bearer p8815-sim"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two shard processes of one fleet: the control plane URL of each."""
    tmp = tmp_path_factory.mktemp("shards")
    scenario = tmp / "fleet.yaml"
    scenario.write_text(FLEET)
    port = free_port(7)
    procs = [
        start(tmp / str(i), scenario, "--port", str(port), "--shard", f"{i}/2", *FROZEN)
        for i in range(2)
    ]
    try:
        docs = [wait_ready(p, ready, err, timeout=120) for p, ready, err in procs]
        yield [str(d["control"]["url"]) for d in docs]
    finally:
        for p, _, _ in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)


def control(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m simulator control ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "simulator", "control", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_one_command_sets_the_clock_of_every_shard(shards: list[str], tmp_path: Path) -> None:
    listed = tmp_path / "targets.txt"
    listed.write_text(f"# the second shard\n{shards[1].removesuffix('/sim/v1/')}\n")
    when = "2025-01-02T03:04:05Z"
    r = control("--target", shards[0], "--targets-file", str(listed), "clock", "set", when)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
    for url in shards:
        clock = requests.get(url + "clock", headers=HEADERS, timeout=30).json()
        assert clock["now"] == "2025-01-02T03:04:05Z"
    r = control("--target", shards[0], "--target", shards[1], "reset")
    assert r.returncode == 0, r.stderr
    for url in shards:
        clock = requests.get(url + "clock", headers=HEADERS, timeout=30).json()
        assert clock["now"] == "2024-06-07T12:00:00Z"


def test_a_target_that_fails_fails_the_command(shards: list[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    r = control("--target", shards[0], "--target", dead, "clock", "freeze")
    assert r.returncode == 1
    assert f"{dead}/sim/v1 - no answer" in r.stdout
    r = control("--target", shards[0], "--token", "wrong", "clock")
    assert r.returncode == 1 and " 401 " in r.stdout


def test_no_target_is_a_usage_error() -> None:
    r = control("clock")
    assert r.returncode == 2 and "--target" in r.stderr


@pytest.mark.parametrize(
    ("argv", "call"),
    [
        (["clock"], ("GET", "/clock", None)),
        (["clock", "advance", "1h"], ("POST", "/clock/advance", {"by": "1h"})),
        (["clock", "speed", "0"], ("POST", "/clock/speed", {"speed": 0.0})),
        (["reset", "--keep-clock"], ("POST", "/reset", {"clock": False})),
        (["faults-clear"], ("DELETE", "/faults", None)),
        (["request", "post", "/sim/v1/events", '{"a": 1}'], ("POST", "/events", {"a": 1})),
    ],
)
def test_actions_make_their_calls(argv: list[str], call: tuple[str, str, object]) -> None:
    args = parse_args(["control", "--target", "http://h:1/", *argv], {})
    assert call_of(args) == call
    assert targets_of(args) == ["http://h:1/sim/v1"]
