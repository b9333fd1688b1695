"""The crowd model: purity, day plans, sampling tables, random streams, sites, devices."""

from __future__ import annotations

from datetime import date, time, timedelta

import numpy as np
import pytest

from simulator.clock import SimClock
from simulator.device import Device, Site
from simulator.model import rng
from simulator.model.calendar import DayPlan, day_plan, easter, sweden
from simulator.model.counter import Counts, _observe
from simulator.model.crowd import SiteSpec, crowds, simulate
from simulator.model.site import site_days
from simulator.model.tables import (
    TABLE,
    Alias,
    door_tables,
    dwell_table,
    group_table,
    size_weights,
)
from simulator.schema.load import ScenarioError, parse_scenario
from simulator.schema.scenario import Burst, CrowdConfig, DeviceConfig, Scenario, SpecialDay
from simulator.specs import burst_spec, crowd_spec, doors_spec, site_spec, site_specs
from simulator.store import Store

SEED = 11
FIELDS = ("in_", "out", "in_adults", "out_adults")


def lone(**crowd: object) -> SiteSpec:
    """A lone door with these crowd settings."""
    return doors_spec([DeviceConfig(crowd=CrowdConfig.model_validate(crowd))])


def plan(cfg: CrowdConfig, tz: str, day: date) -> DayPlan:
    """The plan of a day for a crowd config in a time zone."""
    return day_plan(crowd_spec(cfg, tz), day)


