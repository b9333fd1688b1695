"""The schema of timeline events and faults: what a scenario's timeline and the control plane say.

An event happens at an absolute time (``at``), at a duration after the simulated start
(``after``), or, injected without either, now. ``device`` names the device it acts on; left
out, it acts on every device. How events are applied is :mod:`simulator.runtime.events`.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulator.clock import check_time, epoch_seconds

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


#: The most visitors one burst brings (a stadium emptying through one door is far fewer).
MAX_BURST = 100_000
#: The longest duration accepted: a century of simulated time keeps every date printable.
MAX_DURATION_S = 100 * 366 * 86400.0


def parse_duration(v: Any) -> float:
    """Seconds of a duration: a number (seconds) or text like ``90s``, ``15m``, ``1h30m``."""
    seconds = _duration(v)
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION_S:
        raise ValueError(f"{v!r} is too long a duration: at most 100 years")
    return seconds


def _duration(v: Any) -> float:
    """Seconds of a duration, unbounded."""
    if isinstance(v, bool):
        raise ValueError("a duration is a number of seconds or text like 15m, 1h30m, 2d")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        text = v.strip().replace(" ", "")
        neg = text.startswith("-")
        text = text.removeprefix("-")
        pos, total = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m[1]) * _UNIT[m[2]]
            pos = m.end()
        if text and pos == len(text):
            return -total if neg else total
        try:
            return float(v)
        except ValueError:
            pass
    raise ValueError(f"{v!r} is not a duration: use seconds or text like 90s, 15m, 1h30m, 2d")


Duration = Annotated[float, Field(description="seconds, or text like 90s, 15m, 1h30m, 2d")]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencySpec(_Base):
    """Added latency: fixed, or drawn from a distribution (milliseconds)."""

    ms: float = Field(default=0.0, ge=0, le=600_000)
    dist: Literal["fixed", "uniform", "normal", "lognormal", "exponential"] = "fixed"
    # uniform: ±spread; normal: sd; lognormal: sigma×ms
    spread_ms: float = Field(default=0.0, ge=0, le=600_000)
    max_ms: float = Field(default=30000.0, ge=0, le=600_000)


class FaultSpec(_Base):
    """A fault on the responses of one device (or all) whose path matches a glob pattern.

    Its effects compose in this order: latency, then a connection reset or an error status
    (which replaces the device's answer), then the body (malformed, truncated, dribbled).
    """

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")
    device: str | None = None
    path: str = "*"
    probability: float = Field(default=1.0, ge=0, le=1)
    times: int | None = Field(default=None, ge=1)  # fire at most this many times
    latency: LatencySpec | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    reset: bool = False
    malformed: bool = False
    truncate: float | None = Field(default=None, ge=0, lt=1)  # fraction of the body sent
    dribble_bytes_per_s: float | None = Field(default=None, gt=0)
    dribble_chunk: int = Field(default=16, ge=1)

    @model_validator(mode="after")
    def _has_effect(self) -> FaultSpec:
        effects = (
            self.latency,
            self.status,
            self.reset or None,
            self.malformed or None,
            self.truncate,
            self.dribble_bytes_per_s,
        )
        if all(e is None for e in effects):
            raise ValueError(
                "a fault needs an effect: latency, status, reset, malformed, truncate "
                "or dribble_bytes_per_s"
            )
        return self


class _Event(_Base):
    """When an event happens: ``at`` (absolute), ``after`` (since the start), or now."""

    at: datetime | None = None
    after: Duration | None = None

    _after = field_validator("after", mode="before")(
        lambda v: None if v is None else parse_duration(v)
    )
    _at = field_validator("at", mode="before")(lambda v: epoch_seconds(v, "at"))

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("at needs a UTC offset, e.g. 2024-06-07T14:00:00+02:00 or ...Z")
        if v is not None:
            check_time(v.timestamp(), "at")
        return v

    @model_validator(mode="after")
    def _one_time(self) -> _Event:
        if self.at is not None and self.after is not None:
            raise ValueError("give at or after, not both")
        return self


class _DeviceEvent(_Event):
    device: str | None = None  # None: every device


class BurstEvent(_DeviceEvent):
    """About ``visitors`` extra people arrive over ``minutes`` (at the device's site)."""

    kind: Literal["burst"]
    visitors: float = Field(gt=0, le=MAX_BURST)
    minutes: int = Field(default=15, ge=1, le=1440)


class DoorClosedEvent(_DeviceEvent):
    """The door is closed: its device counts nobody, for ``minutes`` or until door_open."""

    kind: Literal["door_closed"]
    minutes: float | None = Field(default=None, gt=0, le=MAX_DURATION_S / 60)


class DoorOpenEvent(_DeviceEvent):
    """The door opens again."""

    kind: Literal["door_open"]


class FpsEvent(_DeviceEvent):
    """The frame rate drops to ``percent`` of normal, for ``minutes`` or until changed."""

    kind: Literal["fps"]
    percent: int = Field(ge=1, le=200)
    minutes: float | None = Field(default=None, gt=0, le=MAX_DURATION_S / 60)


class IOEvent(_DeviceEvent):
    """The output port's set level changes."""

    kind: Literal["io"]
    active: bool


class AdjustEvent(_DeviceEvent):
    """An operator sets the occupancy estimate (adjustOccupancy on the primary)."""

    kind: Literal["adjust_occupancy"]
    occupancy: int = Field(ge=0, le=1_000_000)


#: The longest a device may stay away while it restarts (an hour).
MAX_RESTART_S = 3600


class RebootEvent(_DeviceEvent):
    """The device reboots: frame counter and uptime restart; stored data is kept.

    ``down_s``: seconds the device answers nothing before it is up again (default 0: it is
    up at once; ``restart.cgi`` gives the device's ``restart_s``).
    """

    kind: Literal["reboot"]
    down_s: int = Field(default=0, ge=0, le=MAX_RESTART_S)


class PushOutageEvent(_DeviceEvent):
    """The push receiver is unreachable, for ``minutes`` or until push_restore."""

    kind: Literal["push_outage"]
    minutes: float | None = Field(default=None, gt=0, le=MAX_DURATION_S / 60)


class PushRestoreEvent(_DeviceEvent):
    """The push receiver is reachable again."""

    kind: Literal["push_restore"]


class ClockJumpEvent(_Event):
    """The simulated clock jumps to ``to`` or by ``by``; what falls due in between happens."""

    kind: Literal["clock_jump"]
    to: datetime | None = None
    by: Duration | None = None

    _by = field_validator("by", mode="before")(lambda v: None if v is None else parse_duration(v))

    @field_validator("to")
    @classmethod
    def _to_in_calendar(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is not None:
            check_time(v.timestamp(), "to")
        return v

    @model_validator(mode="after")
    def _one_target(self) -> ClockJumpEvent:
        if (self.to is None) == (self.by is None):
            raise ValueError("a clock_jump needs exactly one of to (a time) or by (a duration)")
        if self.to is not None and self.to.tzinfo is None:
            raise ValueError("to needs a UTC offset")
        return self


class FaultOnEvent(_Event):
    """A fault is switched on."""

    kind: Literal["fault_on"]
    fault: FaultSpec


class FaultOffEvent(_Event):
    """A fault (by id), or every fault, is switched off."""

    kind: Literal["fault_off"]
    id: str | None = None


Event = Annotated[
    BurstEvent
    | DoorClosedEvent
    | DoorOpenEvent
    | FpsEvent
    | IOEvent
    | AdjustEvent
    | RebootEvent
    | PushOutageEvent
    | PushRestoreEvent
    | ClockJumpEvent
    | FaultOnEvent
    | FaultOffEvent,
    Field(discriminator="kind"),
]

EVENT_KINDS = (
    "burst",
    "door_closed",
    "door_open",
    "fps",
    "io",
    "adjust_occupancy",
    "reboot",
    "push_outage",
    "push_restore",
    "clock_jump",
    "fault_on",
    "fault_off",
)


def event_devices(event: BaseModel) -> list[str]:
    """The device ids an event names (its own ``device`` and its fault's)."""
    out = []
    dev = getattr(event, "device", None)
    if isinstance(dev, str):
        out.append(dev)
    fault = getattr(event, "fault", None)
    if isinstance(fault, FaultSpec) and fault.device is not None:
        out.append(fault.device)
    return out
