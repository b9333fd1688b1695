"""The crowd (truth): visitors arriving in groups, staying a while and leaving.

Everything for one device-day is drawn from one generator seeded by
``(seed, device_index, day_ordinal)``, so any day can be computed alone, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.model.bins import DayGrid, IntArray
from simulator.scenario import CrowdConfig

SWEEP_MINUTES = 15  # after closing, those still inside leave within this many minutes


def day_rng(seed: int, device_index: int, day_ordinal: int) -> np.random.Generator:
    """The random stream of one device-day, independent of every other."""
    return np.random.default_rng(np.random.SeedSequence([seed, device_index, day_ordinal]))


@dataclass(frozen=True, eq=False)
class Crowd:
    """True movements through one door during one local day, per minute."""

    in_adults: IntArray
    in_children: IntArray
    out_adults: IntArray
    out_children: IntArray

    @staticmethod
    def empty(n: int) -> Crowd:
        """A day on which nobody passes."""
        z = np.zeros(n, dtype=np.int64)
        return Crowd(z, z, z, z)


def rate_shape(cfg: CrowdConfig, grid: DayGrid, hours: tuple[int, int]) -> np.ndarray:
    """Relative arrival rate of each minute of the day (zero while closed), summing to 1."""
    wall = grid.wall_minute.astype(np.float64)
    shape = np.full(grid.n, cfg.base_level)
    for p in cfg.profile:
        at = p.at.hour * 60 + p.at.minute
        shape += p.weight * np.exp(-0.5 * ((wall - at) / p.width_minutes) ** 2)
    open_, close = hours
    shape[(grid.wall_minute < open_) | (grid.wall_minute >= close)] = 0.0
    total = shape.sum()
    return shape / total if total > 0 else shape


def expected_visitors(cfg: CrowdConfig, grid: DayGrid) -> float:
    """Mean visitors of the day before its random level: base × weekday × month × special."""
    day = grid.day
    if day in cfg.closed_dates:
        return 0.0
    wd = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]
    f = cfg.weekday_factors.get(wd, 1.0) * cfg.month_factors[day.month - 1]
    f *= cfg.day_factors.get(day, 1.0)
    return cfg.daily_visitors * f


def simulate_crowd(
    cfg: CrowdConfig, grid: DayGrid, child_share: float, rng: np.random.Generator
) -> Crowd:
    """Draw one day of arrivals and departures through this door."""
    hours = cfg.hours_of(grid.day.weekday())
    mean = expected_visitors(cfg, grid)
    if hours is None or mean <= 0:
        return Crowd.empty(grid.n)
    cv = cfg.day_level_cv
    level = rng.gamma(1.0 / cv**2, cv**2) if cv > 0 else 1.0
    group_rate = rate_shape(cfg, grid, hours) * (mean * level / cfg.group_size_mean)
    groups_per_minute = rng.poisson(group_rate)
    g = int(groups_per_minute.sum())
    if g == 0:
        return Crowd.empty(grid.n)
    arrive = np.repeat(np.arange(grid.n, dtype=np.int64), groups_per_minute)
    size = rng.geometric(1.0 / cfg.group_size_mean, g)
    adults = rng.binomial(size, 1.0 - child_share)
    children = size - adults
    dwell = rng.lognormal(np.log(cfg.dwell_median_minutes), cfg.dwell_sigma, g)
    leave = arrive + np.rint(dwell).astype(np.int64)
    # Closing time, as an index into the day (the first minute at or after closing).
    after = grid.wall_minute >= hours[1]
    close_idx = int(np.argmax(after)) if after.any() else grid.n
    late = leave >= close_idx
    leave[late] = close_idx + rng.integers(0, SWEEP_MINUTES, int(late.sum()))
    np.minimum(leave, grid.n - 1, out=leave)
    if cfg.exit_share < 1.0:
        out_a = rng.binomial(adults, cfg.exit_share)
        out_c = rng.binomial(children, cfg.exit_share)
    else:
        out_a, out_c = adults, children
    n = grid.n
    return Crowd(
        np.bincount(arrive, adults, n).astype(np.int64),
        np.bincount(arrive, children, n).astype(np.int64),
        np.bincount(leave, out_a, n).astype(np.int64),
        np.bincount(leave, out_c, n).astype(np.int64),
    )
