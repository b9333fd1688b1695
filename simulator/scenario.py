"""Scenario files: the pydantic schema, loading from YAML or JSON, and clear errors."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")

Role = Literal["viewer", "operator", "administrator"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class User(_Model):
    """A device user account with its security level."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    password: str = Field(min_length=1)
    role: Role = "viewer"


DEFAULT_USERS = (
    User(name="root", password="pass", role="administrator"),
    User(name="operator", password="operator", role="operator"),
    User(name="viewer", password="viewer", role="viewer"),
)


class AuthConfig(_Model):
    """How the device's web server checks HTTP Digest credentials."""

    algorithm: Literal["MD5", "SHA-256"] = "MD5"
    nonce_lifetime_s: float = Field(default=300.0, gt=0)
    strict_nc: bool = False


class Peak(_Model):
    """A bump of the time-of-day profile: a Gaussian centred at a local time."""

    at: time
    width_minutes: float = Field(default=60.0, gt=0)
    weight: float = Field(default=1.0, ge=0)


def _default_hours() -> dict[str, str | None]:
    return {
        "mon": "10:00-20:00",
        "tue": "10:00-20:00",
        "wed": "10:00-20:00",
        "thu": "10:00-20:00",
        "fri": "10:00-20:00",
        "sat": "10:00-18:00",
        "sun": "11:00-17:00",
    }


