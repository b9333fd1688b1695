"""Timeline events: recorded durably, applied in order when the simulated clock reaches them.

Every event (a scenario's timeline and those injected through the control plane) is a row
of the store's ``sim_events`` table before it is acknowledged. An event takes effect at its
own due time, whenever the scheduler gets to it: its effects are store actions stamped with
that time ("door", "fps", "io", "adjust", "reboot") or in-memory state rebuilt from the
applied events at start-up (bursts, push outages, faults). So the same scenario and seed
give the same exports however the clock was moved.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import TypeAdapter

from simulator.clock import SimClock, check_time
from simulator.device import Device
from simulator.fleet import Fleet
from simulator.runtime.handlers import IN_MEMORY, RECORDED, PushOutages
from simulator.runtime.scheduler import Lane
from simulator.schema.timeline import ClockJumpEvent, Event, FaultOnEvent, FaultSpec, event_devices
from simulator.store import Store, StoreError, retry_delay

log = logging.getLogger("simulator.runtime.events")

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

    @property
    def moves_clock(self) -> bool:
        """Whether the event is a clock jump (the scheduler goes on from the new time)."""
        return isinstance(self.event, ClockJumpEvent)

    def describe(self) -> dict[str, Any]:
        """The event as the control plane shows it."""
        body = self.event.model_dump(mode="json", exclude_none=True, exclude={"at", "after"})
        due = datetime.fromtimestamp(self.due, UTC).isoformat().replace("+00:00", "Z")
        return {"id": self.id, "due": due, "source": self.source, "applied": self.applied, **body}


class FaultSwitch(Protocol):
    """Where fault_on and fault_off events go: the fault table of the API, when there is one."""

    def reset(self, specs: Sequence[FaultSpec]) -> None:
        """Back to the scenario's faults."""
        ...

    def add(self, spec: FaultSpec) -> object:
        """Switch a fault on."""
        ...

    def remove(self, rule_id: str | None = None) -> object:
        """Switch one fault (or every fault) off."""
        ...


