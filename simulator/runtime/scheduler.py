"""The one scheduler: a heap of due things processed in time order, and one task that waits.

Everything the simulated clock makes happen is an item ``(due, rank, seq, key)``: the push's
interval boundaries (one per pushing device, rank :data:`PUSH`) and the timeline's events
(rank :data:`EVENT`), kept in one heap per rank and taken in the order of all items (the
heads compared). At the same instant a push boundary comes before an event.
:meth:`Scheduler.advance_to` moves the clock through what falls due, in order (a clock jump
met on the way moves the target); :meth:`Scheduler.run_due` processes what is
due by a time without moving the clock. One asyncio task sleeps until the next due instant
at the clock's speed and is woken when the clock is set, advanced, reset or changes speed,
and when an item is scheduled: no fixed-interval polling.

Two cases bound that sleep. A store that refuses a write keeps its item due; the item is
tried again after the store's backoff. A clock that *follows the wall* reads the wall clock
at call time, which a test's ``freezegun`` moves without telling anyone: the task then
sleeps at most :data:`WALL_LOOK_S` between looks at the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Hashable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

from simulator.clock import SimClock
from simulator.store import StoreBusy, StoreError

log = logging.getLogger("simulator.scheduler")

PUSH, EVENT = 0, 1  # ranks: at the same instant, push boundaries come before events
#: Longest sleep of the task while the clock follows the (perhaps frozen) wall clock.
WALL_LOOK_S = 0.05

Item = tuple[float, int, int, Hashable]


class Applied(Protocol):
    """What applying an event returns: whether it moved the clock."""

    @property
    def moves_clock(self) -> bool:
        """Whether the event set the clock (the caller goes on from the new time)."""
        ...


A = TypeVar("A", bound=Applied, covariant=True)


class EventSource(Protocol[A]):
    """The timeline's side: apply one due event; record what was applied."""

    def mark_applied(self) -> bool:
        """Record events applied in memory; False while the store cannot be written."""
        ...

    def apply_due(self, key: Hashable) -> A:
        """Apply the event ``key`` at its due time (StoreError: it stays due)."""
        ...

    def store_failed(self, e: StoreError) -> None:
        """Note that the store refused an event's write."""
        ...

    def retry_s(self) -> float:
        """Wall seconds before the store is tried again (0 when writes work)."""
        ...


class Producer(Protocol):
    """The push's side: produce the boundaries due (popped from its lane) up to a time."""

    batch_full: bool  # the last production stopped at its batch's limit (more may be due)

    def produce_due(self, lane: Lane, t: float) -> int:
        """Produce intervals due by ``t``; 0 when the store cannot be written now."""
        ...

    def retry_s(self) -> float:
        """Wall seconds before the store is tried again (0 when writes work)."""
        ...


class Lane:
    """The items of one rank in the scheduler's heap (the push's or the timeline's)."""

    def __init__(self, scheduler: Scheduler[Any], rank: int) -> None:
        self._s = scheduler
        self.rank = rank

    def add(self, due: float, key: Hashable) -> None:
        """Schedule ``key`` at ``due`` (wakes the task)."""
        self._s.add(due, self.rank, key)

    def replace(self, items: Sequence[tuple[float, Hashable]]) -> None:
        """Drop every item of this lane and schedule ``items`` instead."""
        self._s.replace(self.rank, items)

    def remove(self, key: Hashable) -> None:
        """Drop one item."""
        self._s.remove(self.rank, key)

    def pop_due(self, t: float) -> Hashable | None:
        """The key of the earliest item if it is of this lane and due by ``t`` (popped)."""
        return self._s.pop_head(self.rank, t)

    def items(self) -> list[tuple[float, Hashable]]:
        """This lane's items in due order."""
        return self._s.items(self.rank)

    def first(self) -> float | None:
        """The due time of this lane's earliest item."""
        return self._s.first(self.rank)


