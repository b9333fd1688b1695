"""Unit tests of the data push's pure parts: schedule, payload, backoff, config, outbox."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from simulator.clock import SimClock
from simulator.runtime.push import PushSetupError
from simulator.runtime.push import payload as pl
from simulator.runtime.push.schedule import (
    due_count,
    interval_end,
    interval_start,
    send_delay,
    send_time,
)
from simulator.runtime.push.sender import backoff
from simulator.runtime.runtime import Runtime
from simulator.schema.load import ScenarioError, parse_scenario
from simulator.schema.scenario import DeviceConfig, PushConfig, Scenario
from simulator.store import Store

T0 = datetime(2024, 6, 5, 10, 30, tzinfo=UTC).timestamp()
STHLM = ZoneInfo("Europe/Stockholm")


def device(push: PushConfig, tz: str = "Europe/Stockholm") -> Runtime:
    sc = Scenario(seed=7, devices=[DeviceConfig(id="d", timezone=tz, push=push)])
    return Runtime(sc, SimClock(start=T0, speed=0))


# ---- schedule ----------------------------------------------------------------------------
def test_boundaries_are_multiples_of_the_interval() -> None:
    t = T0 + 7 * 60 + 3
    assert interval_start(t, 15) == T0
    assert interval_end(t, 15) == T0 + 900
    assert interval_end(T0, 5) == T0 + 300  # strictly after a boundary
    assert interval_start(t, 1) == T0 + 420


def test_due_count() -> None:
    assert due_count(T0, T0 + 59, 1) == 0
    assert due_count(T0, T0 + 60, 1) == 1
    assert due_count(T0, T0 + 3600, 15) == 4
    assert due_count(T0 + 120, T0 + 900, 15) == 1  # a short first interval counts as one
    assert due_count(T0 + 600, T0, 1) == 0  # clock behind the cursor


# ---- payload -----------------------------------------------------------------------------
def test_time_texts() -> None:
    t = datetime(2020, 12, 8, 12, 19, tzinfo=UTC).timestamp()
    assert pl.utc_text(t) == "2020-12-08T12:19:00Z"
    assert pl.local_text(t, STHLM) == "2020-12-08T13:19:00"


def test_wire_body_key_order_and_send_times() -> None:
    stored = json.dumps({"data": {"x": 1}, "sensor": {"y": 2}})
    sent = datetime(2020, 12, 8, 12, 20, 12, tzinfo=UTC).timestamp()
    body = pl.wire_body(stored, sent, STHLM)
    doc = json.loads(body)
    assert list(doc) == ["apiName", "apiVersion", "utcSent", "localSent", "data", "sensor"]
    assert body.startswith(
        '{"apiName": "Axis Retail Data", "apiVersion": "0.4", '
        '"utcSent": "2020-12-08T12:20:12Z", "localSent": "2020-12-08T13:20:12", "data": '
    )


@pytest.mark.parametrize("per", ["minute", "interval"])
def test_bodies_are_the_bytes_json_dumps_writes(per: str) -> None:
    # The bodies are written from templates: byte for byte what json.dumps writes for the
    # document built as objects (the vendor sample's key order), a non-ASCII name escaped.
    push = PushConfig(url="https://127.0.0.1/p", token="t", measurements=per)
    cfg = DeviceConfig(id="d", name="Entrée nord", push=push)
    fleet = Runtime(Scenario(seed=7, devices=[cfg]), SimClock(start=T0, speed=0))
    d = fleet.fleet.devices[0]
    start, end = int(T0), int(T0) + 300
    c = pl.interval_counts(d, start, end)
    cols = np.stack([c.in_, c.in_adults, c.out, c.out_adults], axis=1).tolist()
    spans = [(start, end, [int(sum(x)) for x in zip(*cols, strict=True)])]
    if per == "minute":
        spans = [(start + 60 * k, start + 60 * k + 60, r) for k, r in enumerate(cols)]

    def span(a: int, b: int) -> dict[str, str]:
        return {
            "utcFrom": pl.utc_text(a),
            "utcTo": pl.utc_text(b),
            "localFrom": pl.local_text(a, STHLM),
            "localTo": pl.local_text(b, STHLM),
        }

    def items(r: list[int]) -> list[dict[str, object]]:
        return [
            {"direction": "in", "count": r[0], "adults": r[1]},
            {"direction": "out", "count": r[2], "adults": r[3]},
        ]

    ms = [{"kind": "people-counts", **span(a, b), "items": items(r)} for a, b, r in spans]
    doc = {"data": {**span(start, end), "measurements": ms}, "sensor": pl.sensor(cfg, push)}
    stored = pl.stored_body(d, start, end)
    assert stored == json.dumps(doc)
    assert "Entr\\u00e9e nord" in stored
    sent = end + 17.0
    envelope = {"apiName": "Axis Retail Data", "apiVersion": "0.4"}
    envelope |= {"utcSent": pl.utc_text(sent), "localSent": pl.local_text(sent, STHLM)}
    assert pl.wire_body(stored, sent, STHLM) == json.dumps(envelope | doc)


def test_interval_measurement_mode_sums_the_minutes() -> None:
    fleet = device(PushConfig(url="https://127.0.0.1/p", measurements="interval"))
    d = fleet.fleet.devices[0]
    start = int(T0)
    doc = json.loads(pl.stored_body(d, start, start + 900))
    (m,) = doc["data"]["measurements"]
    c = pl.interval_counts(d, start, start + 900)
    assert m["items"] == [
        {"direction": "in", "count": int(c.in_.sum()), "adults": int(c.in_adults.sum())},
        {"direction": "out", "count": int(c.out.sum()), "adults": int(c.out_adults.sum())},
    ]
    assert (m["utcFrom"], m["utcTo"]) == (doc["data"]["utcFrom"], doc["data"]["utcTo"])
    assert c.in_.sum() > 0  # lunchtime: the comparison above is not vacuous


def test_interval_counts_across_local_midnight() -> None:
    # Asia/Kathmandu is UTC+5:45: a 1-hour span crossing its midnight joins two local days.
    fleet = device(PushConfig(url="https://127.0.0.1/p"), tz="Asia/Kathmandu")
    d = fleet.fleet.devices[0]
    midnight = int(datetime(2024, 6, 5, tzinfo=ZoneInfo("Asia/Kathmandu")).timestamp())
    c = pl.interval_counts(d, midnight - 1800, midnight + 1800)
    before, after = d.counts(date(2024, 6, 4)), d.counts(date(2024, 6, 5))
    assert np.array_equal(c.in_, np.concatenate([before.in_[-30:], after.in_[:30]]))


@pytest.mark.parametrize("per", ["minute", "interval"])
def test_a_devices_window_writes_the_bodies_its_day_writes(per: str) -> None:
    # A pusher reads a few minutes ahead into the device's window: each body is still the
    # one written from the day itself, across local midnight (Kathmandu, UTC+5:45) and
    # after a door action changes the minutes already read ahead.
    fleet = device(PushConfig(url="https://127.0.0.1/p", measurements=per), tz="Asia/Kathmandu")
    d = fleet.fleet.devices[0]
    midnight = int(datetime(2024, 6, 5, tzinfo=ZoneInfo("Asia/Kathmandu")).timestamp())
    window = pl.Window()
    for start in range(midnight - 20 * 60, midnight + 20 * 60, 60):
        assert pl.stored_body(d, start, start + 60, window) == pl.stored_body(d, start, start + 60)
    noon = midnight + 12 * 3600
    ahead = pl.stored_body(d, noon, noon + 300, window)
    assert window.end > noon + 600  # read ahead: the next interval comes from the window
    d.record("door", 0, noon + 300)  # closed from the next interval on
    closed = pl.stored_body(d, noon + 300, noon + 600, window)
    assert closed == pl.stored_body(d, noon + 300, noon + 600)
    assert '"count": 0' in closed and ahead != closed.replace("13:05", "13:00")
    assert any(f'"count": {n}' in ahead for n in range(1, 99))  # lunchtime: not vacuous


def test_sensor_says_timeZone_and_the_os_version_by_default() -> None:
    fleet = device(PushConfig(url="https://127.0.0.1/p"))
    doc = json.loads(pl.stored_body(fleet.fleet.devices[0], int(T0), int(T0) + 60))
    assert list(doc["sensor"])[:3] == ["application", "applicationVersion", "timeZone"]
    assert doc["sensor"]["timeZone"] == "Europe/Stockholm"
    assert doc["sensor"]["applicationVersion"] == "11.11.73"  # the device's AXIS OS version
    assert "timezone" not in doc["sensor"]


def test_timezone_key_option_and_own_application_version() -> None:
    push = PushConfig(url="https://127.0.0.1/p", timezone_key="timezone")
    cfg = DeviceConfig(firmware_version="12.2.1", push=push)
    assert cfg.application_version == "12.2.1"  # follows the firmware unless set
    sensor = pl.sensor(cfg.model_copy(update={"application_version": "10.3"}), push)
    assert sensor["timezone"] == "Europe/Stockholm" and "timeZone" not in sensor
    assert sensor["applicationVersion"] == "10.3"


def test_send_delay_is_seeded_per_device_and_interval() -> None:
    ends = [int(T0) + 60 * k for k in range(200)]
    delays = [send_delay(42, "entrance", e) for e in ends]
    assert delays == [send_delay(42, "entrance", e) for e in ends]  # same seed, same bytes
    assert min(delays) >= 5 and max(delays) <= 45 and len(set(delays)) > 20
    assert delays != [send_delay(43, "entrance", e) for e in ends]
    assert delays != [send_delay(42, "exit", e) for e in ends]
    assert send_time(42, "entrance", ends[0]) == ends[0] + delays[0]


# ---- backoff -----------------------------------------------------------------------------
def test_backoff_is_capped_exponential_with_seeded_jitter() -> None:
    cfg = PushConfig(url="https://h/p", backoff_initial_s=1, backoff_max_s=30, backoff_jitter=0.2)
    rng = np.random.default_rng(1)
    delays = [backoff(cfg, a, rng) for a in range(1, 12)]
    for a, d in enumerate(delays, start=1):
        base = min(30.0, 2.0 ** (a - 1))
        assert 0.8 * base <= d <= base
    assert max(delays) <= 30
    again = [backoff(cfg, a, np.random.default_rng(1)) for a in range(1, 3)]
    assert again[0] == delays[0]
    assert backoff(cfg, 10_000, rng) <= 30  # no overflow on very long outages


# ---- configuration -----------------------------------------------------------------------
@pytest.mark.parametrize("minutes", [1, 5, 15])
def test_supported_intervals(minutes: int) -> None:
    assert PushConfig(url="https://h/p", interval_minutes=minutes).interval_minutes == minutes


@pytest.mark.parametrize("minutes", [0, 2, 10, 30, 60])
def test_other_intervals_are_a_clear_error(minutes: int) -> None:
    text = (
        "devices:\n  - id: a\n    push:\n      url: https://h/p\n"
        f"      interval_minutes: {minutes}\n"
    )
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text)
    assert "line 5: devices.0.push.interval_minutes" in str(e.value)
    assert "1, 5 or 15" in str(e.value)


def test_plain_http_needs_opt_in() -> None:
    with pytest.raises(ValidationError, match="allow_http"):
        PushConfig(url="http://127.0.0.1:9/p")
    assert PushConfig(url="http://127.0.0.1:9/p", allow_http=True).allow_http
    with pytest.raises(ValidationError, match="not an https"):
        PushConfig(url="ftp://h/p")
    with pytest.raises(ValidationError, match="backoff_max_s"):
        PushConfig(url="https://h/p", backoff_initial_s=10, backoff_max_s=1)


def test_unreadable_ca_file_is_a_start_up_error() -> None:
    with pytest.raises(PushSetupError, match="ca_file"):
        device(PushConfig(url="https://127.0.0.1/p", ca_file="/nonexistent/ca.pem"))


# ---- outbox ------------------------------------------------------------------------------
def test_outbox_is_durable_bounded_and_ordered(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Store(path)
    assert s.push_cursor("a") is None
    rows = [("a", 60.0 * i, f"b{i}") for i in range(1, 6)]
    dropped = s.outbox_produce(rows, {"a": 300.0}, {"a": 3})
    assert dropped == {"a": 2}
    assert s.outbox_size("a") == 3
    first = s.outbox_next("a")
    assert first is not None and first.body == "b3"
    s.outbox_remove([("a", first.id), ("a", 999_999)])  # one gone already: rows recounted
    assert s.outbox_size("a") == 2
    s.outbox_produce([("b", 60.0, "x"), ("b", 120.0, "y")], {"b": 120.0}, {"b": 3})
    b1 = s.outbox_next("b")
    assert b1 is not None
    s.outbox_remove([("b", b1.id)])  # all removed in one statement: counted in memory
    assert (s.outbox_size("a"), s.outbox_size("b")) == (2, 1)
    s.close()
    s = Store(path)
    assert s.push_cursor("a") == 300.0
    assert s.outbox_size("a") == 2
    nxt = s.outbox_next("a")
    assert nxt is not None and (nxt.body, nxt.due) == ("b4", 240.0)
    after = s.outbox_next("a", nxt.id)
    assert after is not None and after.body == "b5"
    assert s.outbox_next("a", after.id) is None
    s.close()


def test_a_scenario_file_configures_the_push() -> None:
    sc = parse_scenario(
        "devices:\n"
        "  - id: door\n"
        "    push:\n"
        "      url: https://receiver.example/counts\n"
        "      interval_minutes: 5\n"
        "      token: abc\n"
        "      timezone_key: timeZone\n"
        "      backoff_initial_s: 0.5\n"
    )
    push = sc.devices[0].push
    assert push is not None
    assert (push.interval_minutes, push.token, push.timezone_key) == (5, "abc", "timeZone")
    assert (push.outbox_limit, push.backoff_max_s, push.measurements) == (10080, 300.0, "minute")
    assert Scenario().devices[0].push is None  # no push unless configured


def test_serve_refuses_an_unreadable_ca_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from simulator.cli import main

    f = tmp_path / "s.yaml"
    f.write_text(
        "devices:\n  - push:\n      url: https://127.0.0.1:9/p\n"
        f"      ca_file: {tmp_path}/missing.pem\n"
    )
    assert main(["serve", str(f), "--port", "0"]) == 2
    assert "ca_file" in capsys.readouterr().err
