"""The data push end to end: local HTTPS receivers with a test CA (trustme), on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from simulator.api.app import create_app
from simulator.clock import SimClock
from simulator.runtime.push.schedule import SEND_DELAY_S, send_time
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import DeviceConfig, PushConfig, Scenario
from simulator.store import Store
from tests.receivers import Receiver, until, utc

# 12:30:50 in Stockholm: a push leaves 5-45 s after its interval, so every whole minute
# from here on lies after the previous interval's push and before the next boundary.
T0 = datetime(2024, 6, 5, 10, 30, 50, tzinfo=UTC).timestamp()
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.04, "timeout_s": 2.0}


def make_fleet(
    url: str,
    clock: SimClock,
    store: Store | None = None,
    tz: str = "Europe/Stockholm",
    log_size: int = 1000,
    **push: Any,
) -> Runtime:
    cfg = PushConfig(url=url, **{"interval_minutes": 1, **FAST, **push})
    dev = DeviceConfig(id="entrance", timezone=tz, ip_address="172.25.70.165", push=cfg)
    return Runtime(Scenario(seed=7, devices=[dev]), clock, store, push_log_size=log_size)


def minutes(start: float, n: int, step: int = 1) -> list[str]:
    return [utc(start + 60 * step * k) for k in range(n)]


BOUNDARY = T0 - 50  # 10:30:00 UTC, the start of the interval holding T0


# ---- payload and transport ---------------------------------------------------------------
async def test_exact_payload_and_bearer_token(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file, token="s3cret")
    running.append(fleet)
    await fleet.start()
    sent = send_time(7, "entrance", int(BOUNDARY + 60))  # seeded, after the 10:31 boundary
    assert BOUNDARY + 60 + 5 <= sent <= BOUNDARY + 60 + 45
    clock.set(sent - 1)  # the interval has ended, its push has not left yet
    fleet.scheduler.wake()
    await asyncio.sleep(0.05)
    assert receiver.requests == []
    clock.set(sent)
    await fleet.pusher.wait_idle()
    (req,) = receiver.requests
    assert req.headers["Authorization"] == "Bearer s3cret"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Accept"] == "*/*"
    assert "User-Agent" not in req.headers and "Accept-Encoding" not in req.headers
    d = fleet.fleet.devices[0]
    c = d.counts(date(2024, 6, 5))
    i = int((BOUNDARY - d.grid(date(2024, 6, 5)).start) // 60)
    span = {
        "utcFrom": "2024-06-05T10:30:00Z",
        "utcTo": "2024-06-05T10:31:00Z",
        "localFrom": "2024-06-05T12:30:00",
        "localTo": "2024-06-05T12:31:00",
    }
    assert req.doc == {
        "apiName": "Axis Retail Data",
        "apiVersion": "0.4",
        "utcSent": utc(sent),
        "localSent": datetime.fromtimestamp(sent, UTC).strftime("2024-06-05T12:%M:%S"),
        "data": {
            **span,
            "measurements": [
                {
                    "kind": "people-counts",
                    **span,
                    "items": [
                        {"direction": "in", "count": int(c.in_[i]), "adults": int(c.in_adults[i])},
                        {
                            "direction": "out",
                            "count": int(c.out[i]),
                            "adults": int(c.out_adults[i]),
                        },
                    ],
                }
            ],
        },
        "sensor": {
            "application": "AXIS 3D People Counter",
            "applicationVersion": "11.11.73",
            "timeZone": "Europe/Stockholm",
            "name": "axis-accc8ef3d92e",
            "serial": "accc8ef3d92e",
            "ipAddress": "172.25.70.165",
        },
    }
    assert list(req.doc) == ["apiName", "apiVersion", "utcSent", "localSent", "data", "sensor"]
    (log,) = fleet.pusher.deliveries("entrance")
    assert (log.status, log.attempt, log.ok, log.interval_end) == (200, 1, True, BOUNDARY + 60)
    assert log.latency_s > 0


async def test_plain_http_with_opt_in_and_no_token_header(running: list[Runtime]) -> None:
    plain = Receiver(None)
    await plain.start()
    try:
        clock = SimClock(start=T0, speed=0)
        fleet = make_fleet(plain.url, clock, allow_http=True)
        running.append(fleet)
        await fleet.start()
        clock.advance(60)
        await fleet.pusher.wait_idle()
        (req,) = plain.requests
        assert "Authorization" not in req.headers
    finally:
        await plain.stop()


async def test_untrusted_certificate_is_rejected_and_retried(
    receiver: Receiver, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock)  # system CAs only: the test CA is not trusted
    running.append(fleet)
    await fleet.start()
    clock.advance(60)
    fleet.scheduler.wake()
    await until(lambda: fleet.pusher.stats("entrance").failed_attempts >= 3)
    assert receiver.requests == []
    log = fleet.pusher.deliveries("entrance")
    assert [d.attempt for d in log[:3]] == [1, 2, 3]
    assert all(d.status is None and "certificate" in (d.error or "") for d in log)
    assert fleet.pusher.pending("entrance") == 1


async def test_a_different_custom_ca_is_rejected(
    receiver: Receiver, tmp_path: Path, running: list[Runtime]
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=str(other))
    running.append(fleet)
    await fleet.start()
    clock.advance(60)
    fleet.scheduler.wake()
    await until(lambda: fleet.pusher.stats("entrance").failed_attempts >= 1)
    assert "certificate" in (fleet.pusher.deliveries("entrance")[0].error or "")
    assert receiver.requests == []


# ---- schedule ----------------------------------------------------------------------------
@pytest.mark.parametrize("interval", [1, 5, 15])
async def test_intervals_align_and_carry_one_measurement_per_minute(
    interval: int, receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file, interval_minutes=interval)
    running.append(fleet)
    await fleet.start()
    first = BOUNDARY - (BOUNDARY % (interval * 60))
    clock.set(first + 30 * 60 + 59)  # 30 minutes later, just before the next minute
    await fleet.pusher.wait_idle()
    n = 30 // interval
    assert receiver.froms() == minutes(first, n, interval)
    d = fleet.fleet.devices[0]
    day = date(2024, 6, 5)
    c, start = d.counts(day), d.grid(day).start
    total_in = 0
    for k, req in enumerate(receiver.requests):
        data = req.doc["data"]
        t = first + k * interval * 60
        assert (data["utcFrom"], data["utcTo"]) == (utc(t), utc(t + interval * 60))
        ms = data["measurements"]
        assert [m["utcFrom"] for m in ms] == minutes(t, interval)
        assert [m["utcTo"] for m in ms] == minutes(t + 60, interval)
        for j, m in enumerate(ms):
            i = int((t - start) // 60) + j
            assert m["items"][0] == {
                "direction": "in",
                "count": int(c.in_[i]),
                "adults": int(c.in_adults[i]),
            }
            assert m["items"][1]["count"] == int(c.out[i])
            total_in += m["items"][0]["count"]
    i0 = int((first - start) // 60)
    assert total_in == int(c.in_[i0 : i0 + 30].sum()) > 0


async def test_clock_jump_produces_every_push_that_fell_due_in_order(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    running.append(fleet)
    await fleet.start()
    clock.advance(2 * 3600)  # no poke: the scheduler notices the jump at its next poll
    await until(lambda: len(receiver.requests) == 120)
    assert receiver.froms() == minutes(BOUNDARY, 120)
    assert fleet.pusher.stats("entrance").produced == 120
    clock.advance(5)  # not yet at the next boundary
    await fleet.pusher.wait_idle()
    assert len(receiver.requests) == 120


async def test_running_clock_pushes_on_simulated_boundaries(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=BOUNDARY + 1, speed=300)  # a simulated minute per 0.2 wall s
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    running.append(fleet)
    await fleet.start()
    await until(lambda: len(receiver.requests) >= 3)
    assert receiver.froms()[:3] == minutes(BOUNDARY, 3)
    for d in fleet.pusher.deliveries("entrance")[:3]:
        assert d.sim_time >= d.interval_end  # never before the boundary
    for req in receiver.requests[:3]:
        end = int(datetime.fromisoformat(req.doc["data"]["utcTo"]).timestamp())
        assert req.doc["utcSent"] >= utc(send_time(7, "entrance", end)) > req.doc["data"]["utcTo"]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # autumn: 03:00 CEST becomes 02:00 CET at 01:00 UTC; local times repeat
        (
            datetime(2024, 10, 27, 0, 40, tzinfo=UTC),
            [("02:30:00", "02:45:00"), ("02:45:00", "02:00:00"), ("02:00:00", "02:15:00")],
        ),
        # spring: 02:00 CET becomes 03:00 CEST at 01:00 UTC; local 02:xx does not exist
        (
            datetime(2024, 3, 31, 0, 40, tzinfo=UTC),
            [("01:30:00", "01:45:00"), ("01:45:00", "03:00:00"), ("03:00:00", "03:15:00")],
        ),
    ],
)
async def test_dst_days(
    start: datetime,
    expected: list[tuple[str, str]],
    receiver: Receiver,
    ca_file: str,
    running: list[Runtime],
) -> None:
    clock = SimClock(start=start.timestamp(), speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file, interval_minutes=15)
    running.append(fleet)
    await fleet.start()
    clock.advance(40 * 60)  # 01:20 UTC
    await fleet.pusher.wait_idle()
    got = [
        (r.doc["data"]["localFrom"][11:], r.doc["data"]["localTo"][11:]) for r in receiver.requests
    ]
    assert got == expected
    d = fleet.fleet.devices[0]
    day = start.date()
    c, grid = d.counts(day), d.grid(day)
    for req in receiver.requests:
        for m in req.doc["data"]["measurements"]:
            t = datetime.fromisoformat(m["utcFrom"]).timestamp()
            i = int((t - grid.start) // 60)
            assert m["items"][0]["count"] == int(c.in_[i])
    assert grid.n in (1380, 1500)  # the DST day itself


# ---- delivery ----------------------------------------------------------------------------
async def test_failed_statuses_and_timeouts_are_retried_until_2xx(
    receiver: Receiver, ca_file: str, running: list[Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500, 404, 401, 302, 429]
    receiver.delays = [0, 0, 0, 0, 0, 0.5]  # the sixth attempt outlives its timeout
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file, timeout_s=0.2)
    running.append(fleet)
    await fleet.start()
    caplog.set_level(logging.INFO, logger="simulator.runtime.push")
    clock.advance(60)
    await fleet.pusher.wait_idle()
    log = fleet.pusher.deliveries("entrance")
    assert [d.status for d in log] == [500, 404, 401, 302, 429, None, 200]
    assert [d.attempt for d in log] == [1, 2, 3, 4, 5, 6, 7]
    assert "timeout" in (log[5].error or "")
    assert len(receiver.requests) == 1
    stats = fleet.pusher.stats("entrance")
    assert (stats.produced, stats.delivered, stats.failed_attempts) == (1, 1, 6)
    failed = [r for r in caplog.records if getattr(r, "push", {}).get("event") == "failed"]
    assert [r.push["status"] for r in failed] == [500, 404, 401, 302, 429, None]  # type: ignore[attr-defined]
    assert "device=entrance" in failed[0].getMessage()
    assert any(getattr(r, "push", {}).get("event") == "recovered" for r in caplog.records)


async def test_receiver_down_then_up_delivers_backlog_once_in_order(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    await receiver.stop()  # connection refused
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    running.append(fleet)
    await fleet.start()
    for _ in range(5):
        clock.advance(60)
        fleet.scheduler.wake()
        await asyncio.sleep(0.02)
    assert fleet.pusher.stats("entrance").failed_attempts >= 2
    assert fleet.pusher.pending("entrance") == 5
    errors = {d.error for d in fleet.pusher.deliveries("entrance")}
    assert all("cannot connect to 127.0.0.1" in (e or "") for e in errors)
    await receiver.start()
    await fleet.pusher.wait_idle()
    assert receiver.froms() == minutes(BOUNDARY, 5)
    assert fleet.pusher.pending("entrance") == 0


async def test_full_outbox_drops_oldest_counted_and_logged(
    receiver: Receiver, ca_file: str, running: list[Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    await receiver.stop()
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file, outbox_limit=3)
    running.append(fleet)
    await fleet.start()
    for _ in range(5):
        clock.advance(60)
        fleet.scheduler.wake()
        await asyncio.sleep(0.01)
    assert fleet.pusher.stats("entrance").dropped == 2
    assert "dropped=1" in caplog.text
    await receiver.start()
    await fleet.pusher.wait_idle()
    assert receiver.froms() == minutes(BOUNDARY + 120, 3)


async def test_catching_up_more_than_the_outbox_holds(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file, outbox_limit=10)
    running.append(fleet)
    await fleet.start()
    clock.advance(86400)  # a day: 1440 intervals fell due, the outbox keeps the last 10
    await fleet.pusher.wait_idle()
    stats = fleet.pusher.stats("entrance")
    assert (stats.produced, stats.dropped) == (10, 1430)
    assert receiver.froms() == minutes(BOUNDARY + 1430 * 60, 10)


async def test_restart_mid_outage_loses_nothing(
    receiver: Receiver, ca_file: str, tmp_path: Path, running: list[Runtime]
) -> None:
    db = tmp_path / "sim.db"
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, Store(db), ca_file=ca_file)
    running.append(fleet)
    await fleet.start()
    clock.advance(60)
    await fleet.pusher.wait_idle()  # 10:30 delivered before the outage
    await receiver.stop()
    clock.advance(180)
    fleet.scheduler.wake()
    await until(lambda: fleet.pusher.stats("entrance").failed_attempts >= 1)
    await fleet.stop()
    fleet.store.close()
    # the simulator was down for two simulated minutes; same --db, new process
    clock2 = SimClock(start=clock.now() + 120, speed=0)
    fleet2 = make_fleet(receiver.url, clock2, Store(db), ca_file=ca_file)
    running.append(fleet2)
    await fleet2.start()
    fleet2.scheduler.wake()
    await until(lambda: fleet2.pusher.stats("entrance").failed_attempts >= 1)
    await receiver.start()
    await fleet2.pusher.wait_idle()
    assert receiver.froms() == minutes(BOUNDARY, 6)  # 10:30 once, 10:31..10:35 after
    assert fleet2.pusher.stats("entrance").produced == 2  # 10:34 and 10:35 were produced now
    await fleet2.stop()
    fleet2.store.close()


async def test_the_app_starts_and_stops_the_pusher(receiver: Receiver, ca_file: str) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    runner = web.AppRunner(create_app(fleet))
    await runner.setup()
    try:
        clock.advance(60)
        await fleet.pusher.wait_idle()
        assert len(receiver.requests) == 1
    finally:
        await runner.cleanup()
    clock.advance(60)  # stopped: nothing is produced any more
    await asyncio.sleep(0.1)
    assert fleet.pusher.stats("entrance").produced == 1 and len(receiver.requests) == 1


async def test_a_fleet_in_a_users_process_leaves_the_garbage_collector_alone(
    receiver: Receiver, ca_file: str
) -> None:
    # A test double runs in its user's process: it must not freeze their objects. The days
    # the pusher works out are handed to ``on_warm`` (``serve`` freezes there) and nothing
    # else happens to the collector.
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    frozen = gc.get_freeze_count()
    warmed: list[int] = []
    fleet.pusher.on_warm = lambda: warmed.append(len(fleet.fleet.cache))
    await fleet.start()
    try:
        await until(lambda: bool(warmed))
        assert warmed[-1] >= 1  # called once the day is worked out
        assert gc.get_freeze_count() == frozen
        clock.advance(60)
        await fleet.pusher.wait_idle()
        assert len(receiver.requests) == 1
    finally:
        await fleet.stop()
    assert gc.get_freeze_count() == frozen


async def test_delivery_log_is_bounded(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file, log_size=4)
    pusher = fleet.pusher
    running.append(fleet)
    await fleet.start()
    clock.advance(10 * 60)
    await pusher.wait_idle()
    log = pusher.deliveries("entrance")
    assert [utc(d.interval_end) for d in log] == minutes(BOUNDARY + 7 * 60, 4)


async def test_a_simulated_receiver_outage_holds_delivery(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    down = {"entrance": True}
    fleet.pusher.receiver_down = lambda dev: down.get(dev, False)
    running.append(fleet)
    await fleet.start()
    clock.advance(60 + 120)
    fleet.scheduler.wake()
    await until(lambda: fleet.pusher.stats("entrance").failed_attempts >= 2)
    assert receiver.requests == []
    assert fleet.pusher.deliveries("entrance")[0].error == "receiver down (simulated outage)"
    down["entrance"] = False
    await fleet.pusher.wait_idle()
    assert receiver.froms() == minutes(BOUNDARY, 3)


async def test_a_changed_interval_continues_from_the_saved_cursor(
    receiver: Receiver, ca_file: str, tmp_path: Path, running: list[Runtime]
) -> None:
    db = tmp_path / "sim.db"
    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, Store(db), ca_file=ca_file)
    running.append(fleet)
    await fleet.start()
    clock.advance(60)
    await fleet.pusher.wait_idle()
    await fleet.stop()
    fleet.store.close()
    clock2 = SimClock(start=clock.now(), speed=0)
    fleet2 = make_fleet(receiver.url, clock2, Store(db), ca_file=ca_file, interval_minutes=5)
    running.append(fleet2)
    await fleet2.start()
    clock2.advance(9 * 60)  # 10:40
    await fleet2.pusher.wait_idle()
    spans = [
        (r.doc["data"]["utcFrom"][11:16], r.doc["data"]["utcTo"][11:16]) for r in receiver.requests
    ]
    assert spans == [("10:30", "10:31"), ("10:31", "10:35"), ("10:35", "10:40")]
    assert len(receiver.requests[1].doc["data"]["measurements"]) == 4
    await fleet2.stop()
    fleet2.store.close()


async def test_a_push_outage_event_holds_delivery_then_the_backlog_drains(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    """The timeline's push_outage/push_restore drive a real pusher against a live receiver."""
    from pydantic import TypeAdapter

    from simulator.schema.timeline import Event

    clock = SimClock(start=T0, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    running.append(fleet)
    await fleet.start()
    event = TypeAdapter(Event).validate_python
    fleet.inject(event({"kind": "push_outage", "device": "entrance"}))
    fleet.scheduler.advance_to(T0 + 60 + 120)
    fleet.scheduler.wake()
    await until(lambda: fleet.pusher.stats("entrance").failed_attempts >= 2)
    assert receiver.requests == []
    fleet.inject(event({"kind": "push_restore", "device": "entrance"}))
    fleet.scheduler.run_due()
    await fleet.pusher.wait_idle()
    assert receiver.froms() == minutes(BOUNDARY, 3)


async def test_a_killed_simulator_loses_no_produced_push(
    receiver: Receiver, ca_file: str, tmp_path: Path
) -> None:
    """kill -9 mid-outage: every interval in the durable outbox arrives after a restart."""
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.serving import free_port

    await receiver.stop()  # the receiver is down: nothing can be delivered
    scenario = tmp_path / "push.yaml"
    scenario.write_text(
        json.dumps(
            {
                "devices": [
                    {
                        "id": "entrance",
                        "push": {
                            "url": receiver.url,
                            "ca_file": ca_file,
                            "interval_minutes": 1,
                            **FAST,
                        },
                    }
                ]
            }
        )
    )
    db = tmp_path / "state.db"
    start = "2024-06-05T10:30:00Z"

    def serve(speed: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulator",
                "serve",
                str(scenario),
                "--db",
                str(db),
                "--port",
                str(free_port()),
                "--start",
                start,
                "--speed",
                speed,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def produced() -> list[float]:
        if not db.exists():
            return []
        with sqlite3.connect(db) as con:
            try:
                return [r[0] for r in con.execute("SELECT due FROM push_outbox ORDER BY id")]
            except sqlite3.OperationalError:
                return []

    first = serve("600")  # ten simulated minutes per wall second
    try:
        await until(lambda: len(produced()) >= 5, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    expected = produced()
    assert len(expected) >= 5
    await receiver.start()  # the receiver is back, on the same port
    second = serve("0")  # restarted with the same --db, clock frozen before the backlog
    try:
        await until(lambda: len(receiver.requests) >= len(expected), timeout=30)
        await asyncio.sleep(0.3)  # nothing more (no duplicates) arrives
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=20)
    assert second.returncode == 0, err
    assert receiver.froms() == [utc(due - 60) for due in expected]


async def test_waiting_for_a_free_connection_does_not_count_against_the_timeout(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    """More devices than connections (10,000 devices share 100): a push that waits for a
    connection still has its whole ``timeout_s`` for the request itself."""
    receiver.delays = [0.3, 0.3, 0.3]
    cfg = PushConfig(url=receiver.url, interval_minutes=1, ca_file=ca_file, timeout_s=0.5)
    devices = [DeviceConfig(id=f"d{i}", serial=f"ACCC8E00000{i}", push=cfg) for i in range(3)]
    clock = SimClock(start=T0, speed=0)
    fleet = Runtime(Scenario(seed=7, devices=devices), clock)
    fleet.pusher.connections = 1  # the three wait in turn: 0.9 s for the last one
    running.append(fleet)
    await fleet.start()
    clock.set(BOUNDARY + 60 + SEND_DELAY_S[1])  # 10:31:45: every 10:30 push is due at once
    await fleet.pusher.wait_idle()
    assert [fleet.pusher.stats(d.id).failed_attempts for d in devices] == [0, 0, 0]
    assert len(receiver.requests) == 3


async def test_production_is_spread_over_turns_of_the_loop(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    # Past local midnight every device works out its new day (about 1 ms each): a batch is
    # bounded in wall time too, so thousands of devices never hold the loop for seconds.
    # With no time at all allowed, each batch is one interval, and nothing is lost.
    cfg = PushConfig(url=receiver.url, ca_file=ca_file, interval_minutes=1, **FAST)
    devices = [
        DeviceConfig(
            id=f"door-{k}", serial=f"ACCC8E0000{k:02X}", timezone="Europe/Stockholm", push=cfg
        )
        for k in range(12)
    ]
    clock = SimClock(start=T0, speed=0)
    fleet = Runtime(Scenario(seed=7, devices=devices), clock)
    running.append(fleet)
    fleet.pusher.batch_s = 0.0
    sizes: list[int] = []
    produce = fleet.pusher.produce_due

    def spy(lane: Any, t: float) -> int:
        sizes.append(produce(lane, t))
        return sizes[-1]

    fleet.pusher.produce_due = spy  # type: ignore[method-assign]
    await fleet.start()
    clock.advance(3 * 60)  # three intervals of each device fall due at once
    await until(lambda: len(receiver.requests) == 36)
    assert max(sizes) == 1 and sum(sizes) == 36
    for k in range(12):
        serial = f"accc8e0000{k:02x}"
        froms = [
            r.doc["data"]["utcFrom"]
            for r in receiver.requests
            if r.doc["sensor"]["serial"] == serial
        ]
        assert froms == minutes(BOUNDARY, 3)


async def test_a_pushing_devices_next_day_is_ready_before_its_midnight(
    receiver: Receiver, ca_file: str, running: list[Runtime]
) -> None:
    # Worked out ahead, one device per turn of the loop: at local midnight the production
    # of the new day's first interval finds the day ready (no day to work out then), and
    # the day after is worked out in turn.
    midnight = datetime(2024, 6, 6, 22, 0, tzinfo=UTC).timestamp()  # 00:00 in Stockholm
    clock = SimClock(start=midnight - 150, speed=0)
    fleet = make_fleet(receiver.url, clock, ca_file=ca_file)
    running.append(fleet)
    device = fleet.fleet.devices[0]
    await fleet.start()
    await until(lambda: not fleet.pusher.warming)
    today = device.local_date(clock.now())
    tomorrow, after = today + timedelta(days=1), today + timedelta(days=2)
    cached = fleet.fleet.cache
    assert (device.index, today, device.revision()) in cached
    assert (device.index, tomorrow, device.revision()) in cached
    computed: list[list[date]] = []
    compute = device._compute

    def spy(days: list[date]) -> Any:
        computed.append(days)
        return compute(days)

    device._compute = spy  # type: ignore[method-assign]
    clock.advance(260)  # 00:01:50: the intervals up to 00:01 are produced, the new day's first too
    await until(lambda: fleet.pusher.stats("entrance").produced == 4)
    await until(lambda: not fleet.pusher.warming)
    assert computed == [[after]]  # only the day after, by the warm task
    assert (device.index, after, device.revision()) in cached
