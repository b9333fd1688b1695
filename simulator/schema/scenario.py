"""The scenario file's schema: pydantic models of devices, crowds, fleets and the control plane."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Annotated, Any, Literal, overload
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from simulator.clock import check_time
from simulator.schema.timeline import MAX_RESTART_S, Event, FaultSpec, event_devices

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


def _clock_time(v: Any) -> Any:
    """Refuse YAML's reading of an unquoted 14:00 as the number 840 (base 60)."""
    if isinstance(v, int) and not isinstance(v, bool):
        raise ValueError("write local times in quotes, e.g. '14:00' (YAML reads 14:00 as 840)")
    return v


def _check_span(span: str, day: str | None = None) -> str:
    """An HH:MM-HH:MM opening span that closes after it opens (of ``day``, if given)."""
    where = f"{day}: " if day else ""
    m = _HOURS_RE.match(span)
    if not m:
        closed = " (or null for closed)" if day else ""
        raise ValueError(f"{where}{span!r} is not HH:MM-HH:MM{closed}")
    if (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
        raise ValueError(f"{where}{span!r} closes before it opens")
    return span


def _check_weekday(day: str) -> None:
    """Refuse a key that is not one of mon..sun."""
    if day not in WEEKDAYS:
        raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")


class Burst(_Model):
    """A crowd arriving at once: about ``visitors`` people over ``minutes`` from ``at``."""

    day: date
    at: time
    minutes: int = Field(default=15, ge=1, le=1440)
    visitors: float = Field(gt=0, le=100_000)

    _at = field_validator("at", mode="before")(_clock_time)


class SpecialDay(_Model):
    """A day unlike its weekday: a sale (factor), a holiday (like a Sunday), a closed day."""

    day: date
    name: str = ""
    closed: bool = False
    like: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None
    hours: str | None = None
    factor: float = Field(default=1.0, ge=0)

    _hours = field_validator("hours")(lambda v: None if v is None else _check_span(v))


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

    daily_visitors: float = Field(default=1400.0, ge=0, le=1_000_000)
    opening_hours: dict[str, str | None] = Field(default_factory=_default_hours)
    weekday_factors: dict[str, float] = Field(
        default_factory=lambda: {
            "mon": 0.85,
            "tue": 0.85,
            "wed": 0.9,
            "thu": 0.95,
            "fri": 1.1,
            "sat": 1.35,
            "sun": 0.7,
        }
    )
    month_factors: list[float] = Field(
        default_factory=lambda: [
            *(0.85, 0.84, 0.93, 0.97, 1.0, 0.97),  # January..June
            *(0.93, 0.97, 0.97, 1.0, 1.08, 1.35),  # July..December
        ],
        min_length=12,
        max_length=12,
    )
    profile: list[Peak] = Field(
        default_factory=lambda: [
            Peak(at=time(11, 30), width_minutes=75, weight=1.0),
            Peak(at=time(15, 30), width_minutes=110, weight=1.2),
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
    group_sizes: list[float] | None = Field(default=None, min_length=1, max_length=50)
    profile_by_day: dict[str, list[Peak]] = Field(default_factory=dict)
    holidays: Literal["auto", "SE", "none"] = "auto"
    special_days: list[SpecialDay] = Field(default_factory=list)
    bursts: list[Burst] = Field(default_factory=list)
    sweep_minutes: int = Field(default=15, ge=1, le=240)
    closing_taper_minutes: int = Field(default=30, ge=0, le=240)

    @field_validator("group_sizes")
    @classmethod
    def _check_sizes(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (min(v) < 0 or sum(v) <= 0):
            raise ValueError("group_sizes are weights of sizes 1, 2, 3, ...: >= 0, not all 0")
        return v

    @field_validator("special_days")
    @classmethod
    def _unique_special(cls, v: list[SpecialDay]) -> list[SpecialDay]:
        days = [d.day for d in v]
        dup = sorted({d for d in days if days.count(d) > 1})
        if dup:
            raise ValueError(f"more than one entry for {', '.join(map(str, dup))}")
        return v

    @field_validator("profile_by_day")
    @classmethod
    def _check_profile_days(cls, v: dict[str, list[Peak]]) -> dict[str, list[Peak]]:
        for day in v:
            _check_weekday(day)
        return v

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        for day, span in v.items():
            _check_weekday(day)
            if span is not None:
                _check_span(span, day)
        return v

    @field_validator("weekday_factors")
    @classmethod
    def _check_factors(cls, v: dict[str, float]) -> dict[str, float]:
        for day, f in v.items():
            _check_weekday(day)
            if f < 0:
                raise ValueError(f"{day}: factor must be >= 0")
        return v


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


class FramesConfig(_Model):
    """The counter's frame rate: nominal with jitter, dipping when the scene is crowded."""

    nominal_fps: float = Field(default=20.0, gt=0, le=120)
    minute_jitter: float = Field(default=0.02, ge=0, le=0.5)  # relative sd of a minute's rate
    frame_jitter: float = Field(default=0.08, ge=0, le=0.5)  # relative sd of a frame interval
    crowd_drop: Probability = 0.25  # the deepest relative dip, in a packed scene
    crowd_scale: float = Field(default=20.0, gt=0)  # people/minute (in+out) for 63% of it
    min_fps: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _check_floor(self) -> FramesConfig:
        if self.min_fps > self.nominal_fps:
            raise ValueError("min_fps must not be above nominal_fps")
        return self


class IOConfig(_Model):
    """The output port that passthrough threshold events drive."""

    output: Literal["pulse", "toggle"] = "pulse"
    pulse_seconds: float = Field(default=10.0, gt=0, le=3600)


class ProductConfig(_Model):
    """Product identity reported by VAPIX; unset fields take the device model's defaults."""

    prod_nbr: str | None = None
    prod_full_name: str | None = None
    prod_short_name: str | None = None
    prod_type: str | None = None
    prod_variant: str | None = None
    architecture: str | None = None
    soc: str | None = None
    hardware_id: str | None = None
    build_date: str | None = None


PUSH_INTERVALS = (1, 5, 15)
FIRMWARE_VERSION = "11.11.73"  # AXIS OS LTS 2024 (11.11), the track a P8815-2 runs


class PushConfig(_Model):
    """The generic data push (the application's Reporting section) and its delivery policy."""

    url: str = Field(min_length=1)
    interval_minutes: int = 15
    token: str | None = None
    ca_file: str | None = None
    allow_http: bool = False
    timezone_key: Literal["timezone", "timeZone"] = "timeZone"
    measurements: Literal["minute", "interval"] = "minute"
    outbox_limit: int = Field(default=10080, ge=1)
    timeout_s: float = Field(default=10.0, gt=0)
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    backoff_jitter: Probability = 0.2

    @field_validator("interval_minutes")
    @classmethod
    def _check_interval(cls, v: int) -> int:
        if v not in PUSH_INTERVALS:
            raise ValueError(f"{v} minutes is not supported; the device pushes every 1, 5 or 15")
        return v

    @model_validator(mode="after")
    def _check_url(self) -> PushConfig:
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"url {self.url!r} is not an https://host/... URL")
        if parts.scheme == "http" and not self.allow_http:
            raise ValueError(
                f"url {self.url!r} is plain http; the device pushes over HTTPS only "
                "(set allow_http: true for a local test receiver)"
            )
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must not be below backoff_initial_s")
        return self


class ReplayConfig(_Model):
    """Counts replayed from a recording: the device's own a3dpc minute CSV export."""

    file: str = Field(min_length=1)  # relative to the scenario file


class DeviceTLSConfig(_Model):
    """A device's own HTTPS certificate and key: PEM files, relative to the scenario file."""

    cert: str = Field(min_length=1)
    key: str = Field(min_length=1)


class ScenarioTLSConfig(_Model):
    """The CA that issues the devices' HTTPS certificates: PEM files, relative to the scenario."""

    ca_cert: str = Field(min_length=1)
    ca_key: str = Field(min_length=1)


class DeviceConfig(_Model):
    """One simulated device: identity, users, configuration and its crowd."""

    id: str = Field(default="entrance", pattern=r"^[A-Za-z0-9_-]+$")
    model: Literal["P8815-2", "3D People Counter"] = "P8815-2"
    serial: str = Field(default="ACCC8EF3D92E", pattern=r"^[0-9A-Fa-f]{12}$")
    name: str | None = None
    ip_address: str = "192.168.0.90"
    timezone: str = "Europe/Stockholm"
    site: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+$")
    installed: date | None = None
    firmware_version: str = FIRMWARE_VERSION
    # The counting application is part of AXIS OS: a device reports the OS version as its
    # version unless a scenario says otherwise.
    application_version: str = Field(
        default_factory=lambda data: str(data.get("firmware_version", FIRMWARE_VERSION))
    )
    restart_s: int = Field(default=75, ge=0, le=MAX_RESTART_S)  # away after restart.cgi
    users: list[User] = Field(default_factory=lambda: list(DEFAULT_USERS), min_length=1)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    occupancy: OccupancyConfig = Field(default_factory=OccupancyConfig)
    passthrough: PassthroughConfig = Field(default_factory=PassthroughConfig)
    crowd: CrowdConfig = Field(default_factory=CrowdConfig)
    counter: CounterConfig = Field(default_factory=CounterConfig)
    push: PushConfig | None = None
    frames: FramesConfig = Field(default_factory=FramesConfig)
    io: IOConfig = Field(default_factory=IOConfig)
    product: ProductConfig = Field(default_factory=ProductConfig)
    replay: ReplayConfig | None = None
    tls: DeviceTLSConfig | None = None
    https_only: bool = False

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


class ControlConfig(_Model):
    """The control plane (/sim/v1/): the bearer token it asks for (null: none)."""

    token: str | None = Field(default="p8815-sim", min_length=1)
    journal_size: int = Field(default=200, ge=1, le=100000)
    journal_bytes: int = Field(default=16 * 2**20, ge=2**16, le=2**32)


class FleetTemplate(_Model):
    """``count`` devices made from one template, with ids, serials and IPs derived in turn."""

    count: int = Field(ge=1, le=100000)
    id_prefix: str = Field(default="door-", pattern=r"^[A-Za-z0-9_-]*$")
    serial_start: str = Field(default="ACCC8E000000", pattern=r"^[0-9A-Fa-f]{12}$")
    template: DeviceConfig = Field(default_factory=DeviceConfig)

    @property
    def width(self) -> int:
        """How many digits the number of a device's id has."""
        return max(4, len(str(self.count - 1)))

    def device(self, i: int) -> DeviceConfig:
        """Device ``i`` (0-based): ``<prefix>0000``... serial_start + i, IP 10.x.y.z."""
        n = i + 1
        update = {
            "id": f"{self.id_prefix}{i:0{self.width}d}",
            "serial": f"{int(self.serial_start, 16) + i:012X}",
            "ip_address": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}",
        }
        return self.template.model_copy(update=update)

    def index_of(self, device_id: str) -> int | None:
        """The number of the device with this id, or None if none of the template has it."""
        digits = device_id.removeprefix(self.id_prefix)
        if len(digits) != len(device_id) - len(self.id_prefix) or len(digits) != self.width:
            return None
        if not (digits.isascii() and digits.isdigit()) or int(digits) >= self.count:
            return None
        return int(digits)

    def expand(self) -> list[DeviceConfig]:
        """Every device of the template, in turn."""
        return [self.device(i) for i in range(self.count)]


class FleetDevices(Sequence[DeviceConfig]):
    """A scenario's devices: those listed, then a template's, each made when asked for.

    A template's device is a function of the template and its number, so a fleet of 100,000
    is not held in memory: a process serving part of it makes only the devices it serves.
    """

    def __init__(self, listed: Sequence[DeviceConfig], fleet: FleetTemplate | None) -> None:
        self.listed = list(listed)
        self.fleet = fleet
        self._ids = {d.id: i for i, d in enumerate(self.listed)}

    def __len__(self) -> int:
        return len(self.listed) + (0 if self.fleet is None else self.fleet.count)

    @overload
    def __getitem__(self, i: int) -> DeviceConfig: ...
    @overload
    def __getitem__(self, i: slice) -> list[DeviceConfig]: ...
    def __getitem__(self, i: int | slice) -> DeviceConfig | list[DeviceConfig]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError("device index out of range")
        i %= n
        if i < len(self.listed):
            return self.listed[i]
        assert self.fleet is not None
        return self.fleet.device(i - len(self.listed))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FleetDevices):
            return (self.listed, self.fleet) == (other.listed, other.fleet)
        return isinstance(other, Sequence) and len(other) == len(self) and list(self) == other

    __hash__ = None  # type: ignore[assignment]

    def index_of(self, device_id: str) -> int | None:
        """The index of the device with this id (None: no such device), without making any."""
        i = self._ids.get(device_id)
        if i is None and self.fleet is not None:
            j = self.fleet.index_of(device_id)
            return None if j is None else len(self.listed) + j
        return i

    def template_range(self) -> range:
        """The indexes of the template's devices."""
        return range(len(self.listed), len(self))


def fleet_devices(devices: Sequence[DeviceConfig]) -> FleetDevices:
    """Devices as a :class:`FleetDevices` (a plain list: all of them listed)."""
    return devices if isinstance(devices, FleetDevices) else FleetDevices(devices, None)


class Scenario(_Model):
    """A whole simulation: devices, seed and the simulated start."""

    name: str = "default-store"
    description: str = ""
    seed: int = Field(default=42, ge=0)
    start: datetime | None = None
    speed: float = Field(default=1.0, ge=0)
    devices: Sequence[DeviceConfig] = Field(default_factory=lambda: [DeviceConfig()])
    fleet: FleetTemplate | None = None
    timeline: list[Event] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    control: ControlConfig = Field(default_factory=ControlConfig)
    tls: ScenarioTLSConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _fleet_alone(cls, data: Any) -> Any:
        """With a ``fleet`` template and no ``devices`` listed, the fleet is all of them."""
        if isinstance(data, dict) and data.get("fleet") is not None and data.get("devices") is None:
            return {**data, "devices": []}
        return data

    @model_validator(mode="after")
    def _with_fleet(self) -> Scenario:
        """The devices: the listed ones, then the template's (made when asked for)."""
        devices = FleetDevices(self.devices, self.fleet)
        object.__setattr__(self, "devices", devices)  # the model is frozen once validated
        return self

    @field_serializer("devices")
    def _listed(self, devices: Sequence[DeviceConfig]) -> list[DeviceConfig]:
        """Only the listed devices: the ``fleet`` template, written too, makes the others."""
        return fleet_devices(devices).listed

    @model_validator(mode="after")
    def _some_devices(self) -> Scenario:
        if not self.devices:
            raise ValueError("no devices: list some under devices, or add a fleet template")
        return self

    def _samples(self) -> list[DeviceConfig]:
        """One device of each kind: every listed one, and the template's first (its devices
        differ only in id, serial and address)."""
        devices = fleet_devices(self.devices)
        fleet = [] if devices.fleet is None else [devices.fleet.device(0)]
        return [*devices.listed, *fleet]

    def device(self, device_id: str) -> DeviceConfig | None:
        """The device with this id, if any."""
        i = fleet_devices(self.devices).index_of(device_id)
        return None if i is None else self.devices[i]

    @model_validator(mode="after")
    def _check_timeline(self) -> Scenario:
        for i, ev in enumerate(self.timeline):
            for dev in event_devices(ev):
                if self.device(dev) is None:
                    raise ValueError(f"timeline.{i}: no device {dev!r} (use a device id)")
            if ev.kind == "adjust_occupancy":
                one = self.device(ev.device) if ev.device else None
                targets = [one] if one is not None else self._samples()
                for d in targets:
                    if d.occupancy.role == "secondary" or not d.occupancy.estimation:
                        raise ValueError(
                            f"timeline.{i}: {d.id} cannot adjust occupancy (a secondary, or "
                            "estimation off); name the site's primary as device"
                        )
        for i, f in enumerate(self.faults):
            if f.device is not None and self.device(f.device) is None:
                raise ValueError(f"faults.{i}: no device {f.device!r} (use a device id)")
        return self

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2024-05-04T10:00:00+02:00 or ...Z")
        if v is not None:
            check_time(v.timestamp(), "start")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> Scenario:
        devices = fleet_devices(self.devices)
        dup = {i for i, n in Counter(d.id for d in devices.listed).items() if n > 1}
        if devices.fleet is not None:  # the template's ids are unique among themselves
            dup.update(d.id for d in devices.listed if devices.fleet.index_of(d.id) is not None)
        if dup:
            raise ValueError(f"duplicate device id(s): {', '.join(sorted(dup))}")
        return self

    @model_validator(mode="after")
    def _check_sites(self) -> Scenario:
        sites: dict[str, list[DeviceConfig]] = {}
        for d in self._samples():  # a template's doors are alike: its first stands for all
            if d.site is not None:
                sites.setdefault(d.site, []).append(d)
        for name, doors in sites.items():
            problem = site_problem(name, doors)
            if problem:
                raise ValueError(problem)
        return self

    def sites(self) -> dict[str, list[DeviceConfig]]:
        """The devices of each named site, in scenario order (devices without a site: none)."""
        out: dict[str, list[DeviceConfig]] = {}
        for d in self.devices:
            if d.site is not None:
                out.setdefault(d.site, []).append(d)
        return out

    def site_doors(self, device_id: str) -> list[DeviceConfig]:
        """The devices simulated together with ``device_id``: its site's doors, or itself."""
        i = fleet_devices(self.devices).index_of(device_id)
        if i is None:
            raise KeyError(f"no device {device_id!r} in scenario {self.name!r}")
        return [self.devices[j] for j in self.site_of(i)]

    def site_of(self, index: int) -> Sequence[int]:
        """The indexes of the doors of device ``index``'s site (itself alone if it has none)."""
        devices = fleet_devices(self.devices)
        site = devices[index].site
        if site is None:
            return [index]
        fleet = devices.fleet
        tail = devices.template_range() if fleet and fleet.template.site == site else []
        return [*(j for j, d in enumerate(devices.listed) if d.site == site), *tail]

    def site_groups(self, shard: tuple[int, int] = (0, 1)) -> list[Sequence[int]]:
        """The indexes of each site's doors (a device without a site: alone), in order of the
        sites' first doors; of shard ``i`` of ``n`` only: the sites whose first door's index
        is ``i`` modulo ``n`` (so a site stays whole and each device is in one shard)."""
        i, n = shard
        devices = fleet_devices(self.devices)
        named: dict[str, list[int]] = {}
        groups: list[Sequence[int]] = []
        for j, d in enumerate(devices.listed):
            if d.site is None:
                groups.append([j])
            else:
                named.setdefault(d.site, []).append(j)
        fleet, tail = devices.fleet, devices.template_range()
        if fleet is not None and fleet.template.site is not None:
            named.setdefault(fleet.template.site, []).extend(tail)
        groups.extend(named.values())
        ours = [g for g in groups if g[0] % n == i]
        if fleet is not None and fleet.template.site is None:  # every n-th, worked out
            first = tail.start + (i - tail.start) % n
            ours.extend([j] for j in range(first, tail.stop, n))
        return sorted(ours, key=lambda g: g[0])


#: Crowd fields each door of a site sets for itself; every other crowd field is the site's.
DOOR_CROWD_FIELDS = frozenset({"daily_visitors", "exit_share"})


def site_problem(name: str, doors: list[DeviceConfig]) -> str | None:
    """Why devices cannot form one site (a crowd and a time zone they share), or None."""
    first = doors[0]
    shared = first.crowd.model_dump(exclude=set(DOOR_CROWD_FIELDS))
    for d in doors[1:]:
        if d.timezone != first.timezone:
            return f"site {name}: {d.id} and {first.id} are in different time zones"
        if d.crowd.model_dump(exclude=set(DOOR_CROWD_FIELDS)) != shared:
            return (
                f"site {name}: the doors' crowd settings differ; a site has one crowd "
                f"(only {', '.join(sorted(DOOR_CROWD_FIELDS))} are per door)"
            )
        if d.counter.child_share != first.counter.child_share:
            return f"site {name}: the doors' counter.child_share differ; children are the site's"
    return None
