"""The simulated clock: real-time, scaled, frozen, moved; freezegun controls it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from simulator.clock import SimClock

START = datetime(2024, 6, 7, 12, 0, tzinfo=UTC).timestamp()


def test_real_time_follows_the_wall() -> None:
    with freeze_time("2026-01-01 00:00:00") as frozen:
        clock = SimClock()
        assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        frozen.tick(5)
        assert clock.now() == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC).timestamp()


def test_scaled_from_a_start() -> None:
    with freeze_time("2026-01-01 00:00:00") as frozen:
        clock = SimClock(start=START, speed=60)
        frozen.tick(2)
        assert clock.now() == START + 120


def test_frozen_until_moved() -> None:
    with freeze_time("2026-01-01 00:00:00") as frozen:
        clock = SimClock(start=START, speed=0)
        frozen.tick(3600)
        assert clock.now() == START
        clock.advance(90)
        assert clock.now() == START + 90
        clock.set(START - 10)
        assert clock.now() == START - 10


def test_speed_change_does_not_jump() -> None:
    with freeze_time("2026-01-01 00:00:00") as frozen:
        clock = SimClock(start=START, speed=10)
        frozen.tick(1)
        clock.set_speed(0)
        frozen.tick(100)
        assert clock.now() == START + 10
        clock.set_speed(1)
        frozen.tick(1)
        assert clock.now() == START + 11


def test_bad_speeds_and_advances() -> None:
    with pytest.raises(ValueError):
        SimClock(speed=-1)
    with pytest.raises(ValueError):
        SimClock().advance(-5)


def test_the_clock_stays_in_the_simulated_calendar() -> None:
    with pytest.raises(ValueError, match="1971"):
        SimClock(start=0.0)
    clock = SimClock(start=START, speed=0)
    with pytest.raises(ValueError, match="9000"):
        clock.set(datetime(9000, 1, 2, tzinfo=UTC).timestamp())
    with pytest.raises(ValueError, match="9000"):
        clock.advance(8000 * 366 * 86400.0)
    assert clock.now() == START  # a refused move leaves the clock where it was