class Events:
    """The timeline: events due in (time, id) order, applied when the scheduler reaches them."""

    def __init__(
        self,
        fleet: Fleet,
        clock: SimClock,
        store: Store,
        lane: Lane,
        faults: FaultSwitch,
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.store = store
        self.lane = lane
        self.faults = faults
        self.sim_start = fleet.sim_start
        self._events: dict[int, Scheduled] = {}
        self._unmarked: list[int] = []  # applied in memory, not yet marked in the store
        self._failures = 0  # failed writes in the current streak
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
        store = self.store
        for i, ev in enumerate(self.fleet.scenario.timeline):
            body = ev.model_dump_json(exclude_none=True)
            store.event_add(self.due_of(ev, self.sim_start), body, _device(ev), f"timeline:{i}")
        self._events.clear()
        pending: list[tuple[float, Hashable]] = []
        self._unmarked.clear()  # events not marked applied are applied again, once
        self.faults.reset(self.fleet.scenario.faults)
        for site in self.fleet.sites.values():
            site.bursts.clear()
        self.outages.windows.clear()
        for eid, key, due, body, applied in store.events():
            s = Scheduled(eid, due, EVENT.validate_json(body), _source(key), applied)
            self._events[eid] = s
            if applied:
                self._restore(s)
            else:
                pending.append((due, eid))
        self.lane.replace(pending)

    def _restore(self, s: Scheduled) -> None:
        """Rebuild the in-memory effect of an event applied in an earlier run."""
        ev = s.event
        if ev.kind in ("burst", "push_outage", "push_restore", "fault_on", "fault_off"):
            self._apply(s, durable=False)

    # ---- queries -----------------------------------------------------------------------
    def scheduled(self) -> list[Scheduled]:
        """Events not applied yet, in the order they will be."""
        return [self._events[i] for _, i in self.lane.items() if isinstance(i, int)]

    def applied(self) -> list[Scheduled]:
        """Events applied, in due order."""
        return sorted((s for s in self._events.values() if s.applied), key=lambda s: (s.due, s.id))

    def next_due(self) -> float | None:
        """The due time of the next pending event."""
        return self.lane.first()

    # ---- injection ---------------------------------------------------------------------
    def check(self, event: Event) -> None:
        """Refuse an event naming an unknown device or one that cannot take it."""
        for dev in event_devices(event):
            if dev not in self.fleet.by_id:
                raise EventError("device", f"no device {dev!r}")
        if isinstance(event, ClockJumpEvent) and event.by is not None:
            target = self.due_of(event, self.clock.now()) + event.by
            try:
                check_time(target, "the clock")
            except ValueError as e:
                raise EventError("by", str(e)) from None
        if event.kind == "adjust_occupancy":
            for d in self._targets(event):
                occ = d.cfg.occupancy
                if occ.role == "secondary" or not occ.estimation:
                    raise EventError("device", f"{d.id} cannot adjust occupancy (secondary/off)")

    def add(self, event: Event) -> Scheduled:
        """Record an event durably and schedule it (the caller runs what is due now)."""
        self.check(event)
        due = self.due_of(event, self.clock.now())
        body = event.model_dump_json(exclude_none=True)
        eid = self.store.event_add(due, body, _device(event))
        s = Scheduled(eid, due, event, "injected")
        self._events[eid] = s
        self.lane.add(due, eid)
        return s

    def cancel(self, event_id: int) -> bool:
        """Drop a pending injected event (not a timeline one)."""
        s = self._events.get(event_id)
        if s is None or s.applied:
            return False
        self.lane.remove(event_id)
        del self._events[event_id]
        self.store.event_delete(event_id)
        return True

    # ---- applying ----------------------------------------------------------------------
    def apply_due(self, key: Hashable) -> Scheduled:
        """Apply the pending event ``key`` at its due time (StoreError: it stays due)."""
        assert isinstance(key, int)
        s = self._events[key]
        self._apply(s)
        return s

    def _apply(self, s: Scheduled, durable: bool = True) -> None:
        """Make an event take effect at its due time; mark it applied in the store."""
        ev, t = s.event, s.due
        if ev.kind == "clock_jump":
            assert isinstance(ev, ClockJumpEvent)
            # The timeline's jumps due before the start are history: the clock stays.
            if durable and (s.source == "injected" or t >= self.sim_start):
                to = ev.to.timestamp() if ev.to is not None else t + (ev.by or 0.0)
                self.clock.set(to)
        elif isinstance(ev, FaultOnEvent):
            self.faults.add(ev.fault)
        elif ev.kind == "fault_off":
            self.faults.remove(getattr(ev, "id", None))
        else:
            for d in self._targets(ev):
                self._apply_to(d, ev, t, durable)
        s.applied = True
        if durable:
            self._unmarked.append(s.id)
            self.mark_applied()

    def mark_applied(self) -> bool:
        """Record in the store the events applied in memory; False while it cannot be written.

        An event's in-memory effects (a burst, an outage) happen once: only the mark that it
        was applied waits for the store, so a restart does not apply it again either.
        """
        while self._unmarked:
            try:
                self.store.event_applied(self._unmarked[0])
            except StoreError as e:
                self.store_failed(e)
                return False
            self._unmarked.pop(0)
        if self._failures:
            self._failures = 0
            log.info("events: the store takes writes again; due events go on")
        return True

    def store_failed(self, e: StoreError) -> None:
        """Log the first failure of a streak (the scheduler retries after a backoff)."""
        self._failures += 1
        if self._failures == 1:
            log.warning("events: cannot record a due event now (%s); retrying", e)

    def retry_s(self) -> float:
        """Wall seconds before a failed write is tried again (0 when writes work)."""
        return retry_delay(self._failures) if self._failures else 0.0

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


def _device(ev: Event) -> str | None:
    """The device an event names, if one."""
    dev = getattr(ev, "device", None)
    return dev if isinstance(dev, str) else None


def _source(key: str | None) -> str:
    """Where a stored event came from: the scenario's timeline, or injected."""
    return "timeline" if key is not None else "injected"
