"""The push of a fleet: produce on interval boundaries, deliver in order.

Each pushing device's next send time (a seeded few seconds after its next interval
boundary, as a device sends) is an item of the runtime's one scheduler (its push lane).
When send times fall due the scheduler asks :meth:`Pusher.produce_due`
for the payload of each and it is written to the durable outbox (with the device's
produced cursor, in one transaction) before the interval counts as produced. One sender
task per device delivers its outbox oldest first; a failed attempt is retried, after a
capped exponential backoff with seeded jitter, until a 2xx answer. The backoff grows with
the receiver's consecutive failures, whichever entry is at the head. These retries wait in
wall time (they are network I/O, not simulated time): they keep their own timers.

A write to the store that fails (locked by another process, disk full, read-only) changes
nothing: the intervals stay due and are written later, after a backoff of their own.

A device that is restarting (away between a reboot and its boot) sends nothing: its sender
waits, without an attempt or a failure, until the simulated clock reaches the boot; the
intervals that fell due meanwhile are in the outbox and go out then, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import numpy as np

from simulator.clock import SimClock, wall_time
from simulator.device import Device
from simulator.runtime.push import payload
from simulator.runtime.push.schedule import due_count, interval_end, interval_start, send_time
from simulator.runtime.push.sender import Attempt, backoff, post, tls_context
from simulator.runtime.scheduler import WALL_LOOK_S, Lane
from simulator.schema.scenario import PushConfig
from simulator.store import Store, StoreError, retry_delay

log = logging.getLogger("simulator.runtime.push")

PUSH_STREAM = 0x9054  # the push's own random stream of a device (jitter)
#: Delivery attempts the logs of a whole fleet keep; each device keeps at least LOG_MIN.
LOG_TOTAL = 100_000
LOG_MIN = 16
#: Wall seconds within which a delivered push is removed from the outbox (with the others
#: delivered meanwhile, in one transaction); a crash in that time sends it again.
FLUSH_S = 0.04
#: Wall seconds one batch of production may take: past local midnight each device works out
#: its new day (about 1 ms), and 2,000 at once would hold the loop (and every answer) for
#: seconds; the rest of what is due is produced in the next turns of the loop.
BATCH_S = 0.02
#: Devices whose day :meth:`Pusher._warm` works out between two calls of ``on_warm``.
WARM_BATCH = 500


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery attempt of one interval, as the delivery log keeps it."""

    device: str
    entry: int  # outbox id
    interval_end: float  # simulated epoch seconds
    attempt: int  # 1 for the first try of this entry
    status: int | None
    error: str | None
    latency_s: float  # wall seconds of the request
    sim_time: float  # simulated time when the attempt finished
    wall_time: float  # wall time when the attempt finished

    @property
    def ok(self) -> bool:
        """Delivered (a 2xx answer)."""
        return self.error is None


@dataclass
class PushStats:
    """Counters of one device's push since the simulator started."""

    produced: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dropped: int = 0


@dataclass(eq=False)
class _Channel:
    device: Device
    cfg: PushConfig
    cursor: float  # end of the last produced interval (start of the next)
    rng: np.random.Generator
    log: deque[Delivery]
    stats: PushStats = field(default_factory=PushStats)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    delivered_id: int = 0  # highest outbox id delivered in this run
    unflushed: int = 0  # delivered, not yet removed from the outbox
    failures: int = 0  # consecutive failed attempts to the receiver (drives the backoff)
    window: payload.Window = field(default_factory=payload.Window)  # the next minutes' counts
    #: Epoch time from which the day after the one warmed is to be worked out (the warm
    #: task keeps a device's next day ready before its local midnight); queued: it is due.
    warm_from: float = 0.0
    queued: bool = False


@dataclass
class StoreHealth:
    """Whether the pusher's writes to the store succeed; a failure streak is retried."""

    error: str | None = None  # the last failure of the current streak, None when writes work
    failures: int = 0  # failed writes in the current streak
    total_failures: int = 0  # failed writes since the simulator started
    retry_at: float = 0.0  # monotonic time of the next write attempt


