"""Statistical proof that the generated crowd looks real (fixed seeds, wide margins).

Each check would fail for a plain Poisson model: its half-hour variance/mean is 1, its
day-to-day coefficient of variation a few percent. Sample sizes are chosen so that the
tolerances are several standard errors wide.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from simulator.model import rng
from simulator.model.counter import Restart, occupancy
from simulator.model.crowd import SiteSpec, crowds
from simulator.model.site import SiteDays, site_days
from simulator.schema.load import parse_scenario
from simulator.schema.scenario import CounterConfig, CrowdConfig, DeviceConfig, SpecialDay
from simulator.specs import doors_spec, site_spec

SEED = 2024
TWO_YEARS = [date(2023, 1, 2) + timedelta(days=i) for i in range(728)]
FLAT = {  # every day alike: same hours, no weekday, month or holiday effects
    "opening_hours": {d: "10:00-20:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "weekday_factors": {},
    "month_factors": [1.0] * 12,
    "holidays": "none",
}


def lone(
    counter: CounterConfig | None = None, tz: str = "Europe/Stockholm", **crowd: object
) -> SiteSpec:
    """A lone door with these crowd (and counter) settings."""
    cfg = DeviceConfig(
        crowd=CrowdConfig.model_validate(crowd), counter=counter or CounterConfig(), timezone=tz
    )
    return doors_spec([cfg])


def day_totals(sd: SiteDays, door: int = 0) -> np.ndarray:
    """Counted in per day."""
    return np.add.reduceat(sd.counts[door].in_, sd.groups.offsets[:-1])


def half_hour_dispersion(sd: SiteDays) -> float:
    """Mean over the open half hours of variance/mean across (identically planned) days."""
    days = len(sd.groups.days)
    per_day = sd.counts[0].in_.reshape(days, 48, 30).sum(axis=2)
    mean, var = per_day.mean(axis=0), per_day.var(axis=0, ddof=1)
    open_ = mean > 20
    return float((var[open_] / mean[open_]).mean())


Store = tuple[SiteSpec, SiteDays]


@pytest.fixture(scope="module")
def default_store() -> Store:
    """Two years of the default store."""
    spec = lone()
    return spec, site_days(spec, SEED, TWO_YEARS)


def ordinary(spec: SiteSpec, days: list[date]) -> np.ndarray:
    """Which days are ordinary (no holiday or special day; open)."""
    return np.array([not spec.is_unusual(d) and spec.plan(d).hours is not None for d in days])


# ---- over-dispersion ----------------------------------------------------------------------
def two_years(store: Store) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The store's day totals over TWO_YEARS, which days are ordinary, their weekday, month."""
    spec, sd = store
    wd = np.array([d.weekday() for d in TWO_YEARS])
    month = np.array([d.month for d in TWO_YEARS])
    return day_totals(sd).astype(float), ordinary(spec, TWO_YEARS), wd, month


def test_half_hour_counts_are_over_dispersed_by_groups() -> None:
    days = TWO_YEARS[:300]
    grouped = site_days(lone(tz="UTC", day_level_cv=0.0, **FLAT), SEED, days)
    ratio = half_hour_dispersion(grouped)
    # Compound Poisson with geometric groups of mean 1.5: E[S²]/E[S] = 2.0.
    assert 1.75 < ratio < 2.25
    # The same machinery with single visitors, no counting errors: Poisson (ratio 1).
    exact = CounterConfig(miss_in=0, miss_out=0, double_in=0, double_out=0)
    single = lone(exact, tz="UTC", day_level_cv=0.0, group_sizes=[1.0], **FLAT)
    assert 0.88 < half_hour_dispersion(site_days(single, SEED, days)) < 1.12


def test_default_store_half_hours_are_well_over_dispersed(default_store: Store) -> None:
    _, sd = default_store
    counts = sd.counts[0].in_.reshape(len(TWO_YEARS), 48, 30).sum(axis=2)
    wednesdays = [k for k, d in enumerate(TWO_YEARS) if d.weekday() == 2 and d.month in (3, 4, 5)]
    sub = counts[wednesdays]
    mean, var = sub.mean(axis=0), sub.var(axis=0, ddof=1)
    open_ = mean > 20
    assert (var[open_] / mean[open_]).mean() > 2.5  # groups, and the day level on top


