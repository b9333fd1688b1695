"""The pytest plugin, used from a sample test project (pytester), and the context managers."""

from __future__ import annotations

from pathlib import Path

import freezegun  # noqa: F401 - imported once here: in-process pytester runs forget
import pytest
import requests  # noqa: F401 - modules first imported inside them (class identities)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = """
import aiohttp
import pytest
import requests
from freezegun import freeze_time

from simulator.testing import Simulator


def occupancy(sim):
    r = requests.get(sim.url + "/a3dpc/api/occupancy", auth=sim.digest(), timeout=10)
    assert r.status_code == 200
    return r.json()["occupancy"]


def test_adjust_through_the_control_plane(p8815_sim):
    p8815_sim.control.inject("adjust_occupancy", occupancy=3)
    assert occupancy(p8815_sim) == 3
    assert p8815_sim.control.journal("entrance")["entries"][-1]["auth"] == "ok"


def test_reset_between_tests(p8815_sim):
    assert occupancy(p8815_sim) != 3
    assert p8815_sim.control.clock()["now"] == "2024-06-07T10:00:00Z"
    assert len(p8815_sim.control.journal("entrance")["entries"]) == 2  # this test's only


def test_advance_runs_the_timeline(p8815_sim):
    body = p8815_sim.control.advance("3h")
    assert [e["kind"] for e in body["applied"]] == ["burst", "fps", "reboot"]
    assert p8815_sim.control.state("entrance")["uptime_s"] == 3600


def test_credentials_and_urls(p8815_sim):
    assert p8815_sim.credentials("operator") == ("operator", "operator")
    assert p8815_sim.device("entrance").url.startswith("http://127.0.0.1:")


def test_under_freezegun(p8815_sim):
    p8815_sim.control.speed(1)
    with freeze_time("2031-01-01 00:00:00", real_asyncio=True) as frozen:
        a = p8815_sim.control.clock()["epoch"]
        frozen.tick(30)
        b = p8815_sim.control.clock()["epoch"]
        assert b - a == 30
        assert occupancy(p8815_sim) >= 0


async def test_async_context_manager():
    async with Simulator("ci.yaml") as sim:
        await sim.acontrol.advance("10m")
        mw = (aiohttp.DigestAuthMiddleware("viewer", "viewer"),)
        async with aiohttp.ClientSession(middlewares=mw) as s:
            async with s.get(sim.url + "/a3dpc/api/occupancy") as r:
                assert r.status == 200
        assert (await sim.acontrol.clock())["now"] == "2024-06-07T10:10:00Z"
"""


def test_plugin_in_a_sample_project(pytester: pytest.Pytester) -> None:
    (pytester.path / "ci.yaml").write_text((ROOT / "scenarios" / "ci.yaml").read_text())
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "p8815_scenario = ci.yaml\n"
    )
    pytester.makepyfile(test_sample=SAMPLE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6)


def test_command_line_option_picks_the_scenario(pytester: pytest.Pytester) -> None:
    (pytester.path / "other.yaml").write_text("start: 2024-01-01T00:00:00Z\nspeed: 0\n")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_it="def test_it(p8815_sim):\n"
        "    assert p8815_sim.control.clock()['now'] == '2024-01-01T00:00:00Z'\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--p8815-scenario=other.yaml")
    result.assert_outcomes(passed=1)


def test_the_readme_example_runs(pytester: pytest.Pytester) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use in tests", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "ci.yaml").write_text(
        (ROOT / "scenarios" / "ci.yaml").read_text()
    )
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "p8815_scenario = scenarios/ci.yaml\n"
    )
    pytester.makepyfile(test_my_integration=example)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
