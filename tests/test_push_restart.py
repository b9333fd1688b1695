"""A restarting device pushes nothing while it is away, and loses nothing: the intervals that
fell due meanwhile go out after it boots, in order, once each (local HTTPS receiver)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from simulator.clock import SimClock
from simulator.runtime.push.schedule import SEND_DELAY_S
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, PushConfig, Scenario
from simulator.schema.timeline import Event
from tests.conftest import ClientFactory
from tests.receivers import Receiver, until, utc

T0 = datetime(2024, 6, 5, 10, 30, 20, tzinfo=UTC).timestamp()
BOUNDARY = T0 - 20  # 10:30:00 UTC, the start of the interval holding T0
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.04, "timeout_s": 2.0}
#: Wall seconds given to a sender that must stay silent (it would post within milliseconds).
QUIET_S = 0.15
#: The latest a push leaves after its interval's end (a device sends a few seconds late).
LATE = SEND_DELAY_S[1]


def fleet_of(url: str, ca_file: str, clock: SimClock, restart_s: int = 75) -> Runtime:
    """One device pushing every minute to ``url``."""
    push = PushConfig(url=url, ca_file=ca_file, interval_minutes=1, **FAST)
    dev = DeviceConfig(id="entrance", timezone="Europe/Stockholm", push=push, restart_s=restart_s)
    return Runtime(Scenario(seed=7, devices=[dev]), clock)


def minutes(start: float, n: int) -> list[str]:
    return [utc(start + 60 * k) for k in range(n)]


def reboot(down_s: int) -> Any:
    return TypeAdapter(Event).validate_python(
        {"kind": "reboot", "device": "entrance", "down_s": down_s}
    )


async def test_no_push_while_rebooting_then_every_interval_once_in_order(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = fleet_of(receiver.url, ca_file, clock)
    running.append(fleet)
    await fleet.start()
    fleet.scheduler.advance_to(BOUNDARY + 60 + LATE)  # 10:31:45: 10:30 has gone out
    await fleet.pusher.wait_idle()
    fleet.scheduler.advance_to(BOUNDARY + 110)
    fleet.inject(reboot(180))  # 10:31:50, away until 10:34:50
    device = fleet.fleet.devices[0]
    for t in (BOUNDARY + 120 + LATE, BOUNDARY + 180 + LATE, BOUNDARY + 240 + LATE, BOUNDARY + 289):
        fleet.scheduler.advance_to(t)  # 10:32, 10:33, 10:34 fall due while it is away
        await asyncio.sleep(QUIET_S)
        assert device.restarting(clock.now())
        assert receiver.froms() == minutes(BOUNDARY, 1), utc(t)
    pusher = fleet.pusher
    assert pusher.pending("entrance") == 3
    assert pusher.stats("entrance").failed_attempts == 0
    assert len(pusher.deliveries("entrance")) == 1  # no attempt while away
    fleet.scheduler.advance_to(BOUNDARY + 290)  # 10:34:50: it boots, between two boundaries
    await pusher.wait_idle()
    assert receiver.froms() == minutes(BOUNDARY, 4)
    fleet.scheduler.advance_to(BOUNDARY + 300 + LATE)
    await pusher.wait_idle()
    assert receiver.froms() == minutes(BOUNDARY, 5)  # once each, in order
    sent = [r.doc["utcSent"] for r in receiver.requests[1:4]]
    assert sent == [utc(BOUNDARY + 290)] * 3  # after the boot, not before
    stats = pusher.stats("entrance")
    assert (stats.delivered, stats.failed_attempts, stats.dropped) == (5, 0, 0)


async def test_restart_cgi_with_a_running_clock_pushes_nothing_while_away(
    receiver: Receiver, ca_file: str, client_for: ClientFactory
) -> None:
    clock = SimClock(start=T0, speed=120)  # a simulated minute every half wall second
    fleet = fleet_of(receiver.url, ca_file, clock, restart_s=90)
    root = await client_for(fleet, "root")
    await until(lambda: len(receiver.requests) >= 1)
    r = await root.post("/axis-cgi/restart.cgi")
    assert r.status == 200
    (action,) = fleet.store.actions("entrance", "reboot", 0, clock.now() + 1)
    down, up = action.at, action.at + action.value
    await until(lambda: clock.now() > up + 130)  # two more boundaries after the boot
    await until(lambda: len(receiver.froms()) >= 4)
    froms = receiver.froms()
    assert froms == minutes(BOUNDARY, len(froms))  # every interval, once, in order
    sent = [datetime.fromisoformat(r.doc["utcSent"]).timestamp() for r in receiver.requests]
    # nothing sent while away (a push of the reboot's own second was sent before it)
    assert not [t for t in sent if down < t < up]
    assert fleet.pusher.stats("entrance").failed_attempts == 0