# ---- day-level variation ------------------------------------------------------------------
def test_day_to_day_variation_is_that_of_real_doors(default_store: Store) -> None:
    spec, sd = default_store
    totals = day_totals(sd)
    expected = np.array([spec.plan(d).factor for d in TWO_YEARS]) * 1400
    ok = ordinary(spec, TWO_YEARS)
    normalised = totals[ok] / expected[ok]
    cv = normalised.std(ddof=1) / normalised.mean()
    assert 0.17 < cv < 0.24  # configured 0.2 (plus the small count noise)
    assert 0.95 < normalised.mean() < 1.02  # ~1 less the missed share
    flat = site_days(lone(day_level_cv=0.0), SEED, TWO_YEARS)
    n_flat = day_totals(flat)[ok] / expected[ok]
    assert n_flat.std() / n_flat.mean() < 0.06  # without the day level: Poisson-like


def test_weekday_weekend_and_season_ratios(default_store: Store) -> None:
    totals, ok, wd, month = two_years(default_store)
    sat = totals[ok & (wd == 5)].mean()
    tue = totals[ok & (wd == 1)].mean()
    assert sat / tue == pytest.approx(1.35 / 0.85, rel=0.08)
    wf = np.array(
        [
            CrowdConfig().weekday_factors[k]
            for k in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        ]
    )
    by_week = totals / wf[wd]
    dec = by_week[ok & (month == 12)].mean()
    feb = by_week[ok & (month == 2)].mean()
    assert dec / feb == pytest.approx(1.35 / 0.84, rel=0.15)


def test_the_default_week_and_year_follow_published_footfall(default_store: Store) -> None:
    totals, ok, wd, month = two_years(default_store)
    by_day = [totals[ok & (wd == k)].mean() for k in range(7)]
    assert max(by_day) == by_day[5] and min(by_day) == by_day[6]  # Saturday, Sunday
    by_month = [totals[ok & (month == m)].mean() for m in range(1, 13)]
    assert max(by_month) == by_month[11]  # December
    assert sorted(by_month)[:2] == sorted(by_month[:2])  # January and February


def test_a_sale_day_factor_scales_the_day() -> None:
    wednesdays = [d for d in TWO_YEARS if d.weekday() == 2][:100]
    sales = [SpecialDay(day=d, factor=2.0, name="sale") for d in wednesdays[::2]]
    spec = lone(special_days=sales, holidays="none")
    totals = day_totals(site_days(spec, SEED, wednesdays)).astype(float)
    months = np.array([CrowdConfig().month_factors[d.month - 1] for d in wednesdays])
    ratio = (totals[::2] / months[::2]).mean() / (totals[1::2] / months[1::2]).mean()
    assert ratio == pytest.approx(2.0, rel=0.15)


def test_arrivals_peak_late_morning_and_mid_afternoon(default_store: Store) -> None:
    spec, sd = default_store
    weekdays = [k for k, d in enumerate(TWO_YEARS) if d.weekday() < 5 and not spec.is_unusual(d)]
    per_hour = sd.counts[0].in_.reshape(len(TWO_YEARS), 24, 60).sum(axis=2)[weekdays].mean(axis=0)
    assert per_hour[11] > per_hour[10] and per_hour[11] > per_hour[13]  # late morning
    assert per_hour[15] > per_hour[13] and per_hour[15] > per_hour[18]  # mid-afternoon
    assert int(per_hour[10:20].argmax()) + 10 in (14, 15)  # the busiest hour of the day


# ---- children, dwell ----------------------------------------------------------------------
def test_adults_exclude_the_child_share(default_store: Store) -> None:
    _, sd = default_store
    c = sd.counts[0]
    assert c.in_adults.sum() / c.in_.sum() == pytest.approx(0.88, abs=0.005)
    assert c.out_adults.sum() / c.out.sum() == pytest.approx(0.88, abs=0.005)


def test_dwell_is_lognormal_with_the_configured_median(default_store: Store) -> None:
    spec, sd = default_store
    g = sd.groups
    close = np.array([spec.plan(d).hours[1] if spec.plan(d).hours else 0 for d in g.days])
    early = g.arrive < close[g.day] - 240  # far from closing: not swept out
    dwell = (g.leave - g.arrive)[early]
    assert np.median(dwell) == pytest.approx(20, abs=1)
    assert np.log(np.maximum(dwell, 0.5)).std() == pytest.approx(0.7, abs=0.06)


