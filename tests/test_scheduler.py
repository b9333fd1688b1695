"""The one scheduler: one heap in time order, one task that sleeps until something is due."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass

from simulator.clock import SimClock
from simulator.runtime.events import EVENT as EVENT_ADAPTER
from simulator.runtime.scheduler import EVENT, PUSH, WALL_LOOK_S, Lane, Scheduler
from simulator.store import StoreError
from tests.conftest import T0, make_fleet


@dataclass
class Done:
    key: Hashable
    moves_clock: bool = False


class Log:
    """A fake timeline and push that write down what they were asked, in order."""

    batch_full = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, Hashable]] = []

    def mark_applied(self) -> bool:
        return True

    def apply_due(self, key: Hashable) -> Done:
        self.calls.append(("event", key))
        return Done(key)

    def store_failed(self, e: StoreError) -> None:
        raise AssertionError(e)

    def retry_s(self) -> float:
        return 0.0

    def produce_due(self, lane: Lane, t: float) -> int:
        n = 0
        while (key := lane.pop_due(t)) is not None:
            self.calls.append(("push", key))
            n += 1
        return n


def test_push_boundaries_come_before_events_at_the_same_instant() -> None:
    clock = SimClock(start=T0, speed=0)
    s: Scheduler[Done] = Scheduler(clock)
    log = Log()
    s.events, s.producer = log, log
    s.add(T0 + 60, EVENT, "e1")
    s.add(T0 + 60, PUSH, "p1")
    s.add(T0 + 30, EVENT, "e0")
    s.add(T0 + 90, PUSH, "p2")
    ran = s.advance_to(T0 + 120)
    assert log.calls == [("event", "e0"), ("push", "p1"), ("event", "e1"), ("push", "p2")]
    assert [d.key for d in ran] == ["e0", "e1"] and clock.now() == T0 + 120


def test_the_task_sleeps_until_the_next_due_instant_at_the_clock_speed() -> None:
    clock = SimClock(start=T0, speed=0)
    s: Scheduler[Done] = Scheduler(clock)
    s.events = Log()
    s.add(T0 + 600, EVENT, "e")
    assert s.delay() is None  # frozen: until woken
    clock.set_speed(60)
    assert abs((s.delay() or 0) - 10) < 0.1  # 600 simulated seconds at 60x
    wall = SimClock()  # follows the wall (and freezegun): it looks again soon
    w: Scheduler[Done] = Scheduler(wall)
    w.events = Log()
    w.add(wall.now() + 3600, EVENT, "e")
    assert w.delay() == WALL_LOOK_S


async def test_a_frozen_clock_is_not_polled_and_a_set_clock_wakes_the_task() -> None:
    rt = make_fleet()
    late = rt.inject(EVENT_ADAPTER.validate_python({"kind": "reboot", "at": T0 + 600}))
    runs = 0
    run_due = rt.scheduler.run_due

    def counted(*a: object, **k: object) -> list[object]:
        nonlocal runs
        runs += 1
        return list(run_due(*a, **k))  # type: ignore[arg-type]

    rt.scheduler.run_due = counted  # type: ignore[method-assign]
    await rt.start()
    try:
        await asyncio.sleep(0.3)
        assert runs <= 2  # a 50 ms poll would have looked six times
        assert not late.applied
        rt.clock.set(T0 + 600)  # directly, not through the control plane
        async with asyncio.timeout(5):
            while not late.applied:
                await asyncio.sleep(0.005)
    finally:
        await rt.stop()
