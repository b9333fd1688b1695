"""The runtime: what drives the fleet in time, built from (scenario, clock, store, seed, shard).

It owns the clock, the store, the fleet, the one scheduler, the timeline's events, the
push, the request journal and the faults' state. The API reads the fleet and asks the
runtime to act; the runtime knows nothing of HTTP: the API's fault table hears the
timeline's fault_on/fault_off events through :class:`FaultSwitches`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from simulator.clock import SimClock
from simulator.fleet import Fleet
from simulator.journal import Journal
from simulator.runtime.events import Events, FaultSwitch, Scheduled
from simulator.runtime.push import Pusher
from simulator.runtime.scheduler import Scheduler
from simulator.schema.scenario import Scenario
from simulator.schema.timeline import Event, FaultSpec
from simulator.store import Store


class FaultSwitches:
    """The faults the timeline switched on and off, told to every fault table attached.

    What happened since the last reset is kept, so a table attached later (the API's, built
    after the runtime replayed its applied events) starts from the same state.
    """

    def __init__(self) -> None:
        self._said: list[Callable[[FaultSwitch], object]] = []
        self._tables: list[FaultSwitch] = []

    def attach(self, table: FaultSwitch) -> None:
        """Let ``table`` hear every switch from now on, after those since the last reset."""
        for say in self._said:
            say(table)
        self._tables.append(table)

    def _say(self, say: Callable[[FaultSwitch], object]) -> None:
        self._said.append(say)
        for table in self._tables:
            say(table)

    def reset(self, specs: Sequence[FaultSpec]) -> None:
        """Back to the scenario's faults."""
        self._said.clear()
        self._say(lambda t: t.reset(specs))

    def add(self, spec: FaultSpec) -> None:
        """Switch a fault on."""
        self._say(lambda t: t.add(spec))

    def remove(self, rule_id: str | None = None) -> None:
        """Switch one fault (or every fault) off."""
        self._say(lambda t: t.remove(rule_id))


def timeline_of(fleet: Fleet, store: Store, scheduler: Scheduler[Scheduled]) -> Events:
    """The fleet's timeline, loaded, with what was due at the start applied (no push)."""
    events = Events(fleet, fleet.clock, store, scheduler.timeline, FaultSwitches())
    scheduler.events = events
    events.load()
    scheduler.run_due(fleet.sim_start)
    return events


class Runtime:
    """A fleet and what drives it: clock, store, scheduler, events, push, journal, faults."""

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        store: Store | None = None,
        seed: int | None = None,
        shard: tuple[int, int] = (0, 1),
        *,
        cache_days: int = 65536,
        push_log_size: int = 1000,
    ) -> None:
        self.store = store if store is not None else Store()
        self.fleet = Fleet(scenario, clock, self.store, seed, cache_days, shard)
        self.scenario, self.clock, self.seed = scenario, clock, self.fleet.seed
        self.sim_start = self.fleet.sim_start
        self.control_token = scenario.control.token
        self.journal = Journal(scenario.control.journal_size, scenario.control.journal_bytes)
        self.faults = FaultSwitches()
        self.scheduler: Scheduler[Scheduled] = Scheduler(clock)
        self.pusher = Pusher(
            self.fleet.served, clock, self.store, seed=self.seed, log_size=push_log_size
        )
        self.scheduler.producer = self.pusher
        self.events = Events(self.fleet, clock, self.store, self.scheduler.timeline, self.faults)
        self.scheduler.events = self.events
        self.events.load()
        self.scheduler.run_due(self.sim_start)
        outages = self.events.outages
        self.pusher.receiver_down = lambda device: outages.down(device, clock.now())

    async def start(self) -> None:
        """Start the push's senders and the scheduler's task (what is due now happens)."""
        if self.pusher.active:
            await self.pusher.start(self.scheduler.push)
        self.scheduler.run_due()
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop the scheduler's task, then the push (what was delivered is recorded)."""
        await self.scheduler.stop()
        await self.pusher.stop()

    def inject(self, event: Event) -> Scheduled:
        """Record an event durably and schedule it; one due now happens at once."""
        s = self.events.add(event)
        now = self.clock.now()
        if s.due <= now:
            self.scheduler.run_due(now)
        return s

    def reset(self, device: str | None = None, clock: bool = True) -> None:
        """Back to the scenario's state: one device (its actions, events, journal) or all.

        The whole simulator also gets its clock back (start and speed) unless ``clock`` is
        False; data pushed already stays pushed. Timeline events due by then happen again.
        """
        store = self.store
        if device is not None:
            store.clear(device)
            store.events_reset(device)
            self.journal.clear(device)
        else:
            store.clear()
            store.events_reset()
            self.journal.clear()
            if clock:  # back to its start, or to following the wall clock
                self.clock.reset()
                for d in self.fleet.devices:
                    d.boot(self.sim_start)
        self.events.load()
        self.scheduler.run_due()
