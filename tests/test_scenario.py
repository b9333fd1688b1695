"""Scenario files: the shipped default, and errors that say where and how to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.schema.load import ScenarioError, load_scenario, parse_scenario
from simulator.schema.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent


def test_default_file_is_the_built_in_default() -> None:
    assert load_scenario(ROOT / "scenarios" / "default.yaml") == Scenario()


def test_every_shipped_scenario_loads() -> None:
    files = sorted((ROOT / "scenarios").glob("*.y*ml")) + sorted(
        (ROOT / "scenarios").glob("*.json")
    )
    assert files
    for f in files:
        assert load_scenario(f).devices


def test_json_scenarios(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{"seed": 3, "devices": [{"id": "a"}, {"id": "b", "serial": "ACCC8E000001"}]}')
    s = load_scenario(p)
    assert s.seed == 3 and [d.id for d in s.devices] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seed: -1\n", "line 1: seed: Input should be greater than or equal to 0"),
        (
            "devices:\n  - id: a\n    timezone: Mars/Base\n",
            "line 3: devices.0.timezone: unknown time zone",
        ),
        (
            "devices:\n  - id: a\n    colour: red\n",
            "line 3: devices.0.colour: Extra inputs are not permitted (fix:",
        ),
        ("devices:\n  - serial: XYZ\n", "devices.0.serial"),
        ("devices:\n  - id: a\n  - id: a\n", "duplicate device id(s): a"),
        (
            "devices:\n  - crowd:\n      opening_hours: {mon: 9-5}\n",
            "mon: '9-5' is not HH:MM-HH:MM",
        ),
        (
            "devices:\n  - crowd:\n      opening_hours: {mon: '18:00-09:00'}\n",
            "closes before it opens",
        ),
        ("devices:\n  - users: [{name: a, password: b, role: god}]\n", "devices.0.users.0.role"),
        (
            "devices:\n  - users: [{name: a, password: b}, {name: a, password: c}]\n",
            "duplicate user name(s): a",
        ),
        ("start: 2024-01-01T10:00:00\n", "start needs a UTC offset"),
        ("devices: [\n", "not valid YAML/JSON"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("devices:\n  - auth: {algorithm: SHA-1}\n", "devices.0.auth.algorithm"),
    ],
)
def test_problems_are_located(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.yaml")
    assert expected in str(e.value), str(e.value)
    assert str(e.value).startswith("s.yaml: invalid scenario")


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario("seed: -1\nspeed: -2\n", "s.yaml")
    assert len(e.value.problems) == 2


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_scenario(tmp_path / "absent.yaml")


def test_push_ca_file_is_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("not checked here")
    p = tmp_path / "s.yaml"
    p.write_text("devices:\n  - push: {url: 'https://127.0.0.1:9/x', ca_file: certs/ca.pem}\n")
    push = load_scenario(p).devices[0].push
    assert push is not None and push.ca_file == str((tmp_path / "certs" / "ca.pem").resolve())
    p.write_text("devices:\n  - push: {url: 'https://127.0.0.1:9/x', ca_file: nope.pem}\n")
    with pytest.raises(ScenarioError, match=r"devices\.0\.push\.ca_file: cannot read"):
        load_scenario(p)