# ---- sites --------------------------------------------------------------------------------
def test_a_site_balances_and_each_door_gets_its_share() -> None:
    sc = parse_scenario("""
devices:
  - {id: a, site: m, serial: ACCC8E000001, crowd: {daily_visitors: 800, exit_share: 0.9}}
  - {id: b, site: m, serial: ACCC8E000002, crowd: {daily_visitors: 400, exit_share: 0.2}}
  - {id: c, site: m, serial: ACCC8E000003, crowd: {daily_visitors: 200, exit_share: 0.2}}
""")  # fmt: skip
    sd = site_days(site_spec(sc, "a"), SEED, TWO_YEARS[:120])
    truth = crowds(sd.groups)
    ins = np.array([(t.in_adults + t.in_children).sum() for t in truth], dtype=float)
    outs = np.array([(t.out_adults + t.out_children).sum() for t in truth], dtype=float)
    assert ins.sum() == outs.sum()
    assert ins / ins.sum() == pytest.approx([4 / 7, 2 / 7, 1 / 7], abs=0.01)
    # Leaving by door i: stay share of its own, plus the others' leavers by entry share.
    e = np.array([800, 400, 200]) / 1400
    stay = np.array([0.9, 0.2, 0.2])
    p = np.diag(stay) + (1 - stay)[:, None] * (e[None, :] * (1 - np.eye(3))) / (1 - e)[:, None]
    assert outs / outs.sum() == pytest.approx(e @ p, abs=0.01)
    counted_in = sum(int(c.in_.sum()) for c in sd.counts)
    counted_out = sum(int(c.out.sum()) for c in sd.counts)
    assert counted_out / counted_in == pytest.approx(1 - 0.015, abs=0.004)  # miss asymmetry


# ---- the device's occupancy estimate ------------------------------------------------------
def test_occupancy_is_never_negative_and_drift_grows_with_traffic() -> None:
    days = TWO_YEARS[:200]
    drift_per_visitor = []
    for visitors in (700.0, 2800.0):
        sd = site_days(lone(daily_visitors=visitors), SEED, days)
        c, o = sd.counts[0], sd.groups.offsets
        ends, totals = [], []
        for k in range(len(days)):
            est = occupancy(c.in_[o[k] : o[k + 1]], c.out[o[k] : o[k + 1]], [])
            assert est.min() >= 0
            ends.append(int(est[-1]))
            totals.append(int(c.in_[o[k] : o[k + 1]].sum()))
        ends_a, totals_a = np.array(ends, float), np.array(totals, float)
        open_ = totals_a > 0
        drift_per_visitor.append(ends_a[open_].mean() / totals_a[open_].mean())
    # miss_out − miss_in + double_in − double_out = 1.5% of the visitors, at any traffic:
    # four times the visitors, four times the drift.
    assert drift_per_visitor == pytest.approx([0.015, 0.015], abs=0.003)


def test_the_daily_reset_clears_the_drift() -> None:
    sd = site_days(lone(), SEED, TWO_YEARS[14:28])
    c, o = sd.counts[0], sd.groups.offsets
    never = occupancy(c.in_, c.out, [])
    daily = occupancy(c.in_, c.out, [Restart(int(i), 0) for i in o[1:-1]])
    midnights = o[1:-1] - 1
    assert (np.diff(never[midnights]) >= 0).sum() >= 10  # without resets it piles up
    assert never[midnights][-1] > 100
    assert (daily[o[1:-1]] == c.in_[o[1:-1]] - c.out[o[1:-1]]).all()  # fresh from 0
    assert daily[midnights].max() < 80 and daily.min() >= 0


# ---- samplers -----------------------------------------------------------------------------
def test_exact_samplers_have_the_right_moments() -> None:
    keys = rng.lane_keys(77, np.arange(40_000), 0)
    for lam in (2.5, 40.0, 900.0):
        x = rng.poisson(keys, np.full(len(keys), lam))
        assert x.mean() == pytest.approx(lam, rel=0.02 if lam < 10 else 0.01)
        assert x.var() == pytest.approx(lam, rel=0.05)
    for shape in (0.6, 25.0):
        g = rng.gamma(keys, np.full(len(keys), shape))
        assert g.mean() == pytest.approx(shape, rel=0.02)
        assert g.var() == pytest.approx(shape, rel=0.05)
