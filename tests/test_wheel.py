"""The built wheel, installed into a fresh virtual environment outside the checkout, serves a
user's test project: shipped scenarios by name, the fixture, the marker, a frozen clock.

The dependencies come from the package index through the environment's ordinary pip (they
are not copied from the development environment), so a dependency missing from
pyproject.toml fails here. Slow (a venv and an install): skip with ``-m "not wheel"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.wheel
CHECKOUT_ENV = ("PYTHON", "PYTEST", "VIRTUAL_ENV")  # variables that would lead back to it

USER_TESTS = '''
import sys
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

import simulator


def get(sim, path, device=None):
    """A GET with Digest auth through the standard library (no requests installed)."""
    url = (sim.devices[device].url if device else sim.url) + path
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, url, *sim.credentials("viewer", device))
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))
    with opener.open(url, timeout=10) as r:
        return r.read().decode()


def test_the_installed_package_is_used():
    assert Path(simulator.__file__).is_relative_to(Path(sys.prefix))


def test_the_ini_scenario(p8815_sim):
    assert list(p8815_sim.devices) == ["entrance"]
    assert p8815_sim.control.advance("10m")["now"] == "2024-06-07T10:10:00Z"


def test_reset_between_tests(p8815_sim):
    assert p8815_sim.control.clock()["now"] == "2024-06-07T10:00:00Z"


@pytest.mark.p8815_scenario("replay")
def test_a_shipped_scenario_with_its_recording(p8815_sim):
    csv = get(p8815_sim, "/a3dpc/api/export/csv?start=20240603&end=20240604&resolution=hour")
    assert len(csv.splitlines()) == 25


@pytest.mark.p8815_scenario("mall", seed=3)
class TestMall:
    def test_doors(self, p8815_sim):
        assert list(p8815_sim.devices) == ["parking", "street", "metro", "shop"]
        assert '"occupancy"' in get(p8815_sim, "/a3dpc/api/occupancy", "street")


def test_frozen_clock(p8815_sim):
    with freeze_time("2024-06-07 10:00:00", real_asyncio=True) as frozen:
        day = (date.today() - timedelta(days=1)).strftime("%Y%m%d")
        body = get(p8815_sim, f"/a3dpc/api/export/csv?start={day}&end=today&resolution=day")
        assert body.splitlines()[1].startswith("2024-06-06 00:00:00,")
        frozen.tick(timedelta(days=1))
        p8815_sim.control.advance("1d")
        assert p8815_sim.control.clock()["now"] == "2024-06-08T10:00:00Z"


def test_digest_without_requests_says_what_to_do(p8815_sim):
    with pytest.raises(ImportError, match="pip install requests"):
        p8815_sim.digest()
'''

# Run by the fresh venv's python: the test double without pytest, then what pytest imports.
NO_PYTEST = """
import importlib.util, sys
from simulator.testing import Simulator, ThreadedSimulator
assert importlib.util.find_spec("pytest") is None and importlib.util.find_spec("requests") is None
with ThreadedSimulator("ci") as sim:
    from simulator.client import Control
    print(Control(sim.url, sim.control_token).clock()["now"])
"""
PLUGIN_COST = """
import sys, pytest
assert pytest.main(["--co", "-q", "-p", "no:cacheprovider"]) == 5
print(sorted(m for m in sys.modules if m.split(".")[0] in ("simulator", "aiohttp", "numpy")))
"""


def sh(*args: str | Path, cwd: Path) -> str:
    """Run a command outside the checkout's environment; its output, or a failure with it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CHECKOUT_ENV)}
    r = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_the_wheel_serves_a_user_project(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so building leaves nothing in the checkout
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "*cache*"),
    )
    pip = (sys.executable, "-m", "pip")
    sh(*pip, "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", src, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("p8815_sim-*.whl")
    shutil.rmtree(src)
    # A bare venv, filled by this environment's pip (--python): no ensurepip, no bytecode.
    venv = tmp_path / "venv"
    py, cli = venv / "bin" / "python", venv / "bin" / "p8815-sim"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    install = (*pip, "--python", py, "install", "-q", "--no-compile")
    sh(*install, wheel, cwd=tmp_path)

    assert sh(py, "-c", NO_PYTEST, cwd=tmp_path).split() == ["2024-06-07T10:00:00Z"]
    assert "replay: valid (1 device(s))" in sh(cli, "validate", "replay", cwd=tmp_path)
    listing = sh(cli, "scenarios", cwd=tmp_path)
    assert {line.split()[0] for line in listing.splitlines()} >= {"ci", "mall", "replay"}

    sh(*install, "pytest", "freezegun", cwd=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    imported = sh(py, "-c", PLUGIN_COST, cwd=empty).splitlines()[-1]
    assert imported == "['simulator', 'simulator.plugin']"

    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\np8815_scenario = ci\n")
    (project / "test_user.py").write_text(USER_TESTS)
    out = sh(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers", cwd=project)
    assert "7 passed" in out, out
