"""Timeline events due while the database is locked are applied once it is free, never lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from simulator.clock import SimClock
from simulator.runtime.runtime import Runtime
from simulator.schema.load import parse_scenario
from simulator.store import Store, StoreBusy
from tests.conftest import T0

SCENARIO = """
name: locked
devices: [{id: entrance}]
timeline:
  - {after: 60, kind: io, device: entrance, active: true}
  - {after: 60, kind: burst, visitors: 200, minutes: 5}
  - {after: 120, kind: door_closed, device: entrance}
"""


def _fleet(tmp_path: Path) -> tuple[Runtime, Path]:
    db = tmp_path / "sim.db"
    clock = SimClock(start=T0, speed=0)
    return Runtime(parse_scenario(SCENARIO), clock, Store(db)), db


def _locked(db: Path) -> sqlite3.Connection:
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_events_due_during_a_lock_apply_after_it_once(tmp_path: Path) -> None:
    fleet, db = _fleet(tmp_path)
    dev = fleet.fleet.by_id["entrance"]
    day = dev.local_date(T0)
    before = int(dev.counts(day).in_.sum())
    other = _locked(db)
    fleet.clock.set(T0 + 90)
    assert fleet.scheduler.run_due() == []  # nothing can be recorded: everything stays due
    assert not dev.io_output(dev.clock.now()) and len(fleet.events.scheduled()) == 3
    assert fleet.scheduler.run_due() == []  # a second try while locked changes nothing
    other.execute("ROLLBACK")
    done = fleet.scheduler.run_due()
    assert [s.event.kind for s in done] == ["io", "burst"]
    assert dev.io_output(dev.clock.now())
    after = int(dev.counts(day).in_.sum())
    assert 150 < after - before <= 260  # the burst counted once, not once per try
    marks = {due - T0: applied for _, _, due, _, applied in fleet.store.events()}
    assert marks == {60: True, 120: False}  # recorded as applied: a restart does not redo them


def test_a_burst_applied_while_its_mark_cannot_be_written_is_not_doubled(tmp_path: Path) -> None:
    fleet, db = _fleet(tmp_path)
    dev = fleet.fleet.by_id["entrance"]
    day = dev.local_date(T0)
    fleet.clock.set(T0 + 30)
    fleet.scheduler.run_due()
    base = int(dev.counts(day).in_.sum())
    fleet.scheduler.run_due(T0 + 60)  # io and burst applied and marked
    once = int(dev.counts(day).in_.sum())
    other = _locked(db)
    fleet.clock.set(T0 + 130)
    fleet.scheduler.run_due()  # the door cannot be recorded: stays due
    other.execute("ROLLBACK")
    fleet.scheduler.run_due()
    assert dev.is_door_closed(T0 + 130)
    assert once > base and int(dev.counts(day).in_.sum()) <= once  # closed door: no new counts


def test_advancing_through_a_locked_event_stops_there_and_says_so(tmp_path: Path) -> None:
    fleet, db = _fleet(tmp_path)
    other = _locked(db)
    with pytest.raises(StoreBusy):
        fleet.scheduler.advance_to(T0 + 600)
    assert fleet.clock.now() == pytest.approx(T0 + 60)  # stopped at the first due event
    other.execute("ROLLBACK")
    fleet.scheduler.advance_to(T0 + 600)
    assert fleet.clock.now() == pytest.approx(T0 + 600)
    assert fleet.events.scheduled() == []
    dev = fleet.fleet.by_id["entrance"]
    now = dev.clock.now()
    assert dev.io_output(now) and dev.is_door_closed(now)  # every event took effect