class Pusher:
    """Data push of every device of a fleet that has ``push`` configured."""

    def __init__(
        self,
        devices: Sequence[Device],
        clock: SimClock,
        store: Store,
        seed: int = 0,
        *,
        log_size: int = 1000,
        batch: int = 2000,
        batch_s: float = BATCH_S,
        connections: int = 100,
    ) -> None:
        self.clock = clock
        self.store = store
        self.seed = seed
        self.batch = batch
        self.batch_s = batch_s
        #: Whether the last :meth:`produce_due` stopped at its batch's size or time, with
        #: intervals perhaps still due (the scheduler's task lets the loop turn, then goes on).
        self.batch_full = False
        self.connections = connections
        self._channels: dict[str, _Channel] = {}
        pushing = sum(1 for d in devices if d.cfg.push is not None)
        log_size = min(log_size, max(LOG_MIN, LOG_TOTAL // max(1, pushing)))
        for d in devices:
            if d.cfg.push is None:
                continue
            if d.cfg.push.url.startswith("https"):
                tls_context(d.cfg.push.ca_file)  # a bad CA file is a start-up error
            rng = np.random.default_rng([seed, d.index, PUSH_STREAM])
            self._channels[d.id] = _Channel(d, d.cfg.push, 0.0, rng, deque(maxlen=log_size))
        self._lane: Lane | None = None
        self._acks: list[tuple[str, int]] = []
        self._flush_timer: asyncio.Handle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._booting: set[_Channel] = set()  # senders waiting for their device to boot
        #: Called after each batch of days :meth:`_warm` worked out: ``serve`` moves them out
        #: of the garbage collector's scans there (a library user's process is left alone).
        self.on_warm: Callable[[], None] | None = None
        #: Work out each device's next day ahead (False: at its first interval, at midnight).
        self.warm_ahead = True
        self._warm_queue: deque[_Channel] = deque()
        self._warm_wake = asyncio.Event()
        clock.on_change(self._clock_moved)
        # Attempts under way, at most one per connection: the senders of a big fleet queue
        # here, so an attempt's ``timeout_s`` counts from when a connection is free for it.
        self._slots = asyncio.Semaphore(connections)
        self.store_health = StoreHealth()
        # A simulated receiver outage (control plane, scenario timeline): device id -> down?
        self.receiver_down: Callable[[str], bool] | None = None
        # Told every delivery attempt as it is logged (the metrics' lateness histogram).
        self.on_attempt: Callable[[Delivery], None] | None = None

    @property
    def active(self) -> bool:
        """Whether any device pushes."""
        return bool(self._channels)

    # ---- lifecycle ---------------------------------------------------------------------
    async def start(self, lane: Lane) -> None:
        """Load cursors (or start at the current interval), schedule the boundaries in
        ``lane`` (the scheduler's push lane) and start the senders."""
        if self._tasks:
            return
        now = self.clock.now()
        self._lane = lane
        for ch in self._channels.values():
            saved = self.store.push_cursor(ch.device.id)
            m = ch.cfg.interval_minutes
            ch.cursor = float(interval_start(now, m)) if saved is None else saved
            ch.delivered_id = 0
            ch.wake = asyncio.Event()
        lane.replace(self._boundaries())
        connector = aiohttp.TCPConnector(limit=self.connections)
        self._slots = asyncio.Semaphore(self.connections)
        self._session = aiohttp.ClientSession(connector=connector)
        self._warm_wake = asyncio.Event()
        self._warm_queue = deque(self._channels.values())
        for ch in self._warm_queue:
            ch.queued = True
        self._tasks.append(asyncio.create_task(self._warm(), name="push-warm"))
        for ch in self._channels.values():
            self._tasks.append(asyncio.create_task(self._send(ch), name=f"push-{ch.device.id}"))

    @property
    def warming(self) -> bool:
        """Whether days are waiting to be worked out (at start: every device's)."""
        return bool(self._warm_queue)

    async def _warm(self) -> None:
        """Work out each pushing device's day (and the next) before its boundaries need
        them, one device per turn of the loop: a fleet of 10,000 (about 1.3 ms a device)
        starts at once and keeps answering meanwhile, and its local midnight finds the new
        day ready rather than 10,000 days to work out in the production of the first minute;
        a boundary that comes first computes its own.

        A device is queued again when its production reaches the day worked out ahead.
        ``on_warm`` is called after every WARM_BATCH devices of the start and at its end:
        what this builds (the days, kept all day) can then leave the garbage collector's
        scans (``serve`` freezes it; otherwise each full collection walks all of it).
        """
        first, k = len(self._warm_queue), 0
        while True:
            while self._warm_queue:
                ch = self._warm_queue.popleft()
                ch.queued = False
                device = ch.device
                day = device.local_date(ch.cursor)
                if self.warm_ahead:
                    device.prefetch([day, day + timedelta(days=1)])
                    ch.warm_from = float(device.grid(day + timedelta(days=1)).start)
                else:
                    device.counts(day)
                    ch.warm_from = float("inf")
                k += 1
                if self.on_warm is not None and k <= first and (k % WARM_BATCH == 0 or k == first):
                    self.on_warm()
                await asyncio.sleep(0)
            self._warm_wake.clear()
            await self._warm_wake.wait()

    async def stop(self) -> None:
        """Stop the senders, record what was delivered, close the connections."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._lane is not None:
            self._lane.replace([])
            self._lane = None
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.store_health.retry_at = 0.0  # one last try, whatever the backoff
        self._flush_acks()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _boundaries(self) -> list[tuple[float, str]]:
        """When the next push of every pushing device leaves (after its next boundary)."""
        return [
            (self._send_at(dev_id, interval_end(ch.cursor, ch.cfg.interval_minutes)), dev_id)
            for dev_id, ch in self._channels.items()
        ]

    def _send_at(self, dev_id: str, end: float) -> float:
        """The simulated moment the push of the interval ending at ``end`` leaves."""
        return float(send_time(self.seed, dev_id, int(end)))

    # ---- observability -----------------------------------------------------------------
    def deliveries(self, device_id: str) -> list[Delivery]:
        """The device's recent delivery attempts, oldest first (bounded)."""
        return list(self._channels[device_id].log)

    def stats(self, device_id: str) -> PushStats:
        """The device's push counters."""
        return self._channels[device_id].stats

    def pending(self, device_id: str) -> int:
        """Outbox entries of the device not yet delivered."""
        ch = self._channels[device_id]
        return max(0, self.store.outbox_size(device_id) - ch.unflushed)

    def idle(self) -> bool:
        """Nothing due to be produced and nothing waiting for delivery."""
        now = self.clock.now()
        if self._lane is not None:  # started: the lane holds every next boundary
            first = self._lane.first()
            if first is not None and first <= now:
                return False
        elif any(t <= now for t, _ in self._boundaries()):
            return False
        return all(self.pending(i) == 0 for i in self._channels)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait (wall time) until :meth:`idle`; TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not self.idle():
                await asyncio.sleep(0.005)

    # ---- production --------------------------------------------------------------------
    def produce_due(self, lane: Lane, t: float) -> int:
        """Write every interval that has ended by ``t`` to the outbox (up to a batch: at
        most ``batch`` intervals, ``batch_s`` wall seconds).

        The due boundaries are popped from ``lane`` (the scheduler's push lane) and the next
        ones scheduled there. Cursors move only once the outbox commit succeeded: after a
        failed write nothing is produced, and the same intervals stay due, tried again after
        a backoff.
        """
        if not self._store_ready():
            return 0
        before: dict[str, float] = {}  # cursors as they were, to undo a failed write
        rows: list[tuple[str, float, str]] = []
        cursors: dict[str, float] = {}
        limits: dict[str, int] = {}
        skipped: dict[str, int] = {}
        self.batch_full = False
        deadline = time.perf_counter() + self.batch_s
        while True:
            if len(rows) >= self.batch or (rows and time.perf_counter() > deadline):
                self.batch_full = True
                break
            if (key := lane.pop_due(t)) is None:
                break
            dev_id = str(key)
            ch = self._channels[dev_id]
            before.setdefault(dev_id, ch.cursor)
            m, limit = ch.cfg.interval_minutes, ch.cfg.outbox_limit
            if dev_id not in cursors and due_count(ch.cursor, t, m) > limit:
                start = interval_start(t, m) - limit * m * 60
                skipped[dev_id] = due_count(ch.cursor, start, m)
                ch.cursor = float(start)
            start, end = int(ch.cursor), interval_end(ch.cursor, m)
            if start >= ch.warm_from and not ch.queued:  # its day ahead is now today
                ch.queued = True
                self._warm_queue.append(ch)
                self._warm_wake.set()
            body = payload.stored_body(ch.device, start, end, ch.window)
            rows.append((dev_id, float(end), body))
            cursors[dev_id] = ch.cursor = float(end)
            limits[dev_id] = limit
            lane.add(self._send_at(dev_id, interval_end(end, m)), dev_id)
        if not rows:
            return 0
        try:
            dropped = self.store.outbox_produce(rows, cursors, limits)
        except StoreError as e:
            self._unproduce(before, lane)
            self._store_failed("produce", e)
            return 0
        self._store_ok()
        for dev_id, _, _ in rows:
            self._channels[dev_id].stats.produced += 1
        for dev_id in skipped.keys() | dropped.keys():
            n = skipped.get(dev_id, 0) + dropped.get(dev_id, 0)
            self._channels[dev_id].stats.dropped += n
            log.warning(
                "push outbox full device=%s dropped=%d limit=%d (oldest intervals dropped)",
                dev_id,
                n,
                limits[dev_id],
                extra={"push": {"event": "dropped", "device": dev_id, "dropped": n}},
            )
        for dev_id in cursors:
            self._channels[dev_id].wake.set()
        return len(rows)

    def _unproduce(self, cursors: dict[str, float], lane: Lane) -> None:
        """Put cursors back as they were and reschedule the boundaries: nothing was produced."""
        for dev_id, cursor in cursors.items():
            self._channels[dev_id].cursor = cursor
        lane.replace(self._boundaries())

    def retry_s(self) -> float:
        """Wall seconds before a failed write is tried again (0 when writes may be tried)."""
        return max(0.0, self.store_health.retry_at - time.monotonic())

    def _store_ready(self) -> bool:
        """Whether a write may be tried now (not within the backoff after a failure)."""
        return time.monotonic() >= self.store_health.retry_at

    def _store_failed(self, what: str, e: StoreError) -> None:
        """Note a failed write, back off; log only the first failure of a streak."""
        h = self.store_health
        h.failures += 1
        h.total_failures += 1
        h.error = str(e)
        h.retry_at = time.monotonic() + retry_delay(h.failures)
        if h.failures == 1:
            log.warning(
                "push store write failed (%s): %s; retrying with backoff, nothing is lost",
                what,
                e,
                extra={"push": {"event": "store_failed", "error": str(e)}},
            )

    def _store_ok(self) -> None:
        """A write succeeded: end a failure streak (logged once)."""
        h = self.store_health
        if h.failures:
            log.info(
                "push store writes work again after %d failed attempts",
                h.failures,
                extra={"push": {"event": "store_recovered", "failures": h.failures}},
            )
        h.error, h.failures, h.retry_at = None, 0, 0.0

    def _flush_acks(self) -> None:
        """Remove delivered entries from the outbox (one transaction); kept on a failure."""
        if not self._acks or not self._store_ready():
            return
        acks, self._acks = self._acks, []
        try:
            self.store.outbox_remove(acks)
        except StoreError as e:
            self._acks = acks + self._acks
            self._store_failed("remove delivered", e)
            return
        self._store_ok()
        for dev_id, _ in acks:
            self._channels[dev_id].unflushed = 0
        for dev_id, _ in acks:  # rows counted again: a sender that saw none looks again
            if self.pending(dev_id):
                self._channels[dev_id].wake.set()

    def _flush_soon(self) -> None:
        """Remove delivered entries from the outbox within :data:`FLUSH_S` (wall time).

        Deliveries of that time share one transaction (one commit, not one a push); after a
        failed write the removal is tried again after the store's backoff.
        """
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                max(FLUSH_S, self.retry_s()), self._flush_later
            )

    def _flush_later(self) -> None:
        """The timer of :meth:`_flush_soon`: flush, and again later if the store refused."""
        self._flush_timer = None
        self._flush_acks()
        if self._acks:
            self._flush_soon()

    # ---- delivery ----------------------------------------------------------------------
    async def _send(self, ch: _Channel) -> None:
        """Deliver one device's outbox oldest first, retrying each entry until a 2xx."""
        while True:
            try:
                await self._deliver(ch)
            except Exception:
                log.exception(
                    "push sender error device=%s",
                    ch.device.id,
                    extra={"push": {"event": "error", "device": ch.device.id}},
                )
                await asyncio.sleep(ch.cfg.backoff_max_s)

    async def _deliver(self, ch: _Channel) -> None:
        """The sender's loop (runs until cancelled or an unexpected error)."""
        dev_id = ch.device.id
        entry_id, attempt = 0, 0
        while True:
            pending = self.pending(dev_id)  # counted in memory: no query when nothing waits
            entry = self.store.outbox_next(dev_id, ch.delivered_id) if pending else None
            if entry is None:
                ch.wake.clear()
                await ch.wake.wait()
                continue
            if ch.device.restarting(self.clock.now()):
                await self._until_booted(ch)
                continue
            if entry.id != entry_id:
                entry_id, attempt = entry.id, 0
            attempt += 1
            assert self._session is not None
            if self.receiver_down is not None and self.receiver_down(dev_id):
                result = Attempt(None, "receiver down (simulated outage)", 0.0)
            else:
                async with self._slots:  # a free connection first: its wait is no timeout
                    sent = max(self._send_at(dev_id, entry.due), self.clock.now())
                    body = payload.wire_body(entry.body, sent, ch.device.tz)
                    result = await post(self._session, ch.cfg, body)
            self._record(ch, entry.id, entry.due, attempt, result)
            if result.ok:
                ch.failures = 0
                ch.delivered_id = entry.id
                self._acks.append((dev_id, entry.id))
                self._flush_soon()
                ch.unflushed += 1
                ch.stats.delivered += 1
                continue
            ch.stats.failed_attempts += 1
            ch.failures += 1
            delay = backoff(ch.cfg, ch.failures, ch.rng)
            log.warning(
                "push failed device=%s url=%s interval_end=%s attempt=%d failures=%d status=%s "
                "error=%s retry_in=%.3fs",
                dev_id,
                ch.cfg.url,
                payload.utc_text(entry.due),
                attempt,
                ch.failures,
                result.status,
                result.error,
                delay,
                extra={
                    "push": {
                        "event": "failed",
                        "device": dev_id,
                        "url": ch.cfg.url,
                        "interval_end": entry.due,
                        "attempt": attempt,
                        "failures": ch.failures,
                        "status": result.status,
                        "error": result.error,
                        "retry_in": delay,
                    }
                },
            )
            await asyncio.sleep(delay)

    async def _until_booted(self, ch: _Channel) -> None:
        """Wait while the device is away restarting: until its boot time on the simulated
        clock, or until the clock is moved (set, advanced, sped up), then look again."""
        clock = self.clock
        now = clock.now()
        wait = (ch.device.boot_time(now) - now) / clock.speed + 1e-3 if clock.speed else None
        if clock.follows_wall:  # freezegun may move the wall without a word: look again soon
            wait = WALL_LOOK_S
        ch.wake.clear()
        self._booting.add(ch)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await ch.wake.wait()
        finally:
            self._booting.discard(ch)

    def _clock_moved(self) -> None:
        """The clock was set, advanced or changed speed: senders waiting for a boot look again."""
        for ch in self._booting:
            ch.wake.set()

    def _record(self, ch: _Channel, entry: int, due: float, attempt: int, r: Attempt) -> None:
        ch.log.append(
            Delivery(
                ch.device.id,
                entry,
                due,
                attempt,
                r.status,
                r.error,
                r.latency_s,
                self.clock.now(),
                wall_time(),
            )
        )
        if self.on_attempt is not None and ch.log:
            self.on_attempt(ch.log[-1])
        if r.ok and attempt > 1:
            log.info(
                "push delivered device=%s interval_end=%s after attempts=%d",
                ch.device.id,
                payload.utc_text(due),
                attempt,
                extra={"push": {"event": "recovered", "device": ch.device.id, "attempts": attempt}},
            )