def span(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def same(a: Counts, b: Counts) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def mall(**extra: object) -> Scenario:
    """A three-door site and a lone door."""
    text = """
seed: 5
devices:
  - {id: north, site: mall, serial: ACCC8E000001, crowd: {daily_visitors: 800, exit_share: 0.7}}
  - {id: south, site: mall, serial: ACCC8E000002, crowd: {daily_visitors: 400, exit_share: 0.3}}
  - {id: east, site: mall, serial: ACCC8E000003, crowd: {daily_visitors: 200, exit_share: 0.2}}
  - {id: shop, serial: ACCC8E000004}
"""
    return parse_scenario(text)


# ---- purity: a day is a function of (scenario, seed, site, day) ------------------------
SPECIAL = [
    date(2024, 3, 31),  # spring DST change (23 hours), Easter Sunday
    date(2024, 10, 27),  # autumn DST change (25 hours)
    date(2024, 12, 25),  # closed (Juldagen)
    date(2024, 6, 8),  # a burst
    date(2024, 11, 29),  # Black Friday
]


def test_a_day_alone_equals_that_day_in_any_batch() -> None:
    spec = lone(bursts=[Burst(day=date(2024, 6, 8), at=time(14), minutes=20, visitors=300)])
    days = span(date(2024, 3, 25), 280)
    full = site_days(spec, SEED, days)
    shuffled = list(reversed(days))
    back = site_days(spec, SEED, shuffled)
    chunks = [site_days(spec, SEED, days[i : i + 7]) for i in range(0, len(days), 7)]
    for d in [*SPECIAL[:2], SPECIAL[3], days[0], days[-1], date(2024, 7, 2)]:
        k = days.index(d)
        alone = site_days(spec, SEED, [d]).day(0, 0)
        assert same(alone, full.day(0, k)), d
        assert same(alone, back.day(0, shuffled.index(d))), d
        assert same(alone, chunks[k // 7].day(0, k % 7)), d


def test_a_site_day_alone_equals_the_site_day_in_a_batch() -> None:
    spec = site_spec(mall(), "south")
    days = span(date(2024, 12, 20), 12)
    full = site_days(spec, 5, days)
    for k, d in enumerate(days):
        alone = site_days(spec, 5, [d])
        for door in range(3):
            assert same(alone.day(door, 0), full.day(door, k)), (d, door)


def test_the_seed_decides() -> None:
    spec = lone()
    d = [date(2024, 5, 14)]
    a, b, c = (site_days(spec, s, d).day(0, 0) for s in (1, 1, 2))
    assert same(a, b)
    assert not np.array_equal(a.in_, c.in_)


def test_sites_and_devices_draw_from_their_own_streams() -> None:
    specs = site_specs(mall())
    d = [date(2024, 5, 14)]
    assert specs["north"] is specs["south"] is specs["east"]
    shop = site_days(specs["shop"], 5, d).day(0, 0)
    north = site_days(specs["north"], 5, d).day(0, 0)
    assert not np.array_equal(shop.in_, north.in_)


# ---- the shape of a day -------------------------------------------------------------------
def test_dst_days_have_23_and_25_hours_of_minutes() -> None:
    sd = site_days(lone(), SEED, SPECIAL[:2])
    assert [len(sd.day(0, k).in_) for k in range(2)] == [1380, 1500]


def test_counts_are_sane_and_read_only() -> None:
    sd = site_days(site_spec(mall(), "north"), 5, span(date(2024, 1, 1), 60))
    for c in sd.counts:
        assert (c.in_ >= c.in_adults).all() and (c.in_adults >= 0).all()
        assert (c.out >= c.out_adults).all() and (c.out_adults >= 0).all()
        with pytest.raises(ValueError):
            c.in_[0] = 1


def test_arrivals_only_while_open_and_everybody_gone_by_midnight() -> None:
    spec = lone()
    days = span(date(2024, 2, 5), 28)
    sd = site_days(spec, SEED, days)
    truth = crowds(sd.groups)[0]
    people_in = truth.in_adults + truth.in_children
    people_out = truth.out_adults + truth.out_children
    for k, d in enumerate(days):
        a, b = sd.groups.offsets[k], sd.groups.offsets[k + 1]
        hours = spec.plan(d).hours
        assert hours is not None
        inside = np.cumsum(people_in[a:b] - people_out[a:b])
        assert inside.min() >= 0 and inside[-1] == 0
        minute = np.arange(b - a)
        assert people_in[a:b][(minute < hours[0]) | (minute >= hours[1])].sum() == 0
        assert people_out[a:b][minute >= hours[1] + spec.crowd.sweep_minutes].sum() == 0
        assert people_in[a:b].sum() > 0


def test_closed_days_holidays_and_special_days() -> None:
    xmas = date(2024, 12, 25)
    assert site_days(lone(), SEED, [xmas]).day(0, 0).in_.sum() == 0
    assert site_days(lone(holidays="none"), SEED, [xmas]).day(0, 0).in_.sum() > 500
    closed = lone(closed_dates=[date(2024, 5, 14)], special_days=[
        SpecialDay(day=date(2024, 5, 15), closed=True),
        SpecialDay(day=date(2024, 5, 16), hours="12:00-14:00"),
    ])  # fmt: skip
    sd = site_days(closed, SEED, span(date(2024, 5, 14), 3))
    assert sd.day(0, 0).in_.sum() == 0 and sd.day(0, 1).in_.sum() == 0
    thursday = sd.day(0, 2).in_
    assert thursday[720:840].sum() > 0 and thursday[:720].sum() == thursday[840:].sum() == 0


def test_day_plans() -> None:
    c = CrowdConfig()
    tz = "Europe/Stockholm"
    ordinary = plan(c, tz, date(2024, 3, 6))
    assert ordinary.hours == (600, 1200) and ordinary.factor == pytest.approx(0.9 * 0.93)
    assert plan(c, tz, date(2024, 12, 24)).hours == (600, 780)
    assert plan(c, tz, date(2024, 12, 25)).hours is None
    easter_monday = plan(c, tz, date(2024, 4, 1))
    assert easter_monday.hours == (660, 1020) and easter_monday.weekday == 6
    assert plan(c, tz, date(2024, 11, 29)).name == "Black Friday"
    assert plan(c, "Europe/Berlin", date(2024, 12, 25)).hours == (600, 1200)
    sale = c.model_copy(update={"special_days": [SpecialDay(day=date(2024, 3, 6), factor=2)]})
    assert plan(sale, tz, date(2024, 3, 6)).factor == pytest.approx(2 * 0.9 * 0.93)
    like = c.model_copy(update={"special_days": [SpecialDay(day=date(2024, 3, 6), like="sat")]})
    assert plan(like, tz, date(2024, 3, 6)).hours == (600, 1080)


def test_easter_and_the_swedish_calendar() -> None:
    assert [easter(y) for y in (2024, 2025, 2026, 2038)] == [
        date(2024, 3, 31), date(2025, 4, 20), date(2026, 4, 5), date(2038, 4, 25),
    ]  # fmt: skip
    names = {d: h.name for d, h in sweden(2025).items()}
    assert names[date(2025, 6, 20)] == "Midsommarafton"
    assert names[date(2025, 5, 29)] == "Kristi himmelsfärdsdag"
    assert names[date(2025, 11, 1)] == "Alla helgons dag"
    assert names[date(2025, 11, 28)] == "Black Friday"


def test_a_burst_adds_only_its_own_visitors() -> None:
    d = date(2024, 6, 5)
    burst = Burst(day=d, at=time(15, 0), minutes=10, visitors=3000)
    plain = site_days(lone(), SEED, [d])
    with_ = site_days(lone(bursts=[burst]), SEED, [d])
    extra = with_.day(0, 0).in_ - plain.day(0, 0).in_
    assert (extra >= 0).all()
    assert extra[:900].sum() == 0 and extra[910:].sum() == 0
    assert 2500 < extra.sum() < 3400  # ~3000 less ~2% missed; sd ~ 80
    injected = site_days(lone(), SEED, [d], bursts={d: [burst_spec(burst)]})
    assert same(injected.day(0, 0), with_.day(0, 0))


def test_burst_times_must_be_quoted() -> None:
    text = "devices:\n  - crowd: {bursts: [{day: 2024-06-05, at: 14:00, visitors: 9}]}\n"
    with pytest.raises(ScenarioError, match="write local times in quotes"):
        parse_scenario(text)


# ---- tables and random streams ------------------------------------------------------------
def test_alias_tables_are_exact() -> None:
    w = np.array([0.5, 3.0, 0.0, 1.5, 5.0])
    t = Alias.build(np.array([10, 11, 12, 13, 14]), w)
    p = np.zeros(15)
    frac = t.threshold.astype(np.float64) / 2.0**32
    np.add.at(p, t.first, frac)
    np.add.at(p, t.alias, 1.0 - frac)
    assert np.allclose(p[10:] / p.sum(), w / w.sum(), atol=1e-9)


def test_group_table_children_accompany_adults() -> None:
    g = group_table(size_weights(crowd_spec(CrowdConfig(), "UTC")), 0.12)
    assert g.mean == pytest.approx(1.5, abs=0.01)
    assert g.children.sum() / g.size.sum() == pytest.approx(0.12, abs=0.002)
    assert (g.children < g.size).all()  # nobody under the threshold comes alone
    assert len(g.size) == TABLE
    fixed = group_table((0.0, 1.0), 0.0)
    assert (fixed.size == 2).all() and (fixed.children == 0).all()


def test_dwell_and_door_tables() -> None:
    dwell = dwell_table(20.0, 0.7)
    assert np.median(dwell) == 20 and dwell.mean() == pytest.approx(20 * np.exp(0.245), rel=0.02)
    entry, exits = door_tables((800.0, 400.0, 200.0), (0.7, 0.3, 0.2))
    assert np.bincount(entry, minlength=3) / TABLE == pytest.approx([4 / 7, 2 / 7, 1 / 7], abs=1e-4)
    from_south = np.bincount(exits[TABLE : 2 * TABLE], minlength=4) / TABLE
    assert from_south == pytest.approx([0.7 * 0.8, 0.3, 0.7 * 0.2, 0], abs=1e-4)
    _, lone_exit = door_tables((1.0,), (0.6,))
    assert np.bincount(lone_exit, minlength=2) / TABLE == pytest.approx([0.6, 0.4], abs=1e-4)


def test_runs_are_the_streams_outputs() -> None:
    keys = rng.lane_keys(99, np.array([5, 6, 7]), 1)
    start, length = np.array([0, 4, 2]), np.array([3, 0, 5])
    expected = np.concatenate(
        [
            rng.bits(keys[i], np.arange(s, s + n))
            for i, (s, n) in enumerate(zip(start, length, strict=True))
        ]
    )
    assert np.array_equal(rng.runs(keys, start, length), expected)


def test_sparse_errors_are_bernoulli_trials_whatever_the_budget() -> None:
    keys = rng.lane_keys(3, np.arange(6), 8)
    n = np.array([0, 1, 50, 400, 3, 1000])
    p = np.array([0.5, 0.9, 0.7, 0.35, 1.0, 0.02])
    seg, pos, j = _observe(keys, n, p)
    for s in range(len(n)):
        # The reference: walk the lane one uniform per hit, gaps ~ geometric(p).
        hits, at, i = [], -1, 0
        while True:
            u = rng.uniform(keys[s], i)[0]
            at += 1 + (int(np.floor(np.log1p(-u) / np.log1p(-p[s]))) if p[s] < 1 else 0)
            if at >= n[s]:
                break
            hits.append(at)
            i += 1
        assert pos[seg == s].tolist() == hits, s
        assert j[seg == s].tolist() == list(range(len(hits)))


# ---- sites and devices --------------------------------------------------------------------
def test_sites_are_validated() -> None:
    bad = "devices:\n  - {id: a, site: m}\n  - {id: b, site: m, crowd: {dwell_sigma: 0.2}}\n"
    with pytest.raises(ScenarioError, match="the doors' crowd settings differ"):
        parse_scenario(bad)
    zones = "devices:\n  - {id: a, site: m}\n  - {id: b, site: m, timezone: Europe/Oslo}\n"
    with pytest.raises(ScenarioError, match="different time zones"):
        parse_scenario(zones)
    assert [d.id for d in mall().site_doors("east")] == ["north", "south", "east"]


def test_a_site_balances_while_its_doors_need_not() -> None:
    sd = site_days(site_spec(mall(), "north"), 5, span(date(2024, 4, 8), 14))
    truth = crowds(sd.groups)
    ins = [t.in_adults + t.in_children for t in truth]
    outs = [t.out_adults + t.out_children for t in truth]
    assert sum(int(x.sum()) for x in ins) == sum(int(x.sum()) for x in outs)
    assert abs(int(ins[2].sum()) - int(outs[2].sum())) > 100  # east: 200 in, ~370 out a day


def test_device_counts_come_from_the_model_in_blocks() -> None:
    sc = Scenario()
    device = Device(sc.devices[0], 0, SEED, SimClock(start=1.75e9, speed=0), Store())
    d = date(2025, 3, 5)
    got = device.counts(d)
    assert same(got, site_days(site_spec(sc, "entrance"), SEED, [d]).day(0, 0))
    neighbour = d + timedelta(days=1)
    assert device.cached(neighbour) is None  # one request, one day
    device.prefetch([neighbour, d + timedelta(days=2)])  # exports draw blocks of days
    assert device.cached(neighbour) is not None
    alone = site_days(site_spec(sc, "entrance"), SEED, [neighbour]).day(0, 0)
    assert same(device.counts(neighbour), alone)
    assert device.counts(device.installed - timedelta(days=1)).in_.sum() == 0


def test_a_site_device_counts_its_door() -> None:
    sc = mall()
    specs = site_specs(sc)
    site = Site(specs["south"], "north")
    device = Device(sc.devices[1], 1, 5, SimClock(start=1.75e9, speed=0), Store(), site=site)
    d = date(2025, 3, 5)
    assert same(device.counts(d), site_days(specs["south"], 5, [d]).day(1, 0))


def test_groups_expose_sizes_days_and_doors() -> None:
    g = simulate(site_spec(mall(), "north"), 5, span(date(2024, 4, 8), 3))
    assert len(g.day) == len(g.size) == len(g.children) == len(g.arrive)
    assert (np.diff(g.day) >= 0).all() and g.day[-1] == 2
    entry, exit_ = g.doors()
    assert set(np.unique(entry)) == {0, 1, 2} and set(np.unique(exit_)) <= {0, 1, 2}
    assert (g.leave >= g.arrive).all()
