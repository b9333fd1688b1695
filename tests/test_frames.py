"""The frame-rate model: per-minute rates, the frame counter since boot, rolling averages."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.model.frames import (
    WINDOWS,
    frame_stats,
    frames_until,
    interval_noise,
    minute_rates,
)
from simulator.runtime.runtime import Runtime
from simulator.schema.scenario import FramesConfig, Scenario
from simulator.specs import frames_spec
from simulator.store import Action
from tests.conftest import T0, make_fleet

QUIET = frames_spec(FramesConfig(minute_jitter=0.0, frame_jitter=0.0))


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---- the pure model -----------------------------------------------------------------------


def test_rate_dips_as_more_people_pass() -> None:
    people = np.array([0, 5, 20, 100], dtype=np.int64)
    rates = minute_rates(people, QUIET, rng())
    assert rates[0] == QUIET.nominal_fps
    assert np.all(np.diff(rates) < 0)
    deepest = QUIET.nominal_fps * (1 - QUIET.crowd_drop)
    assert rates[-1] == pytest.approx(deepest, rel=0.01)


def test_rate_never_below_its_floor_and_takes_injected_factors() -> None:
    cfg = frames_spec(FramesConfig(minute_jitter=0.0, crowd_drop=1.0, min_fps=3.0))
    assert minute_rates(np.array([10_000]), cfg, rng()).tolist() == [3.0]
    half = minute_rates(np.zeros(3, dtype=np.int64), QUIET, rng(), np.array([1.0, 0.5, 0.0]))
    assert half.tolist() == [20.0, 10.0, QUIET.min_fps]


def test_jitter_is_small_and_seeded() -> None:
    cfg = frames_spec(FramesConfig())
    a = minute_rates(np.zeros(1440, dtype=np.int64), cfg, np.random.default_rng(1))
    b = minute_rates(np.zeros(1440, dtype=np.int64), cfg, np.random.default_rng(1))
    assert a.tolist() == b.tolist()
    assert a.std() / a.mean() == pytest.approx(cfg.minute_jitter, rel=0.2)


def test_frames_until_integrates_the_rates() -> None:
    rates = np.array([10.0, 20.0, 30.0])
    assert frames_until(rates, 1000.0, 1000.0) == 0
    assert frames_until(rates, 1000.0, 1030.0) == 300
    assert frames_until(rates, 1000.0, 1090.0) == 600 + 600
    assert frames_until(rates, 1000.0, 1180.0) == 600 + 1200 + 1800
    assert frames_until(rates, 1000.0, 9999.0) == 3600  # the day's end


def test_interval_noise_is_the_same_whoever_asks() -> None:
    key = (42, 0, 1_700_000_000)
    whole = interval_noise(key, 0, 3000, 0.08)
    assert interval_noise(key, 1500, 1600, 0.08).tolist() == whole[1500:1600].tolist()
    assert interval_noise((43, 0, 1_700_000_000), 0, 3000, 0.08).tolist() != whole.tolist()
    assert abs(whole.mean()) < 0.01
    assert whole.std() == pytest.approx(0.08, rel=0.1)


def test_steady_rate_without_noise_reads_the_rate_everywhere() -> None:
    recent = np.full(20, 18.0)
    stats = frame_stats(recent, 30.0, 50_000, np.zeros(1000))
    assert stats.fps == 18.0
    assert all(stats.averages[w] == pytest.approx(18.0) for w in WINDOWS)
    assert stats.frames == 50_000


def test_windows_reach_back_across_minutes() -> None:
    # 10 fps for the last minutes, 20 fps in the current one for 10 s (200 frames):
    # the last 100 frames are all at 20 fps; the last 1000 span 200 at 20 and 800 at 10.
    recent = np.array([10.0] * 19 + [20.0])
    stats = frame_stats(recent, 10.0, 50_000, np.zeros(1000))
    assert stats.averages[100] == pytest.approx(20.0)
    assert stats.averages[1000] == pytest.approx(1000 / (10 + 80))


def test_just_booted_averages_over_the_frames_there_are() -> None:
    recent = np.full(20, 20.0)
    assert frame_stats(recent, 1.0, 0, np.zeros(0)).averages == {w: 0.0 for w in WINDOWS}
    stats = frame_stats(recent, 1.0, 20, np.zeros(20))
    assert stats.averages[1000] == pytest.approx(20.0)


def test_short_windows_scatter_more_than_long_ones() -> None:
    recent = np.full(20, 20.0)
    key = (1, 2, 3)
    samples = [
        frame_stats(recent, 59.0, n, interval_noise(key, n - 1000, n, 0.08))
        for n in range(5000, 25000, 97)
    ]
    sd = {w: np.std([s.averages[w] for s in samples]) for w in WINDOWS}
    assert sd[5] > sd[50] > sd[100] > sd[1000]
    assert np.mean([s.averages[1000] for s in samples]) == pytest.approx(20.0, rel=0.01)


# ---- on a device --------------------------------------------------------------------------


def booted(at: float = T0, seed: int | None = None) -> Runtime:
    fleet = make_fleet(Scenario(), at=at, seed=seed)
    fleet.fleet.devices[0].booted_at = at
    return fleet


def test_counter_starts_at_boot_and_only_grows() -> None:
    fleet = booted()
    device = fleet.fleet.devices[0]
    assert device.frame_count(T0) == 0
    times = T0 + np.cumsum(np.random.default_rng(3).uniform(0, 400, 100))
    counts = [device.frame_count(float(t)) for t in times]
    assert np.all(np.diff(counts) >= 0)
    rates = device.frame_rates(device.local_date(T0))
    assert 0.7 * 20 * (times[-1] - T0) < counts[-1] < 1.1 * 20 * (times[-1] - T0)
    assert rates.min() >= device.cfg.frames.min_fps


def test_crowded_hours_run_slower_than_the_night() -> None:
    device = booted().fleet.devices[0]
    day = device.local_date(T0 - 86400)
    rates = device.frame_rates(day)
    counts = device.counts(day)
    traffic = counts.in_ + counts.out
    busy = traffic >= np.quantile(traffic[traffic > 0], 0.9)
    assert busy.sum() > 30
    assert rates[busy].mean() < 0.95 * rates[:360].mean()


def test_counter_spans_days_since_boot() -> None:
    fleet = booted(T0 - 3 * 86400)
    device = fleet.fleet.devices[0]
    n = device.frame_count(T0)
    assert n == device.frame_count(T0)  # the cached days give the same
    assert 3 * 86400 * 0.8 * 20 < n < 3 * 86400 * 1.05 * 20


def test_a_reboot_restarts_the_counter() -> None:
    fleet = booted(T0 - 3600)
    device = fleet.fleet.devices[0]
    assert device.frame_count(T0) > 50_000
    fleet.store.add(Action(device.id, T0, "reboot", 0))
    assert device.frame_count(T0) == 0
    assert 0 < device.frame_count(T0 + 10) <= 10 * 20 * 1.1
    assert device.frame_stats(T0 + 600).frames == device.frame_count(T0 + 600)


def test_injected_slowdown_takes_effect_from_the_next_minute() -> None:
    fleet = booted(T0 - 600)
    device = fleet.fleet.devices[0]
    at = T0 + 30  # mid-minute
    before = device.frame_count(at)
    fleet.store.add(Action(device.id, at, "fps", 25))
    assert device.frame_count(at) == before  # the past is not rewritten
    grid = device.grid(device.local_date(at))
    i = grid.index_of(at)
    rates = device.frame_rates(grid.day)
    assert rates[i + 1] <= 0.3 * rates[i]
    assert device.frame_stats(at + 300).averages[1000] < 0.3 * device.cfg.frames.nominal_fps * 1.2


def test_frame_stats_are_deterministic_per_seed() -> None:
    a = booted().fleet.devices[0].frame_stats(T0 + 3600)
    b = booted().fleet.devices[0].frame_stats(T0 + 3600)
    c = booted(seed=7).fleet.devices[0].frame_stats(T0 + 3600)
    assert a == b
    assert a != c
