"""The model's inputs: plain frozen specs of numbers, tuples, minute ranges and dates.

Times of day are minutes since local midnight, weekdays are indices (0 = Monday), opening
hours are ``(open, close)`` minute ranges (None: closed). ``simulator.specs`` builds these
from a scenario once; nothing here knows the scenario's schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

#: Opening and closing minute of a local day (half-open: open ≤ minute < close).
Hours = tuple[int, int]


@dataclass(frozen=True)
class PeakSpec:
    """A bump of the time-of-day profile: a Gaussian centred on a minute of the day."""

    at: int
    width_minutes: float
    weight: float


@dataclass(frozen=True)
class BurstSpec:
    """About ``visitors`` people arriving over ``minutes`` from minute ``start`` of ``day``."""

    day: date
    start: int
    minutes: int
    visitors: float


@dataclass(frozen=True)
class SpecialDaySpec:
    """A day unlike its weekday: opens ``like`` another weekday, own hours, closed, factor."""

    name: str
    closed: bool
    like: int | None
    hours: Hours | None
    factor: float


@dataclass(frozen=True, eq=False)
class CrowdSpec:
    """A site's crowd: when it opens, how busy each day is, groups, dwell, bursts.

    Per weekday (index 0 = Monday): ``hours``, ``weekday_factors`` and ``profiles`` (the
    time-of-day peaks of that day). ``country`` picks the built-in holiday calendar (None:
    none); special days, closed days and day factors are keyed by their dates.
    """

    hours: tuple[Hours | None, ...]
    weekday_factors: tuple[float, ...]
    month_factors: tuple[float, ...]
    profiles: tuple[tuple[PeakSpec, ...], ...]
    base_level: float
    day_level_cv: float
    group_size_mean: float
    group_sizes: tuple[float, ...] | None
    dwell_median_minutes: float
    dwell_sigma: float
    country: str | None
    special_days: Mapping[date, SpecialDaySpec]
    closed_dates: frozenset[date]
    day_factors: Mapping[date, float]
    bursts: tuple[BurstSpec, ...]
    sweep_minutes: int
    closing_taper_minutes: int


@dataclass(frozen=True)
class CounterSpec:
    """What counting adds to the truth: probabilities of misses and double counts."""

    miss_in: float
    miss_out: float
    double_in: float
    double_out: float


@dataclass(frozen=True)
class FramesSpec:
    """The frame rate: nominal, relative jitters, the crowd dip and the floor."""

    nominal_fps: float
    minute_jitter: float
    frame_jitter: float
    crowd_drop: float
    crowd_scale: float
    min_fps: float
