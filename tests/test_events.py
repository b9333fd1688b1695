"""Timeline events: every kind's effect, due order, advance semantics, durability, replay."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from simulator.api.faults import Faults
from simulator.clock import SimClock
from simulator.runtime.events import EVENT
from simulator.runtime.runtime import Runtime
from simulator.schema.load import ScenarioError, parse_scenario
from simulator.schema.timeline import parse_duration
from simulator.store import Store
from tests.conftest import T0, make_fleet

DAY = date(2024, 6, 7)  # T0's local day (13:30 UTC = 15:30 CEST, the store is open)


def ev(**kw: object):  # type: ignore[no-untyped-def]
    return EVENT.validate_python(kw)


def in_sum(fleet: Runtime, dev: str = "entrance", day: date = DAY) -> int:
    return int(fleet.fleet.by_id[dev].counts(day).in_.sum())


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90 and parse_duration(15) == 15
    assert parse_duration("2d") == 172800 and parse_duration("500ms") == 0.5
    for bad in ("soon", "1x", "", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_burst_adds_visitors_from_its_time_only() -> None:
    fleet = make_fleet()
    before = fleet.fleet.by_id["entrance"].counts(DAY).in_.copy()
    fleet.inject(ev(kind="burst", visitors=300, minutes=10))
    after = fleet.fleet.by_id["entrance"].counts(DAY).in_
    i = fleet.fleet.by_id["entrance"].grid(DAY).index_of(T0)
    assert np.array_equal(after[:i], before[:i])  # the past is unchanged
    assert after[i : i + 10].sum() - before[i : i + 10].sum() > 200


def test_door_closed_counts_nothing_then_opens() -> None:
    fleet = make_fleet()
    dev = fleet.fleet.by_id["entrance"]
    fleet.inject(ev(kind="door_closed", minutes=60))
    assert dev.is_door_closed(dev.clock.now())
    i = dev.grid(DAY).index_of(T0)
    c = dev.counts(DAY)
    assert c.in_[i + 1 : i + 60].sum() == 0 and c.out[i + 1 : i + 60].sum() == 0
    assert c.in_[i + 61 : i + 120].sum() > 0
    assert not dev.is_door_closed(T0 + 3601)
    fleet.inject(ev(kind="door_closed"))
    fleet.inject(ev(kind="door_open", at=_iso(T0 - 60)))  # due in the past: at once
    # ... at its own time, before the closing: still closed
    assert dev.is_door_closed(dev.clock.now())


def test_fps_drop_io_adjust_reboot() -> None:
    fleet = make_fleet()
    dev = fleet.fleet.by_id["entrance"]
    fps = dev.frame_stats(dev.clock.now()).fps
    fleet.inject(ev(kind="fps", percent=25, minutes=10))
    fleet.scheduler.advance_to(T0 + 120)
    assert dev.frame_stats(dev.clock.now()).fps < fps * 0.4
    fleet.scheduler.advance_to(T0 + 700)
    assert dev.frame_stats(dev.clock.now()).fps > fps * 0.6
    fleet.inject(ev(kind="io", active=True))
    assert dev.io_output(dev.clock.now())
    fleet.inject(ev(kind="adjust_occupancy", occupancy=5))
    assert dev.realtime(dev.clock.now()).occupancy == 5
    frames = dev.frame_count(dev.clock.now())
    fleet.inject(ev(kind="reboot"))
    assert dev.frame_count(dev.clock.now()) == 0 and dev.uptime(dev.clock.now()) == 0
    fleet.scheduler.advance_to(fleet.clock.now() + 60)
    assert 0 < dev.frame_count(dev.clock.now()) < frames and dev.uptime(dev.clock.now()) == 60
    assert dev.counts(DAY).in_.sum() > 0  # stored data kept


def test_push_outage_and_restore() -> None:
    sc = parse_scenario("devices:\n  - push: {url: 'http://127.0.0.1:9/in', allow_http: true}\n")
    fleet = make_fleet(sc)
    out = fleet.events.outages
    fleet.inject(ev(kind="push_outage", minutes=30))
    assert out.down("entrance", T0) and not out.down("entrance", T0 + 1801)
    fleet.inject(ev(kind="push_outage"))
    fleet.inject(ev(kind="push_restore", after=3600 * 24))  # start + 1 day: later
    fleet.scheduler.advance_to(T0 + 3600 * 23)
    assert out.down("entrance", fleet.clock.now())
    fleet.scheduler.advance_to(T0 + 3600 * 25)
    assert not out.down("entrance", fleet.clock.now())


def test_faults_on_and_off_by_events() -> None:
    fleet = make_fleet()
    table = Faults()
    fleet.faults.attach(table)  # as the application's fault table is
    fleet.inject(ev(kind="fault_on", fault={"id": "x", "status": 503}))
    assert table.active and "x" in table.rules
    fleet.inject(ev(kind="fault_off", id="x"))
    assert not table.active


def test_advance_applies_everything_due_in_order_and_nothing_twice() -> None:
    fleet = make_fleet()
    order = []
    for minutes in (50, 10, 30, 10):
        s = fleet.inject(ev(kind="io", active=minutes > 20, at=_iso(T0 + 60 * minutes)))
        order.append((s.due, s.id))
    ran = fleet.scheduler.advance_to(T0 + 3600)
    assert [(s.due, s.id) for s in ran] == sorted(order)
    assert fleet.events.scheduled() == [] and fleet.scheduler.advance_to(T0 + 7200) == []
    assert fleet.clock.now() == T0 + 7200


def test_clock_jump_moves_the_target_and_runs_what_falls_due() -> None:
    fleet = make_fleet()
    fleet.inject(ev(kind="clock_jump", by="1h", at=_iso(T0 + 600)))
    late = fleet.inject(ev(kind="reboot", at=_iso(T0 + 3000)))
    fleet.scheduler.advance_to(T0 + 1200)
    assert fleet.clock.now() == T0 + 1200 + 3600
    assert late.applied


async def test_advance_produces_pushes_that_fell_due() -> None:
    sc = parse_scenario(
        "devices:\n  - push: {url: 'http://127.0.0.1:9/in', allow_http: true, "
        "interval_minutes: 15}\n"
    )
    fleet = make_fleet(sc)
    await fleet.start()
    try:
        fleet.scheduler.advance_to(T0 + 3600 + 45)  # a push leaves up to 45 s after its end
        assert fleet.pusher.stats("entrance").produced == 4  # before advance_to returned
    finally:
        await fleet.stop()


def test_events_are_durable_and_timeline_loaded_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "sim.db"
    sc = parse_scenario("timeline:\n  - {after: 10m, kind: reboot}\n")
    fleet = Runtime(sc, SimClock(start=T0, speed=0), Store(db))
    fleet.inject(ev(kind="adjust_occupancy", occupancy=9))
    fleet.scheduler.advance_to(T0 + 900)
    fleet.store.close()
    again = Runtime(sc, SimClock(start=T0 + 900, speed=0), Store(db))
    assert len(again.events.applied()) == 2 and again.events.scheduled() == []
    entrance = again.fleet.by_id["entrance"]
    assert entrance.boot_time(entrance.clock.now()) == T0 + 600


def test_same_exports_however_the_clock_moved() -> None:
    sc = parse_scenario(
        "timeline:\n  - {after: 20m, kind: burst, visitors: 120}\n"
        "  - {after: 50m, kind: door_closed, minutes: 15}\n"
    )
    one = make_fleet(sc)
    one.scheduler.advance_to(T0 + 7200)
    many = make_fleet(sc)
    for k in range(1, 25):
        many.scheduler.advance_to(T0 + 300 * k)
    a, b = one.fleet.by_id["entrance"].counts(DAY), many.fleet.by_id["entrance"].counts(DAY)
    assert np.array_equal(a.in_, b.in_) and np.array_equal(a.out, b.out)


def test_timeline_schema_errors_are_located() -> None:
    cases = {
        "timeline:\n  - {kind: burst}\n": "line 2: timeline.0.visitors: Field required",
        "timeline:\n  - {kind: reboot, device: x}\n": "line 2: timeline.0: no device 'x'",
        "timeline:\n  - {kind: reboot, at: 2024-01-01T00:00:00Z, after: 5m}\n": "not both",
        "timeline:\n  - {kind: clock_jump}\n": "exactly one of to",
        "timeline:\n  - {kind: nope}\n": "use one of the listed kinds",
        "timeline:\n  - {kind: reboot, after: soon}\n": "timeline.0.after",
        "faults:\n  - {path: /x}\n": "a fault needs an effect",
        "faults:\n  - {status: 503, device: q}\n": "faults.0: no device 'q'",
        "devices:\n  - {id: a, site: s}\n  - {id: b, site: s, occupancy: {role: secondary}}\n"
        "timeline:\n  - {kind: adjust_occupancy, device: b, occupancy: 1}\n": "site's primary",
        "fleet: {count: 0}\n": "fleet.count",
        "devices: []\n": "no devices",
    }
    for text, expected in cases.items():
        with pytest.raises(ScenarioError) as e:
            parse_scenario(text)
        assert expected in str(e.value), (text, str(e.value))


def test_fleet_template_expands() -> None:
    sc = parse_scenario("fleet: {count: 3, id_prefix: d, template: {timezone: UTC}}\n")
    assert [d.id for d in sc.devices] == ["d0000", "d0001", "d0002"]
    assert [d.serial for d in sc.devices][-1] == "ACCC8E000002"
    assert {d.timezone for d in sc.devices} == {"UTC"}


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat()
