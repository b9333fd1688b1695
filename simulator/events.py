"""Timeline events: recorded durably, applied in order when the simulated clock reaches them.

Every event (a scenario's timeline and those injected through the control plane) is a row
of the store's ``sim_events`` table before it is acknowledged. An event takes effect at its
own due time, whenever the scheduler gets to it: its effects are store actions stamped with
that time ("door", "fps", "io", "adjust", "reboot") or in-memory state rebuilt from the
applied events at start-up (bursts, push outages, faults). So the same scenario and seed
give the same exports however the clock was moved.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from simulator.device import Device
from simulator.runtime.clock import check_time
from simulator.runtime.handlers import IN_MEMORY, RECORDED, PushOutages
from simulator.schema.timeline import ClockJumpEvent, Event, FaultOnEvent, event_devices
from simulator.store import StoreBusy, StoreError

if TYPE_CHECKING:
    from simulator.fleet import Fleet

log = logging.getLogger("simulator.events")

EVENT = TypeAdapter[Event](Event)


class EventError(ValueError):
    """An event that cannot be applied as given; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Scheduled:
    """An event with its due time and where it came from."""

    id: int
    due: float
    event: Event
    source: str  # "timeline" or "injected"
    applied: bool = False

    def describe(self) -> dict[str, Any]:
        """The event as the control plane shows it."""
        body = self.event.model_dump(mode="json", exclude_none=True, exclude={"at", "after"})
        due = datetime.fromtimestamp(self.due, UTC).isoformat().replace("+00:00", "Z")
        return {"id": self.id, "due": due, "source": self.source, "applied": self.applied, **body}


