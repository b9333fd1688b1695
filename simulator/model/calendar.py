"""Public holidays and the days shops treat specially, per country (pure, no I/O).

A :class:`Holiday` says how a store's day differs from its weekday: opening as on another
weekday (``like``), its own hours, closed, and a traffic factor on top. The dates of the
Swedish holidays follow the law (Lag (1989:253) om allmänna helgdagar) plus the eves shops
keep short hours on; how a mid-size store opens on each, and how busy it is, is a
judgement documented in docs/MODEL.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from simulator.model.specs import CrowdSpec, Hours

#: The countries with a built-in calendar, and the time zones that pick one by default.
COUNTRY_OF_ZONE = {"Europe/Stockholm": "SE"}


@dataclass(frozen=True)
class Holiday:
    """How a store's day differs: ``like`` a weekday (0 = Monday), own hours, closed, factor."""

    name: str
    like: int | None = None
    hours: Hours | None = None
    closed: bool = False
    factor: float = 1.0


def easter(year: int) -> date:
    """Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def _weekday_on_or_after(d: date, weekday: int) -> date:
    """The first ``weekday`` (0 = Monday) on or after ``d``."""
    return d + timedelta(days=(weekday - d.weekday()) % 7)


SUN = 6
SAT = 5


@lru_cache(maxsize=256)
def sweden(year: int) -> dict[date, Holiday]:
    """Swedish public holidays and eves of a year, with how a mid-size store opens on them."""
    e = easter(year)
    midsummer_eve = _weekday_on_or_after(date(year, 6, 19), 4)
    all_saints = _weekday_on_or_after(date(year, 10, 31), SAT)
    black_friday = _weekday_on_or_after(date(year, 11, 23), 4)  # after Thanksgiving
    days = {
        date(year, 1, 1): Holiday("Nyårsdagen", like=SUN, factor=0.6),
        date(year, 1, 6): Holiday("Trettondedag jul", like=SUN, factor=1.1),
        e - timedelta(days=2): Holiday("Långfredagen", like=SUN, factor=0.6),
        e - timedelta(days=1): Holiday("Påskafton", like=SAT, hours=(600, 960), factor=0.8),
        e: Holiday("Påskdagen", like=SUN, factor=0.5),
        e + timedelta(days=1): Holiday("Annandag påsk", like=SUN, factor=1.0),
        date(year, 5, 1): Holiday("Första maj", like=SUN, factor=0.8),
        e + timedelta(days=39): Holiday("Kristi himmelsfärdsdag", like=SUN, factor=1.0),
        date(year, 6, 6): Holiday("Sveriges nationaldag", like=SUN, factor=0.9),
        midsummer_eve: Holiday("Midsommarafton", hours=(600, 840), factor=0.5),
        midsummer_eve + timedelta(days=1): Holiday("Midsommardagen", like=SUN, factor=0.5),
        all_saints: Holiday("Alla helgons dag", like=SAT, factor=0.8),
        black_friday: Holiday("Black Friday", factor=1.7),
        date(year, 12, 24): Holiday("Julafton", hours=(600, 780), factor=0.8),
        date(year, 12, 25): Holiday("Juldagen", closed=True),
        date(year, 12, 26): Holiday("Annandag jul", like=SUN, factor=1.6),
        date(year, 12, 31): Holiday("Nyårsafton", hours=(600, 900), factor=0.7),
    }
    return days


def holidays(country: str | None, year: int) -> dict[date, Holiday]:
    """The special days of a country's calendar in a year (none for ``None``)."""
    if country == "SE":
        return sweden(year)
    return {}


@dataclass(frozen=True)
class DayPlan:
    """How a store opens on a day: hours (None: closed), traffic factor, and the weekday
    whose profile it follows."""

    hours: Hours | None
    factor: float
    weekday: int
    name: str = ""


def day_plan(crowd: CrowdSpec, day: date) -> DayPlan:
    """A day's hours and factor: its weekday × month, then its holiday or special day.

    An explicit special day replaces the holiday of its date; ``closed_dates`` close and
    ``day_factors`` multiply on top of either.
    """
    special = crowd.special_days.get(day)
    hol = None if special else holidays(crowd.country, day.year).get(day)
    like = special.like if special else None
    if hol is not None and hol.like is not None:
        like = hol.like
    ref = day.weekday() if like is None else like
    hours = crowd.hours[ref]
    factor = crowd.weekday_factors[ref] * crowd.month_factors[day.month - 1]
    name = ""
    if hol is not None:
        name, factor = hol.name, factor * hol.factor
        hours = None if hol.closed else (hol.hours or hours)
    if special is not None:
        name, factor = special.name, factor * special.factor
        hours = None if special.closed else (special.hours or hours)
    if day in crowd.closed_dates:
        hours = None
    factor *= crowd.day_factors.get(day, 1.0)
    return DayPlan(hours, factor if hours is not None else 0.0, ref, name)


def unusual_days(crowd: CrowdSpec, year: int) -> set[date]:
    """The days of a year that ``day_plan`` may treat otherwise than their weekday."""
    out = set(holidays(crowd.country, year))
    out.update(d for d in crowd.special_days if d.year == year)
    out.update(d for d in crowd.closed_dates if d.year == year)
    out.update(d for d in crowd.day_factors if d.year == year)
    return out
