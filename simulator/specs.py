"""From the scenario schema to the model's plain specs: the one place the two meet.

Opening hours are parsed, weekday names resolved to indices and the holiday calendar
picked here, once per config; the model (``simulator.model``) sees numbers only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import TypeVar, cast

from simulator.model.calendar import COUNTRY_OF_ZONE
from simulator.model.crowd import SiteSpec
from simulator.model.specs import (
    BurstSpec,
    CounterSpec,
    CrowdSpec,
    FramesSpec,
    Hours,
    PeakSpec,
    SpecialDaySpec,
)
from simulator.schema.scenario import (
    WEEKDAYS,
    Burst,
    CounterConfig,
    CrowdConfig,
    DeviceConfig,
    FramesConfig,
    Peak,
    Scenario,
    SpecialDay,
)


def _span(text: str) -> Hours:
    """Opening and closing minute of an ``HH:MM-HH:MM`` span."""
    a, b = text.split("-")
    return int(a[:2]) * 60 + int(a[3:]), int(b[:2]) * 60 + int(b[3:])


def _country(setting: str, timezone: str) -> str | None:
    """The holiday calendar of a ``holidays`` setting, ``auto`` picking by time zone."""
    if setting == "none":
        return None
    if setting == "auto":
        return COUNTRY_OF_ZONE.get(timezone)
    return setting


def peak_spec(peak: Peak) -> PeakSpec:
    """A profile peak with its centre as a minute of the day."""
    return PeakSpec(peak.at.hour * 60 + peak.at.minute, peak.width_minutes, peak.weight)


def burst_spec(burst: Burst) -> BurstSpec:
    """A burst with its start as a minute of the day."""
    at = burst.at.hour * 60 + burst.at.minute
    return BurstSpec(burst.day, at, burst.minutes, burst.visitors)


def _special_day(s: SpecialDay) -> SpecialDaySpec:
    """A special day with its weekday as an index and its hours as minutes."""
    like = WEEKDAYS.index(s.like) if s.like else None
    return SpecialDaySpec(s.name, s.closed, like, _span(s.hours) if s.hours else None, s.factor)


def _crowd_spec(cfg: CrowdConfig, timezone: str) -> CrowdSpec:
    """``crowd_spec`` without the memo."""
    profile = tuple(peak_spec(p) for p in cfg.profile)
    by_day = {k: tuple(peak_spec(p) for p in v) for k, v in cfg.profile_by_day.items()}
    spans = (cfg.opening_hours.get(wd) for wd in WEEKDAYS)
    return CrowdSpec(
        hours=tuple(None if s is None else _span(s) for s in spans),
        weekday_factors=tuple(cfg.weekday_factors.get(wd, 1.0) for wd in WEEKDAYS),
        month_factors=tuple(cfg.month_factors),
        profiles=tuple(by_day.get(wd, profile) for wd in WEEKDAYS),
        base_level=cfg.base_level,
        day_level_cv=cfg.day_level_cv,
        group_size_mean=cfg.group_size_mean,
        group_sizes=None if cfg.group_sizes is None else tuple(cfg.group_sizes),
        dwell_median_minutes=cfg.dwell_median_minutes,
        dwell_sigma=cfg.dwell_sigma,
        country=_country(cfg.holidays, timezone),
        special_days=MappingProxyType({s.day: _special_day(s) for s in cfg.special_days}),
        closed_dates=frozenset(cfg.closed_dates),
        day_factors=MappingProxyType(dict(cfg.day_factors)),
        bursts=tuple(burst_spec(b) for b in cfg.bursts),
        sweep_minutes=cfg.sweep_minutes,
        closing_taper_minutes=cfg.closing_taper_minutes,
    )


#: Crowd specs by (config object, time zone); the config is held so its id stays its own.
_CROWDS: dict[tuple[int, str], tuple[CrowdConfig, CrowdSpec]] = {}


def crowd_spec(cfg: CrowdConfig, timezone: str) -> CrowdSpec:
    """The crowd of a config in a time zone, built once per config object (a fleet's
    devices made from one template share theirs)."""
    key = (id(cfg), timezone)
    hit = _CROWDS.get(key)
    if hit is None:
        if len(_CROWDS) >= 4096:
            _CROWDS.clear()
        hit = _CROWDS[key] = (cfg, _crowd_spec(cfg, timezone))
    return hit[1]


#: Counter and frame specs by config object, held so its id stays its own (a fleet's
#: devices made from one template share one config, so one spec).
_SHARED: dict[int, tuple[object, object]] = {}
_T = TypeVar("_T")


def _shared(cfg: object, build: Callable[[], _T]) -> _T:
    """The spec of a config object, built once."""
    hit = _SHARED.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_SHARED) >= 4096:
            _SHARED.clear()
        hit = _SHARED[id(cfg)] = (cfg, build())
    return cast(_T, hit[1])


def counter_spec(cfg: CounterConfig) -> CounterSpec:
    """The counter's error probabilities (shared by the devices of one config)."""
    return _shared(
        cfg, lambda: CounterSpec(cfg.miss_in, cfg.miss_out, cfg.double_in, cfg.double_out)
    )


def frames_spec(cfg: FramesConfig) -> FramesSpec:
    """The frame-rate settings (shared by the devices of one config)."""
    return _shared(
        cfg,
        lambda: FramesSpec(
            cfg.nominal_fps,
            cfg.minute_jitter,
            cfg.frame_jitter,
            cfg.crowd_drop,
            cfg.crowd_scale,
            cfg.min_fps,
        ),
    )


def doors_spec(doors: Sequence[DeviceConfig]) -> SiteSpec:
    """The site of these devices (one device: a lone door keyed by its id)."""
    first = doors[0]
    return SiteSpec(
        name=f"site:{first.site}" if first.site is not None else f"device:{first.id}",
        timezone=first.timezone,
        crowd=crowd_spec(first.crowd, first.timezone),
        child_share=first.counter.child_share,
        door_ids=tuple(d.id for d in doors),
        daily_visitors=tuple(d.crowd.daily_visitors for d in doors),
        exit_shares=tuple(d.crowd.exit_share for d in doors),
        counters=tuple(counter_spec(d.counter) for d in doors),
    )


def site_spec(scenario: Scenario, device_id: str) -> SiteSpec:
    """The site a device of a scenario belongs to (itself alone if it has no ``site``)."""
    return doors_spec(scenario.site_doors(device_id))


def site_specs(scenario: Scenario) -> dict[str, SiteSpec]:
    """Every device's site by device id; the doors of a site share one ``SiteSpec``."""
    sites = scenario.sites()
    out: dict[str, SiteSpec] = {}
    for d in scenario.devices:
        if d.id not in out:
            spec = doors_spec(sites[d.site] if d.site is not None else [d])
            out.update((i, spec) for i in spec.door_ids)
    return out