class Scheduler(Generic[A]):
    """One heap of due things, processed in time order by ``advance_to`` or by one task."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._heaps: dict[int, list[Item]] = {PUSH: [], EVENT: []}  # one heap per rank
        self._seq = 0
        self.push = Lane(self, PUSH)
        self.timeline = Lane(self, EVENT)
        self.events: EventSource[A] | None = None
        self.producer: Producer | None = None
        self._wake = asyncio.Event()
        self._more = False  # a full batch was produced: go on after letting others run
        self._task: asyncio.Task[None] | None = None
        clock.on_change(self.wake)

    # ---- the heap ------------------------------------------------------------------------
    @property
    def heap(self) -> list[Item]:
        """Every item of every rank, in due order (the earliest first)."""
        return sorted(self._heaps[PUSH] + self._heaps[EVENT])

    def _head(self) -> Item | None:
        """The earliest item of every rank (the heads of the ranks' heaps compared)."""
        push, event = self._heaps[PUSH], self._heaps[EVENT]
        if push and event:
            return min(push[0], event[0])
        return push[0] if push else event[0] if event else None

    def add(self, due: float, rank: int, key: Hashable) -> None:
        """Schedule ``key`` of ``rank`` at ``due``."""
        self._seq += 1
        item = (due, rank, self._seq, key)
        heapq.heappush(self._heaps[rank], item)
        if self._head() is item:  # the new item is the earliest
            self.wake()

    def replace(self, rank: int, items: Sequence[tuple[float, Hashable]]) -> None:
        """Every item of ``rank`` replaced by ``items``."""
        kept: list[Item] = []
        for due, key in items:
            self._seq += 1
            kept.append((due, rank, self._seq, key))
        heapq.heapify(kept)
        self._heaps[rank] = kept
        self.wake()

    def remove(self, rank: int, key: Hashable) -> None:
        """Drop the items of ``rank`` with ``key``."""
        kept = [i for i in self._heaps[rank] if i[3] != key]
        heapq.heapify(kept)
        self._heaps[rank] = kept

    def pop_head(self, rank: int, t: float) -> Hashable | None:
        """Pop the earliest item if it is of ``rank`` and due by ``t``."""
        head = self._head()
        if head is not None and head[1] == rank and head[0] <= t:
            return heapq.heappop(self._heaps[rank])[3]
        return None

    def items(self, rank: int) -> list[tuple[float, Hashable]]:
        """The items of ``rank`` in due order, as (due, key)."""
        return [(d, k) for d, _, _, k in sorted(self._heaps[rank])]

    def first(self, rank: int) -> float | None:
        """The due time of the earliest item of ``rank``."""
        h = self._heaps[rank]
        return h[0][0] if h else None

    def _due_items(self, t: float, skip_push: bool) -> Iterator[Item]:
        """The earliest item due by ``t`` (push items left out when ``skip_push``)."""
        head = self._head()
        if head is not None and head[0] <= t and not (skip_push and head[1] == PUSH):
            yield head
            return
        events = self._heaps[EVENT]
        if skip_push and events and events[0][0] <= t:
            yield events[0]

    def _drop(self, item: Item) -> None:
        h = self._heaps[item[1]]
        if h[0] == item:
            heapq.heappop(h)
        else:
            h.remove(item)
            heapq.heapify(h)

    # ---- processing ----------------------------------------------------------------------
    def run_due(self, now: float | None = None, one_batch: bool = False) -> list[A]:
        """Process every item due by ``now`` (default: the clock's time), in order.

        Push boundaries are produced in batches up to the next event; a store that cannot
        be written keeps the push's items due and lets the events go on; an event that
        cannot be recorded stays due and stops the run, and so does an applied clock jump
        (the caller goes on from the new time). ``one_batch``: return after a full batch
        of push production (the task lets the senders run, then goes on).
        """
        t = self.clock.now() if now is None else now
        done: list[A] = []
        skip_push = self.producer is None
        self._more = False
        while (item := next(self._due_items(t, skip_push), None)) is not None:
            if item[1] == PUSH:
                assert self.producer is not None
                n = self.producer.produce_due(self.push, min(t, self._next_event(t)))
                if n == 0:
                    skip_push = True  # retried after the store's backoff
                elif one_batch and self.producer.batch_full:
                    self._more = True
                    break
                continue
            assert self.events is not None
            if not self.events.mark_applied():
                break
            try:
                s = self.events.apply_due(item[3])
            except StoreError as e:  # stays due: the next run applies it (effects repeat safely)
                self.events.store_failed(e)
                break
            self._drop(item)
            done.append(s)
            if s.moves_clock:
                break  # the clock moved: the caller goes on from the new time
        return done

    def _next_event(self, t: float) -> float:
        """The due time of the first event (``t`` if none is due by then)."""
        nxt = self.first(EVENT)
        return t if nxt is None else min(nxt, t)

    def advance_to(self, target: float) -> list[A]:
        """Move the clock to ``target``, producing pushes and applying events in due order.

        A clock jump met on the way moves the target by the jump. StoreBusy when a due event
        cannot be recorded: the clock stays at that event.
        """
        clock = self.clock
        done: list[A] = []
        while True:
            nxt = self.first(EVENT)
            if nxt is None or nxt > target:
                break
            clock.set(max(nxt, clock.now()))
            before = clock.now()
            ran = self.run_due(nxt)
            done += ran
            if self.events is not None and self.events.retry_s() > 0:
                raise StoreBusy("the database is locked: the clock stopped at a due event")
            if ran and ran[-1].moves_clock:
                target += clock.now() - before
        clock.set(target)
        self.run_due(target)
        return done

    # ---- the task ------------------------------------------------------------------------
    def wake(self) -> None:
        """Look at the heap and the clock now (they changed)."""
        self._wake.set()

    def start(self) -> None:
        """Start the task that processes items as the running clock reaches them."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="sim-scheduler")

    async def stop(self) -> None:
        """Stop the task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def delay(self) -> float | None:
        """Wall seconds to sleep before the next look (None: until woken)."""
        if self._more:
            return 0.0
        clock, now = self.clock, self.clock.now()
        waits: list[float] = []
        for rank, source in ((PUSH, self.producer), (EVENT, self.events)):
            due = self.first(rank)
            if source is None or due is None:
                continue
            if due <= now:  # due but not done: its store refused; try again after its backoff
                waits.append(max(source.retry_s(), 1e-3))
            elif clock.speed > 0:
                waits.append((due - now) / clock.speed + 1e-4)
        if clock.follows_wall:  # freezegun may move the wall without a word: look again soon
            waits.append(WALL_LOOK_S)
        return min(waits, default=None)

    async def _run(self) -> None:
        """Process what is due, then sleep until the next due instant or a wake-up."""
        while True:
            self._wake.clear()
            try:
                self.run_due(one_batch=True)
            except Exception:
                log.exception("scheduler error")
            delay = self.delay()
            if delay == 0.0:
                await asyncio.sleep(0)  # more is due: let the senders run, then go on
                continue
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
