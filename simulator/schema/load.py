"""Loading scenario files (YAML or JSON, or a shipped scenario by name) with located errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simulator.schema.scenario import (
    DeviceConfig,
    FleetDevices,
    ReplayConfig,
    Scenario,
    fleet_devices,
)
from simulator.schema.timeline import EVENT_KINDS
from simulator.tls import CertificateAuthority, TLSError, check_pair


class ScenarioError(Exception):
    """A scenario file that cannot be used, with every problem located."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid scenario\n" + "\n".join(f"  {p}" for p in problems))


_HINTS = {
    "extra_forbidden": "remove it or check its spelling against docs/SCENARIOS.md",
    "missing": "add it",
    "literal_error": "use one of the listed values",
    "union_tag_invalid": "use one of the listed kinds (docs/SCENARIOS.md, Timeline)",
}


_LOC_RE = re.compile(r"^((?:timeline|faults|devices)(?:\.\d+)+): ")
_TAGS = frozenset(EVENT_KINDS)


def _yaml_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each path in a YAML document to its 1-based line number."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                lines[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, i))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario text (YAML, of which JSON is a subset)."""
    try:
        data: Any = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScenarioError(source, [f"{where}not valid YAML/JSON: {e}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(source, ["the document must be a mapping (key: value pairs)"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        lines = _yaml_lines(text)
        problems = []
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            msg = err["msg"].removeprefix("Value error, ")
            named = _LOC_RE.match(msg)  # a model check naming its place: "timeline.3: ..."
            if not loc and named:
                loc = tuple(int(x) if x.isdigit() else x for x in named[1].split("."))
                msg = msg[named.end() :]
            loc = tuple(p for i, p in enumerate(loc) if not (i == 2 and p in _TAGS))
            path = ".".join(str(p) for p in loc) or "(top level)"
            line = None
            for n in range(len(loc), -1, -1):
                line = lines.get(loc[:n])
                if line is not None:
                    break
            hint = _HINTS.get(err["type"])
            where = f"line {line}: " if line else ""
            problems.append(f"{where}{path}: {msg}" + (f" (fix: {hint})" if hint else ""))
        raise ScenarioError(source, problems) from None


SHIPPED_DIR = Path(__file__).resolve().parent.parent / "scenarios"


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios shipped with the package, by name (the file name without ``.yaml``)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.yaml"))}


def scenario_path(spec: str | Path) -> Path:
    """Where a scenario is: an existing path, else the shipped scenario of a bare name."""
    p = Path(spec)
    if p.exists():
        return p
    name = str(spec).removesuffix(".yaml")
    shipped = shipped_scenarios()
    if "/" not in name and name in shipped:
        return shipped[name]
    raise ScenarioError(
        str(spec),
        [
            "cannot read the file: no such file, and no shipped scenario has that name (shipped: "
            + ", ".join(shipped)
            + "; `p8815-sim scenarios` describes them)"
        ],
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file (YAML or JSON) or a shipped scenario by name (``mall``).

    Raises ScenarioError with located problems.
    """
    p = scenario_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(str(p), [f"cannot read the file: {e.strerror}"]) from None
    if p.suffix.lower() == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            raise ScenarioError(str(p), [f"line {e.lineno}: not valid JSON: {e.msg}"]) from None
    return resolve_files(parse_scenario(text, str(p)), p.parent, str(p))


def resolve_files(scenario: Scenario, base: Path, source: str) -> Scenario:
    """Make replay, CA and TLS files relative to ``base`` absolute, and check each can be used."""
    problems: list[str] = []
    checked: set[tuple[str, str]] = set()  # each certificate and key checked once
    listed = fleet_devices(scenario.devices).listed
    devices = [
        _resolve_device(d, f"devices.{i}", base, checked, problems) for i, d in enumerate(listed)
    ]
    update: dict[str, Any] = {}
    fleet = scenario.fleet
    if fleet is not None:  # its devices share the template's files: resolved once
        template = _resolve_device(fleet.template, "fleet.template", base, checked, problems)
        if template != fleet.template:
            fleet = update["fleet"] = fleet.model_copy(update={"template": template})
    if scenario.tls is not None:
        update["tls"] = _resolve_ca(scenario, base, problems)
    if problems:
        raise ScenarioError(source, problems)
    if devices != listed or "fleet" in update:
        update["devices"] = FleetDevices(devices, fleet)
    return scenario.model_copy(update=update) if update else scenario


def _resolve_device(
    d: DeviceConfig, where: str, base: Path, checked: set[tuple[str, str]], problems: list[str]
) -> DeviceConfig:
    """A device's replay, push CA and TLS files made absolute and checked."""
    if d.replay is not None:
        fix = "a path to an a3dpc minute CSV export"
        f = _readable(d.replay.file, base, f"{where}.replay.file", fix, problems)
        d = d.model_copy(update={"replay": ReplayConfig(file=f)})
    if d.push is not None and d.push.ca_file is not None:
        fix = "a PEM file of the root CA"
        ca = _readable(d.push.ca_file, base, f"{where}.push.ca_file", fix, problems)
        d = d.model_copy(update={"push": d.push.model_copy(update={"ca_file": ca})})
    return _resolve_device_tls(d, where, base, checked, problems)


_PEM_FIX = "PEM files of {what} and its key, relative to the scenario file"


def _absolute(path: str, base: Path) -> str:
    """A path relative to the scenario file made absolute."""
    p = Path(path)
    return str((p if p.is_absolute() else base / p).resolve())


def _readable(path: str, base: Path, field: str, fix: str, problems: list[str]) -> str:
    """``path`` made absolute; a problem naming ``field`` when it is no readable file."""
    absolute = _absolute(path, base)
    if not Path(absolute).is_file():
        where = str(Path(path) if Path(path).is_absolute() else base / path)
        problems.append(
            f"{field}: cannot read {where!r} (fix: {fix}, relative to the scenario file)"
        )
    return absolute


def _resolve_device_tls(
    d: DeviceConfig, where: str, base: Path, checked: set[tuple[str, str]], problems: list[str]
) -> DeviceConfig:
    """A device's own certificate and key made absolute and checked (each pair once)."""
    if d.tls is None:
        return d
    pair = (_absolute(d.tls.cert, base), _absolute(d.tls.key, base))
    if pair not in checked:
        checked.add(pair)
        try:
            check_pair(*pair, field=f"{where}.tls")
        except TLSError as e:
            problems.append(f"{e} (fix: {_PEM_FIX.format(what='a certificate')})")
    tls = d.tls.model_copy(update={"cert": pair[0], "key": pair[1]})
    return d.model_copy(update={"tls": tls})


def _resolve_ca(scenario: Scenario, base: Path, problems: list[str]) -> Any:
    """The scenario's CA files made absolute and checked."""
    assert scenario.tls is not None
    cert, key = _absolute(scenario.tls.ca_cert, base), _absolute(scenario.tls.ca_key, base)
    try:
        CertificateAuthority.load(cert, key)
    except TLSError as e:
        problems.append(f"{e} (fix: {_PEM_FIX.format(what='a CA certificate')})")
    return scenario.tls.model_copy(update={"ca_cert": cert, "ca_key": key})
