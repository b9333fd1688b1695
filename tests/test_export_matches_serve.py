"""``p8815-sim export`` writes what a server started at ``--now`` answers, byte for byte, for
every shipped scenario: the commands its comments document, and one more of our own."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import requests
from requests.auth import HTTPDigestAuth

from simulator import cli, export
from simulator.schema.load import load_scenario
from simulator.testing import Simulator
from tests.serving import first_answer, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def documented(path: Path) -> list[list[str]]:
    """The ``p8815-sim export`` commands in a scenario's comments (continuations joined)."""
    lines = [ln.lstrip("# ").rstrip() for ln in path.read_text().splitlines() if ln.startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        cmd = line.removeprefix("Try:").strip()
        if cmd.startswith("p8815-sim export"):  # a command, not a mention in the prose
            out.append(shlex.split(cmd.split("|")[0])[2:])
    return out


def own(path: Path) -> list[list[str]]:
    """Exports around the scenario's start: minute traffic, hourly occupancy peaks."""
    sc = load_scenario(path)
    if not any(d.model == "P8815-2" for d in sc.devices):
        return []  # the legacy counter has no a3dpc exports
    at = "2024-06-07T12:00:00+02:00" if sc.start is None else sc.start.isoformat()
    day = at[:10]
    base = [str(path.relative_to(ROOT)), "--start", "yesterday", "--end", day, "--now", at]
    return [
        [*base, "--resolution", "minute", "--format", "json"],
        [*base, "--resolution", "hour", "--data", "occupancy"],
    ]


CASES = [
    pytest.param(path, argv, id=f"{path.stem}-{kind}{k}")
    for path in SCENARIOS
    for kind, commands in (("doc", documented(path)), ("own", own(path)))
    for k, argv in enumerate(commands)
]


def test_documented_commands_are_found() -> None:
    stems = {p.values[0].stem for p in CASES if "-doc" in str(p.id)}  # type: ignore[union-attr]
    assert {"dst-weekend", "mall", "replay"} <= stems


def url_of(args: argparse.Namespace) -> str:
    kind = "export" if args.data == "traffic" else "export_occupancy"
    return f"/a3dpc/api/{kind}/{args.format}"


@pytest.mark.parametrize(("path", "argv"), CASES)
async def test_export_equals_the_served_answer(
    path: Path, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    args = cli.build_parser().parse_args(["export", *argv])
    sc = load_scenario(path)
    ids = args.device or [d.id for d in sc.devices if d.model == "P8815-2"][:2]
    assert ids, "a scenario with no P8815-2 to export from"
    out = str(tmp_path / "{device}.out")
    assert cli.main(["export", *argv, "-o", out, *(f"--device={i}" for i in ids)]) == 0
    query = {
        "start": export._query_date(args.start),
        "end": export._query_date(args.end),
        "resolution": args.resolution,
    }
    async with Simulator(path, start=args.now, speed=0, devices=ids) as sim:
        for i in ids:
            auth = aiohttp.DigestAuthMiddleware("viewer", sim.users(i)["viewer"])
            async with (
                aiohttp.ClientSession(middlewares=(auth,)) as s,
                s.get(sim.devices[i].url + url_of(args), params=query) as r,
            ):
                assert r.status == 200, await r.text()
                served = await r.read()
            assert (tmp_path / f"{i}.out").read_bytes() == served, i


def test_dst_weekend_served_from_after_its_clock_jump(tmp_path: Path) -> None:
    """A clock jump due before ``--start`` is history: the clock starts where it is told."""
    argv = documented(ROOT / "scenarios" / "dst-weekend.yaml")[0]
    args = cli.build_parser().parse_args(["export", *argv])
    out = tmp_path / "export.csv"
    subprocess.run(
        [sys.executable, "-m", "simulator", "export", *argv, "-o", str(out)],
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    exported = out.read_bytes()
    assert exported.count(b"\n") == 1 + 25  # a header and the 25 hours of the autumn Sunday
    port = free_port()
    start = "2024-10-28T08:00:00Z"  # the documented --now, in UTC
    assert args.now == cli.parse_start(start)
    scenario = str(ROOT / "scenarios" / "dst-weekend.yaml")
    with serving(scenario, "--port", str(port), "--start", start) as proc:
        base = f"http://127.0.0.1:{port}"
        first_answer(proc, base + "/a3dpc/api/occupancy")
        clock = requests.get(base + "/sim/v1/clock", timeout=10, headers=_bearer()).json()
        assert clock["now"] == start
        query = {"start": "20241027", "end": "20241028", "resolution": "hour"}
        r = requests.get(
            base + "/a3dpc/api/export/csv",
            params=query,
            auth=HTTPDigestAuth("viewer", "viewer"),
            timeout=30,
        )
        assert r.status_code == 200
        assert r.content == exported


def _bearer() -> dict[str, str]:
    return {"Authorization": "Bearer p8815-sim"}
