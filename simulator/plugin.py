"""The pytest plugin: the ``p8815_sim`` fixture and the ``p8815_scenario`` marker.

Registered through the ``pytest11`` entry point, so installing the package is enough::

    @pytest.mark.p8815_scenario("mall", seed=7)   # or pytestmark = ..., or on a class
    def test_reads_occupancy(p8815_sim):
        r = requests.get(p8815_sim.url + "/a3dpc/api/occupancy", auth=p8815_sim.digest())
        p8815_sim.control.advance("15m")

Each distinct (scenario, seed) gets one simulator per test session, started in a background
thread on the first test that needs it (each device on a free 127.0.0.1 port) and reset to
its scenario state (and clock) before every test. The scenario of a test: its closest
``p8815_scenario`` marker, else ``--p8815-scenario``, else the ``p8815_scenario`` ini option,
else the built-in store; or override the ``p8815_scenario`` fixture. This module imports
the simulator only when a test asks for it, so having the package installed costs a pytest
run nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from simulator.testing import ScenarioLike, Simulator, SimulatorHandle, ThreadedSimulator

MARKER = "p8815_scenario"
_HELP = "the scenario of the p8815_sim fixture: a shipped scenario's name (ci, mall, ...) or a file"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's ini option and command-line flag: the scenario the fixture serves."""
    parser.addini("p8815_scenario", _HELP + " (relative to the ini file)", default="")
    parser.addoption("--p8815-scenario", default=None, help=_HELP)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``p8815_scenario`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(scenario, *, seed=None): the scenario (a shipped name, a file relative to "
        "the test module, or a Scenario) and seed the p8815_sim fixture serves to what it marks",
    )


def _locate(spec: ScenarioLike, *bases: Path) -> ScenarioLike:
    """A relative file found under one of ``bases``; else ``spec`` as given (a name or path)."""
    if isinstance(spec, str | Path) and str(spec):
        for base in bases:
            if (base / spec).exists():
                return base / spec
    return spec


def _configured(config: pytest.Config) -> ScenarioLike:
    """The session's scenario: --p8815-scenario, else the ini option, else None (built-in)."""
    opt = config.getoption("--p8815-scenario")
    if opt:
        return _locate(str(opt), config.invocation_params.dir, config.rootpath)
    ini = str(config.getini("p8815_scenario"))
    if ini:
        ini_dir = config.inipath.parent if config.inipath is not None else config.rootpath
        return _locate(ini, ini_dir, config.rootpath)
    return None


def _marked(marker: pytest.Mark, request: pytest.FixtureRequest) -> tuple[ScenarioLike, Any]:
    """The (scenario, seed) a ``p8815_scenario`` marker chooses, checked."""
    extra = set(marker.kwargs) - {"seed", "scenario"}
    args = [*marker.args, *([marker.kwargs["scenario"]] if "scenario" in marker.kwargs else [])]
    seed = marker.kwargs.get("seed")
    if len(args) != 1 or extra or not (seed is None or type(seed) is int):
        pytest.fail(
            f"{request.node.nodeid}: use @pytest.mark.{MARKER}(scenario, seed=None) with one "
            f"scenario (a shipped name, a file or a Scenario) and an integer seed; got {marker}",
            pytrace=False,
        )
    return _locate(args[0], request.path.parent, request.config.rootpath), seed


def _key(scenario: ScenarioLike) -> str:
    """What tells two scenarios apart: the file they load from, or their content."""
    from simulator.schema.load import scenario_path
    from simulator.schema.scenario import Scenario

    if scenario is None:
        return "<built-in>"
    if isinstance(scenario, Scenario):
        return scenario.model_dump_json()
    return str(scenario_path(scenario).resolve())


class _Pool:
    """The session's simulators, one per (scenario, seed), each started on first use."""

    def __init__(self) -> None:
        self._running: dict[tuple[str, int | None], tuple[ThreadedSimulator, Simulator]] = {}

    def get(self, scenario: ScenarioLike, seed: int | None) -> Simulator:
        """The running simulator of ``scenario`` and ``seed``, started if it is not yet."""
        from simulator.testing import ThreadedSimulator

        key = (_key(scenario), seed)
        if key not in self._running:
            threaded = ThreadedSimulator(scenario, seed=seed)
            self._running[key] = (threaded, threaded.__enter__())
        return self._running[key][1]

    def close(self) -> None:
        """Stop every simulator."""
        for threaded, _ in self._running.values():
            threaded.__exit__(None, None, None)
        self._running.clear()


@pytest.fixture(scope="session")
def _p8815_pool() -> Iterator[_Pool]:
    """The session's simulators, stopped at its end."""
    pool = _Pool()
    yield pool
    pool.close()


@pytest.fixture
def p8815_scenario(request: pytest.FixtureRequest) -> ScenarioLike:
    """The scenario of ``p8815_sim``: the closest marker, --p8815-scenario, the ini option."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        return _marked(marker, request)[0]
    return _configured(request.config)


@pytest.fixture
def p8815_sim(
    request: pytest.FixtureRequest, p8815_scenario: ScenarioLike, _p8815_pool: _Pool
) -> SimulatorHandle:
    """The simulator of this test's scenario, reset to its scenario state (and clock)."""
    from simulator.schema.load import ScenarioError
    from simulator.testing import SimulatorHandle

    seed = None
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        scenario, seed = _marked(marker, request)
        if scenario != p8815_scenario:
            pytest.fail(
                f"{request.node.nodeid} is marked {MARKER}({scenario!r}) but an overriding "
                f"p8815_scenario fixture chooses {p8815_scenario!r}: use one or the other",
                pytrace=False,
            )
    try:
        sim = _p8815_pool.get(p8815_scenario, seed)
    except ScenarioError as e:
        pytest.fail(f"p8815_sim: {e}", pytrace=False)
    handle = SimulatorHandle(sim)
    handle.control.reset()
    return handle