class EventScheduler:
    """The fleet's events: due in (time, id) order; applied when the clock reaches them."""

    def __init__(self, fleet: Fleet, sim_start: float) -> None:
        self.fleet = fleet
        self.sim_start = sim_start
        self._events: dict[int, Scheduled] = {}
        self._heap: list[tuple[float, int]] = []
        self._unmarked: list[int] = []  # applied in memory, not yet marked in the store
        self._store_failing = False
        self.outages = PushOutages()

    # ---- loading -----------------------------------------------------------------------
    def due_of(self, event: Event, now: float) -> float:
        """When an event is due: ``at``, ``after`` the simulated start, else ``now``."""
        if event.at is not None:
            return event.at.timestamp()
        if event.after is not None:
            return self.sim_start + event.after
        return now

    def load(self) -> None:
        """Record the scenario's timeline (once), then read every event from the store."""
        store = self.fleet.store
        for i, ev in enumerate(self.fleet.scenario.timeline):
            body = ev.model_dump_json(exclude_none=True)
            store.event_add(self.due_of(ev, self.sim_start), body, _device(ev), f"timeline:{i}")
        self._events.clear()
        self._heap = []
        self._unmarked.clear()  # events not marked applied are applied again, once
        self.fleet.faults.reset(self.fleet.scenario.faults)
        for site in self.fleet.sites.values():
            site.bursts.clear()
        self.outages.windows.clear()
        for eid, key, due, body, applied in store.events():
            s = Scheduled(eid, due, EVENT.validate_json(body), _source(key), applied)
            self._events[eid] = s
            if applied:
                self._restore(s)
            else:
                self._heap.append((due, eid))
        heapq.heapify(self._heap)

    def _restore(self, s: Scheduled) -> None:
        """Rebuild the in-memory effect of an event applied in an earlier run."""
        ev = s.event
        if ev.kind in ("burst", "push_outage", "push_restore", "fault_on", "fault_off"):
            self._apply(s, durable=False)

    # ---- queries -----------------------------------------------------------------------
    def scheduled(self) -> list[Scheduled]:
        """Events not applied yet, in the order they will be."""
        return [self._events[i] for _, i in sorted(self._heap)]

    def applied(self) -> list[Scheduled]:
        """Events applied, in due order."""
        return sorted((s for s in self._events.values() if s.applied), key=lambda s: (s.due, s.id))

    def next_due(self) -> float | None:
        """The due time of the next pending event."""
        return self._heap[0][0] if self._heap else None

    # ---- injection ---------------------------------------------------------------------
    def check(self, event: Event) -> None:
        """Refuse an event naming an unknown device or one that cannot take it."""
        for dev in event_devices(event):
            if dev not in self.fleet.by_id:
                raise EventError("device", f"no device {dev!r}")
        if isinstance(event, ClockJumpEvent) and event.by is not None:
            target = self.due_of(event, self.fleet.clock.now()) + event.by
            try:
                check_time(target, "the clock")
            except ValueError as e:
                raise EventError("by", str(e)) from None
        if event.kind == "adjust_occupancy":
            for d in self._targets(event):
                occ = d.cfg.occupancy
                if occ.role == "secondary" or not occ.estimation:
                    raise EventError("device", f"{d.id} cannot adjust occupancy (secondary/off)")

    def inject(self, event: Event) -> Scheduled:
        """Record an event durably and schedule it; one due now is applied at once."""
        self.check(event)
        now = self.fleet.clock.now()
        due = self.due_of(event, now)
        body = event.model_dump_json(exclude_none=True)
        eid = self.fleet.store.event_add(due, body, _device(event))
        s = Scheduled(eid, due, event, "injected")
        self._events[eid] = s
        heapq.heappush(self._heap, (due, eid))
        if due <= now:
            self.run_due(now)
        return s

    def cancel(self, event_id: int) -> bool:
        """Drop a pending injected event (not a timeline one)."""
        s = self._events.get(event_id)
        if s is None or s.applied:
            return False
        self._heap = [(d, i) for d, i in self._heap if i != event_id]
        heapq.heapify(self._heap)
        del self._events[event_id]
        self.fleet.store.event_delete(event_id)
        return True

    # ---- running -----------------------------------------------------------------------
    def run_due(self, now: float | None = None) -> list[Scheduled]:
        """Apply every pending event due at or before ``now``, in order."""
        t = self.fleet.clock.now() if now is None else now
        done: list[Scheduled] = []
        if not self._mark_applied():
            return done
        while self._heap and self._heap[0][0] <= t:
            s = self._events[self._heap[0][1]]
            try:
                self._apply(s)
            except StoreError as e:  # stays due: the next run applies it (effects repeat safely)
                self._store_failed(e)
                break
            heapq.heappop(self._heap)
            done.append(s)
            if isinstance(s.event, ClockJumpEvent):
                break  # the clock moved: the caller goes on from the new time
        return done

    def advance_to(self, target: float) -> list[Scheduled]:
        """Move the clock to ``target``, applying events and producing pushes in due order.

        A clock jump met on the way moves the target by the jump.
        """
        clock, pusher = self.fleet.clock, self.fleet.pusher
        done: list[Scheduled] = []
        while True:
            nxt = self.next_due()
            if nxt is None or nxt > target:
                break
            clock.set(max(nxt, clock.now()))
            _produce(pusher, nxt)
            before = clock.now()
            ran = self.run_due(nxt)
            done += ran
            if self._store_failing:  # the clock stays at the event it could not record
                raise StoreBusy("the database is locked: the clock stopped at a due event")
            if ran and isinstance(ran[-1].event, ClockJumpEvent):
                target += clock.now() - before
        clock.set(target)
        _produce(pusher, target)
        self.run_due(target)
        pusher.poke()
        return done

    def _apply(self, s: Scheduled, durable: bool = True) -> None:
        """Make an event take effect at its due time; mark it applied in the store."""
        ev, t, fleet = s.event, s.due, self.fleet
        if ev.kind == "clock_jump":
            assert isinstance(ev, ClockJumpEvent)
            # The timeline's jumps due before the start are history: the clock stays.
            if durable and (s.source == "injected" or t >= self.sim_start):
                to = ev.to.timestamp() if ev.to is not None else t + (ev.by or 0.0)
                fleet.clock.set(to)
                fleet.pusher.poke()
        elif isinstance(ev, FaultOnEvent):
            fleet.faults.add(ev.fault)
        elif ev.kind == "fault_off":
            fleet.faults.remove(getattr(ev, "id", None))
        else:
            for d in self._targets(ev):
                self._apply_to(d, ev, t, durable)
        s.applied = True
        if durable:
            self._unmarked.append(s.id)
            self._mark_applied()

    def _mark_applied(self) -> bool:
        """Record in the store the events applied in memory; False while it cannot be written.

        An event's in-memory effects (a burst, an outage) happen once: only the mark that it
        was applied waits for the store, so a restart does not apply it again either.
        """
        while self._unmarked:
            try:
                self.fleet.store.event_applied(self._unmarked[0])
            except StoreError as e:
                self._store_failed(e)
                return False
            self._unmarked.pop(0)
        if self._store_failing:
            self._store_failing = False
            log.info("events: the store takes writes again; due events go on")
        return True

    def _store_failed(self, e: StoreError) -> None:
        """Log the first failure of a streak (the scheduler retries on its next run)."""
        if not self._store_failing:
            self._store_failing = True
            log.warning("events: cannot record a due event now (%s); retrying", e)

    def _apply_to(self, d: Device, ev: Event, t: float, durable: bool) -> None:
        """One event's effect on one device (its caches follow the store's revisions)."""
        handler = IN_MEMORY.get(ev.kind) or (RECORDED.get(ev.kind) if durable else None)
        if handler is not None:
            handler(d, ev, t, self.outages)

    def _targets(self, ev: Event) -> list[Device]:
        """The devices an event acts on: its device, or every device (a burst: once a site)."""
        dev = getattr(ev, "device", None)
        if dev is not None:
            return [self.fleet.by_id[dev]]
        if ev.kind == "burst":
            seen: dict[str, Device] = {}
            for d in self.fleet.devices:
                seen.setdefault(d.site.name, d)
            return list(seen.values())
        if ev.kind == "adjust_occupancy":
            return [d for d in self.fleet.devices if d.site.primary_id == d.id]
        return list(self.fleet.devices)

    # ---- the clock running by itself -----------------------------------------------------
    async def run(self, poll_s: float = 0.05) -> None:
        """Apply events as the running clock reaches them (a background task)."""
        while True:
            try:
                if self._heap and self._heap[0][0] <= self.fleet.clock.now():
                    self.run_due()
            except Exception:  # pragma: no cover - logged, the loop goes on
                log.exception("event scheduler error")
            await asyncio.sleep(poll_s)


def install_push_gate(fleet: Fleet) -> None:
    """Let simulated receiver outages fail the push's delivery attempts of a fleet."""
    outages, clock = fleet.events.outages, fleet.clock
    fleet.pusher.receiver_down = lambda device: outages.down(device, clock.now())


def _produce(pusher: Any, t: float) -> None:
    """Let the push produce every interval that ended by ``t`` (in batches)."""
    produce: Callable[[float], int] | None = getattr(pusher, "produce_due", None)
    if produce is None:
        return
    while produce(t) > 0:
        pass


def _device(ev: Event) -> str | None:
    dev = getattr(ev, "device", None)
    return dev if isinstance(dev, str) else None


def _source(key: str | None) -> str:
    return "timeline" if key is not None else "injected"