class CrowdConfig(_Model):
    """The truth: who comes through the door, when, and how long they stay."""

    daily_visitors: float = Field(default=1400.0, ge=0)
    opening_hours: dict[str, str | None] = Field(default_factory=_default_hours)
    weekday_factors: dict[str, float] = Field(
        default_factory=lambda: {
            "mon": 0.85,
            "tue": 0.85,
            "wed": 0.9,
            "thu": 1.0,
            "fri": 1.15,
            "sat": 1.35,
            "sun": 0.9,
        }
    )
    month_factors: list[float] = Field(
        default_factory=lambda: [0.9, 0.85, 0.95, 1.0, 1.0, 0.95, 0.9, 0.95, 1.0, 1.0, 1.1, 1.35],
        min_length=12,
        max_length=12,
    )
    profile: list[Peak] = Field(
        default_factory=lambda: [
            Peak(at=time(12, 30), width_minutes=70, weight=1.0),
            Peak(at=time(16, 45), width_minutes=100, weight=1.3),
        ]
    )
    base_level: float = Field(default=0.6, ge=0)
    day_level_cv: float = Field(default=0.2, ge=0, le=2)
    group_size_mean: float = Field(default=1.5, ge=1)
    dwell_median_minutes: float = Field(default=20.0, gt=0)
    dwell_sigma: float = Field(default=0.7, ge=0)
    exit_share: Probability = 1.0
    closed_dates: list[date] = Field(default_factory=list)
    day_factors: dict[date, float] = Field(default_factory=dict)

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        for day, span in v.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
            if span is None:
                continue
            m = _HOURS_RE.match(span)
            if not m:
                raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM (or null for closed)")
            if (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
                raise ValueError(f"{day}: {span!r} closes before it opens")
        return v

    @field_validator("weekday_factors")
    @classmethod
    def _check_factors(cls, v: dict[str, float]) -> dict[str, float]:
        for day, f in v.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
            if f < 0:
                raise ValueError(f"{day}: factor must be >= 0")
        return v

    def hours_of(self, weekday: int) -> tuple[int, int] | None:
        """Opening minute and closing minute (local, since midnight) of a weekday, or None."""
        span = self.opening_hours.get(WEEKDAYS[weekday])
        if span is None:
            return None
        a, b = span.split("-")
        return _minutes(a), _minutes(b)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class CounterConfig(_Model):
    """What the device's counting adds to the truth: misses, double counts, children."""

    miss_in: Probability = 0.02
    miss_out: Probability = 0.035
    double_in: Probability = 0.005
    double_out: Probability = 0.005
    child_share: Probability = 0.12


class OccupancyConfig(_Model):
    """Occupancy estimation settings of the application."""

    estimation: bool = True
    role: Literal["primary", "secondary"] = "primary"
    reset_time: time = time(0, 0)


class PassthroughConfig(_Model):
    """Passthrough threshold events settings."""

    events: bool = True
    threshold: int = Field(default=100, ge=1)


class DeviceConfig(_Model):
    """One simulated device: identity, users, configuration and its crowd."""

    id: str = Field(default="entrance", pattern=r"^[A-Za-z0-9_-]+$")
    model: Literal["P8815-2", "3D People Counter"] = "P8815-2"
    serial: str = Field(default="ACCC8EF3D92E", pattern=r"^[0-9A-Fa-f]{12}$")
    name: str | None = None
    ip_address: str = "192.168.0.90"
    timezone: str = "Europe/Stockholm"
    installed: date | None = None
    firmware_version: str = "11.11.73"
    application_version: str = "10.3"
    users: list[User] = Field(default_factory=lambda: list(DEFAULT_USERS), min_length=1)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    occupancy: OccupancyConfig = Field(default_factory=OccupancyConfig)
    passthrough: PassthroughConfig = Field(default_factory=PassthroughConfig)
    crowd: CrowdConfig = Field(default_factory=CrowdConfig)
    counter: CounterConfig = Field(default_factory=CounterConfig)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as Europe/Stockholm"
            ) from None
        return v

    @field_validator("users")
    @classmethod
    def _unique_users(cls, v: list[User]) -> list[User]:
        names = [u.name for u in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate user name(s): {', '.join(sorted(dup))}")
        return v

    @property
    def tz(self) -> ZoneInfo:
        """The device's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def serial_upper(self) -> str:
        """The serial number in upper case, as Axis prints it."""
        return self.serial.upper()

    @property
    def mac(self) -> str:
        """The MAC address (an Axis serial is its MAC), lower case with colons."""
        s = self.serial.lower()
        return ":".join(s[i : i + 2] for i in range(0, 12, 2))

    @property
    def display_name(self) -> str:
        """The device name, by default axis-<serial> as Axis names devices."""
        return self.name or f"axis-{self.serial.lower()}"


class Scenario(_Model):
    """A whole simulation: devices, seed and the simulated start."""

    name: str = "default-store"
    description: str = ""
    seed: int = Field(default=42, ge=0)
    start: datetime | None = None
    speed: float = Field(default=1.0, ge=0)
    devices: list[DeviceConfig] = Field(default_factory=lambda: [DeviceConfig()], min_length=1)

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2024-05-04T10:00:00+02:00 or ...Z")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> Scenario:
        ids = [d.id for d in self.devices]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate device id(s): {', '.join(sorted(dup))}")
        return self


def installed_date(device: DeviceConfig, sim_start: float) -> date:
    """The date the device started counting: configured, or one year before the start."""
    if device.installed is not None:
        return device.installed
    local = datetime.fromtimestamp(sim_start, UTC).astimezone(device.tz).date()
    return local - timedelta(days=365)


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
}


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
            path = ".".join(str(p) for p in loc) or "(top level)"
            line = None
            for n in range(len(loc), -1, -1):
                line = lines.get(loc[:n])
                if line is not None:
                    break
            msg = err["msg"].removeprefix("Value error, ")
            hint = _HINTS.get(err["type"])
            where = f"line {line}: " if line else ""
            problems.append(f"{where}{path}: {msg}" + (f" (fix: {hint})" if hint else ""))
        raise ScenarioError(source, problems) from None


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file (YAML or JSON), raising ScenarioError with located problems."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(str(p), [f"cannot read the file: {e.strerror}"]) from None
    if p.suffix.lower() == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            raise ScenarioError(str(p), [f"line {e.lineno}: not valid JSON: {e.msg}"]) from None
    return parse_scenario(text, str(p))
