"""The pytest plugin, used from a sample test project (pytester), and the context managers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import freezegun  # noqa: F401 - imported once here: in-process pytester runs forget
import pytest
import requests  # noqa: F401 - modules first imported inside them (class identities)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
CI_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\np8815_scenario = ci\n"

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
    async with Simulator("ci") as sim:
        await sim.acontrol.advance("10m")
        mw = (aiohttp.DigestAuthMiddleware("viewer", "viewer"),)
        async with aiohttp.ClientSession(middlewares=mw) as s:
            async with s.get(sim.url + "/a3dpc/api/occupancy") as r:
                assert r.status == 200
        assert (await sim.acontrol.clock())["now"] == "2024-06-07T10:10:00Z"
"""


def test_plugin_in_a_sample_project(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "p8815_scenario = ci\n"
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


def readme_examples() -> dict[str, str]:
    """The README's test modules (python blocks of "Use in tests" starting ``# test_*.py``)."""
    section = (ROOT / "README.md").read_text().split("## Use in tests", 1)[1].split("\n## ")[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
    return {b.split()[1].removesuffix(".py"): b for b in blocks if b.startswith("# test_")}


def test_the_readme_examples_run(pytester: pytest.Pytester) -> None:
    examples = readme_examples()
    assert len(examples) >= 3, examples.keys()
    pytester.makeini(CI_INI)
    pytester.makepyfile(**examples)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--strict-markers")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 4 and set(outcomes) == {"passed"}, result.stdout.str()


RUNS = """
import threading

import pytest

SEEN = {}


def served(sim):
    return [d for d in sim.devices]


def test_0_nothing_starts_before_a_test_needs_it():
    assert not [t for t in threading.enumerate() if t.name == "p8815"]


def test_1_unmarked_uses_the_ini_scenario(p8815_sim):
    SEEN["ini"] = p8815_sim.url
    assert served(p8815_sim) == ["entrance"]
    assert p8815_sim.control.clock()["now"] == "2024-06-07T10:00:00Z"


@pytest.mark.p8815_scenario("legacy")
def test_2_marked_by_name(p8815_sim):
    SEEN["legacy"] = p8815_sim.url
    assert served(p8815_sim) == ["legacy"]


@pytest.mark.p8815_scenario("ci", seed=5)
def test_3_a_seed_is_a_simulator_of_its_own(p8815_sim):
    SEEN["ci-5"] = p8815_sim.url
    assert p8815_sim.sim.seed == 5


@pytest.mark.p8815_scenario("mall.yaml")
class TestMall:
    def test_4_class_marker(self, p8815_sim):
        SEEN["mall"] = p8815_sim.url
        assert served(p8815_sim) == ["parking", "street", "metro", "shop"]
        p8815_sim.control.advance("1h")

    @pytest.mark.p8815_scenario("own.yaml")
    def test_5_the_closest_marker_wins(self, p8815_sim):
        assert served(p8815_sim) == ["mine"]

    def test_6_reset_before_each_test_and_shared(self, p8815_sim):
        assert p8815_sim.url == SEEN["mall"]
        elapsed = p8815_sim.control.clock()["epoch"] - 1733137200  # mall runs at speed 1
        assert 0 <= elapsed < 600  # test 4's hour is undone


def test_7_one_simulator_per_scenario_and_seed(p8815_sim):
    assert p8815_sim.url == SEEN["ini"]
    assert len(set(SEEN.values())) == 4
    assert len([t for t in threading.enumerate() if t.name == "p8815"]) == 5
"""


def test_the_marker_chooses_per_module_class_and_test(pytester: pytest.Pytester) -> None:
    pytester.makeini(CI_INI)
    (pytester.path / "own.yaml").write_text("devices:\n  - id: mine\n")
    pytester.makepyfile(test_runs=RUNS)
    pytester.makepyfile(
        test_z_module_marker="import pytest\n"
        "pytestmark = pytest.mark.p8815_scenario('legacy')\n"
        "def test_it(p8815_sim):\n"
        "    assert list(p8815_sim.devices) == ['legacy']\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--strict-markers", "-v")
    result.assert_outcomes(passed=9)
    markers = pytester.runpytest_inprocess("--markers").stdout.str()
    assert "@pytest.mark.p8815_scenario(scenario, *, seed=None)" in markers


def test_overriding_the_scenario_fixture_is_used_in_every_module(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_a="import pytest\n"
        "@pytest.fixture(scope='session')\n"
        "def p8815_scenario():\n"
        "    return 'ci'\n"
        "def test_a(p8815_sim):\n"
        "    assert list(p8815_sim.devices) == ['entrance']\n",
        test_b="import pytest\n"
        "@pytest.fixture(scope='session')\n"
        "def p8815_scenario():\n"
        "    return 'legacy'\n"
        "def test_b(p8815_sim):\n"
        "    assert list(p8815_sim.devices) == ['legacy']\n",
        test_c="import pytest\n"
        "from simulator.schema.scenario import Scenario\n"
        "@pytest.fixture\n"
        "def p8815_scenario():\n"
        "    return Scenario.model_validate({'devices': [{'id': 'built'}]})\n"
        "def test_c(p8815_sim):\n"
        "    assert list(p8815_sim.devices) == ['built']\n",
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_marker_and_an_override_that_disagree_fail_clearly(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        "import pytest\n@pytest.fixture\ndef p8815_scenario():\n    return 'ci'\n"
    )
    pytester.makepyfile(
        test_it="import pytest\n"
        "@pytest.mark.p8815_scenario('legacy')\n"
        "def test_conflict(p8815_sim):\n"
        "    pass\n"
        "@pytest.mark.p8815_scenario('ci')\n"
        "def test_agree(p8815_sim):\n"
        "    pass\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_conflict is marked p8815_scenario('legacy') but an overriding p8815_scenario "
            "fixture chooses 'ci': use one or the other*"
        ]
    )


def test_bad_markers_and_names_fail_clearly(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_it="import pytest\n"
        "@pytest.mark.p8815_scenario()\n"
        "def test_no_scenario(p8815_sim):\n"
        "    pass\n"
        "@pytest.mark.p8815_scenario('ci', seed='x')\n"
        "def test_bad_seed(p8815_sim):\n"
        "    pass\n"
        "@pytest.mark.p8815_scenario('nosuch')\n"
        "def test_unknown(p8815_sim):\n"
        "    pass\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    for name in ("test_no_scenario", "test_bad_seed"):  # whatever the terminal's width
        assert f"test_it.py::{name}: use @pytest.mark.p8815_scenario(scenario, seed=None)" in out
    assert "p8815_sim: nosuch: invalid scenario" in out and "shipped: ci, default" in out
    assert "Traceback" not in out


def test_the_plugin_imports_nothing_of_the_simulator(tmp_path: Path) -> None:
    code = (
        "import sys, pytest\n"
        "assert pytest.main(['--co', '-q', '-p', 'simulator.plugin']) == 5\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('simulator', 'aiohttp', 'numpy', 'pydantic', 'yaml')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "['simulator', 'simulator.plugin']"


def test_the_test_double_needs_neither_pytest_nor_requests(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['pytest'] = sys.modules['requests'] = None  # not installed\n"
        "from simulator.testing import Simulator, SimulatorHandle, ThreadedSimulator\n"
        "with ThreadedSimulator('ci') as sim:\n"
        "    handle = SimulatorHandle(sim)\n"
        "    print(handle.control.advance('10m')['now'])\n"
        "    try:\n"
        "        handle.digest()\n"
        "    except ImportError as e:\n"
        "        print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2024-06-07T10:10:00Z",
        "p8815_sim.digest() makes a requests HTTPDigestAuth: pip install requests, or use "
        "p8815_sim.credentials(role) with your own HTTP client",
    ]


async def test_a_simulator_on_a_host_name_routes_every_device() -> None:
    from aiohttp import ClientSession, DigestAuthMiddleware

    from simulator.testing import Simulator

    async with Simulator("mall", host="localhost", speed=0) as sim:
        assert len(sim.devices) > 1
        for dev_id, info in sim.devices.items():
            user, password = next(iter(info.users.items()))
            auth = DigestAuthMiddleware(user, password)
            async with ClientSession(middlewares=(auth,)) as s:
                body = {"apiVersion": "1.1", "method": "getAllProperties"}
                r = await s.post(info.url + "/axis-cgi/basicdeviceinfo.cgi", json=body)
                assert r.status == 200, dev_id
                serial = sim.fleet.by_id[dev_id].cfg.serial_upper
                assert (await r.json())["data"]["propertyList"]["SerialNumber"] == serial


def test_the_readme_ci_job_script_runs(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the README's script uses curl")
    section = (ROOT / "README.md").read_text().split("### In any CI job", 1)[1]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    assert script.startswith("# ci-job.sh")
    (tmp_path / "ci-job.sh").write_text("set -eu\n" + script)
    bin_dir = str(Path(sys.executable).parent)  # p8815-sim and python3 of this environment
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    r = subprocess.run(
        ["bash", str(tmp_path / "ci-job.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    reading, advanced, journal = r.stdout.splitlines()[-3:]
    assert '"serial":"ac:cc:8e:0c:10:01"' in reading.replace(" ", "")
    assert "2024-06-07T11:00:00Z" in advanced  # ci's frozen 10:00 UTC, one hour on
    (entry,) = json.loads(journal)["entries"]  # the reading, not the control plane's calls
    assert (entry["path"], entry["status"]) == ("/a3dpc/api/occupancy", 200)
    assert entry["user"] == "viewer"
