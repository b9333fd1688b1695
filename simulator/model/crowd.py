"""The crowd (truth): visitors arriving in groups, staying a while and leaving.

A *site* is one door (a device on its own) or several doors simulated together (devices
sharing ``site``): its visitors enter through one door and may leave through another, so
each door's in and out need not balance while the site's do. Each site-day is drawn from
its own counter-based random lanes keyed by ``(seed, site, day)`` (see ``rng``), so any
day can be computed alone, in any order, or in a batch of days, with identical results.

One site-day:
- its plan (``calendar.day_plan``): opening hours of its weekday, holiday or special day,
  and expected visitors = daily visitors × weekday × month × holiday/special factors;
- a random day level ~ Gamma(mean 1, CV ``day_level_cv``) shared by all doors;
- groups ~ Poisson(expected × level / mean group size), each arriving at a minute drawn
  from the time-of-day profile, plus the groups of any bursts (not levelled);
- per group: size and children, a lognormal dwell, the door it enters by (share of daily
  visitors) and the door it leaves by (``exit_share``: the same door, else another);
  those still inside at closing leave within ``sweep_minutes``; nobody stays past midnight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt

from simulator.model import rng
from simulator.model.bins import DayGrid, IntArray, day_grid
from simulator.model.calendar import DayPlan, day_plan, unusual_days
from simulator.model.specs import BurstSpec, CounterSpec, CrowdSpec, Hours, PeakSpec
from simulator.model.tables import (
    WIDTH,
    Alias,
    GroupTable,
    door_tables,
    dwell_table,
    group_table,
    shape_alias,
    size_weights,
)

FloatArray = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]

#: Random lanes of a site-day (the counter's lanes are in ``counter``).
LANE_LEVEL, LANE_GROUPS, LANE_DOORS, LANE_SWEEP = 0, 1, 2, 3
LANE_SOURCE = 16  # + source number (0: the regular crowd, i: the day's i-th burst)
_U16 = np.uint64(0xFFFF)
_U32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True, eq=False)
class Crowd:
    """True movements through one door, per minute (one day, or days end to end)."""

    in_adults: IntArray
    in_children: IntArray
    out_adults: IntArray
    out_children: IntArray


@dataclass(eq=False)
class _Memo:
    """Per-site caches: each year's unusual days, the days' alias tables."""

    years: dict[int, set[date]] = field(default_factory=dict)
    tables: dict[tuple[object, ...], tuple[Alias | None, int]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class SiteSpec:
    """What the crowd of a site needs: its doors, their shares and counters, its one crowd."""

    name: str
    timezone: str
    crowd: CrowdSpec
    child_share: float
    door_ids: tuple[str, ...]
    daily_visitors: tuple[float, ...]
    exit_shares: tuple[float, ...]
    counters: tuple[CounterSpec, ...]

    @property
    def n_doors(self) -> int:
        """How many doors (simulated devices) the site has."""
        return len(self.door_ids)

    @property
    def one_way(self) -> bool:
        """True when everybody enters and leaves by the one door (no door draws needed)."""
        return self.n_doors == 1 and self.exit_shares[0] >= 1.0

    def door(self, device_id: str) -> int:
        """Index of a device's door in the site."""
        return self.door_ids.index(device_id)

    def base_key(self, seed: int) -> int:
        """The key all of this site's random lanes derive from."""
        return _base_key(seed, self.name)

    @cached_property
    def groups(self) -> GroupTable:
        """The site's table of group sizes and children."""
        return group_table(size_weights(self.crowd), self.child_share)

    @cached_property
    def _memo(self) -> _Memo:
        return _Memo()

    @cached_property
    def week(self) -> list[DayPlan]:
        """The plan of each weekday of an ordinary day, before its month factor."""
        c = self.crowd
        out = []
        for wd in range(7):
            hours = c.hours[wd]
            out.append(DayPlan(hours, c.weekday_factors[wd] if hours is not None else 0.0, wd))
        return out

    def is_unusual(self, day: date) -> bool:
        """True when a day may differ from its weekday (holiday, special, closed...)."""
        unusual = self._memo.years.get(day.year)
        if unusual is None:
            unusual = unusual_days(self.crowd, day.year)
            self._memo.years[day.year] = unusual
        return day in unusual

    def plan(self, day: date) -> DayPlan:
        """The day's plan (``calendar.day_plan``), fast for ordinary days."""
        if self.is_unusual(day):
            return day_plan(self.crowd, day)
        p = self.week[day.weekday()]
        return DayPlan(p.hours, p.factor * self.crowd.month_factors[day.month - 1], p.weekday)

    def day_table(self, grid: DayGrid, plan: DayPlan) -> tuple[Alias | None, int]:
        """The alias table of a day's arrivals and the index of its closing minute."""
        assert plan.hours is not None
        sig = _dst_signature(grid)
        key = (plan.weekday, plan.hours, sig)
        hit = self._memo.tables.get(key)
        if hit is None:
            profile = self.crowd.profiles[plan.weekday]
            table = _shape_alias(profile, self.crowd, plan.hours, self.timezone, sig, grid)
            after = grid.wall_minute >= plan.hours[1]
            hit = (table, int(np.argmax(after)) if after[-1] else grid.n)
            self._memo.tables[key] = hit
        return hit

    def burst_table(self, grid: DayGrid, start: int, minutes: int) -> Alias | None:
        """A flat alias table over a burst's minutes (local wall time, DST-safe)."""
        key = ("burst", start, minutes, _dst_signature(grid))
        hit = self._memo.tables.get(key)
        if hit is None:
            w = grid.wall_minute
            idx = np.flatnonzero((w >= start) & (w < start + minutes))
            hit = (Alias.uniform(idx) if len(idx) else None, 0)
            self._memo.tables[key] = hit
        return hit[0]


@lru_cache(maxsize=1024)
def _base_key(seed: int, name: str) -> int:
    return rng.name_key("p8815-crowd", seed, name)


def _dst_signature(grid: DayGrid) -> tuple[int, int]:
    """What distinguishes a day's minute layout: its length and where its clock jumps."""
    if grid.n == 1440:
        return (1440, -1)
    jumps = np.flatnonzero(np.diff(grid.wall_minute) != 1)
    return (grid.n, int(jumps[0]) if len(jumps) else -1)


_ALIASES: dict[tuple[object, ...], Alias | None] = {}


def _shape_alias(
    profile: tuple[PeakSpec, ...],
    crowd: CrowdSpec,
    hours: Hours,
    tz: str,
    sig: tuple[int, int],
    grid: DayGrid,
) -> Alias | None:
    """``tables.shape_alias``, cached across sites with the same profile."""
    base, taper = crowd.base_level, crowd.closing_taper_minutes
    key = (profile, base, taper, hours, tz, sig)
    if key not in _ALIASES:
        if len(_ALIASES) >= 1024:
            _ALIASES.clear()
        _ALIASES[key] = shape_alias(profile, base, grid, hours, taper)
    return _ALIASES[key]


# ---- one batch of days ----------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Groups:
    """The true groups of a site over some days, and the days' minute layout.

    Day ``k`` has minutes ``offsets[k]:offsets[k+1]`` of the flat minute axis and groups
    ``first[k]:first[k+1]``. Per group: arrival and departure minute (within its day), its
    cell of the group table (size and children), entry and exit door (``n_doors``: left
    unseen; both None when the site is one door everybody leaves by).
    """

    spec: SiteSpec
    seed: int
    days: tuple[date, ...]
    ordinals: IntArray
    lanes: U64Array  # keys of the day's random lanes 0..N (rows) per day (columns)
    offsets: IntArray
    first: IntArray
    level: FloatArray
    arrive: IntArray
    leave: IntArray
    kind: IntArray
    entry: IntArray | None
    exit: IntArray | None

    @property
    def minutes(self) -> int:
        """Length of the flat minute axis."""
        return int(self.offsets[-1])

    @property
    def per_day(self) -> IntArray:
        """Number of groups of each day."""
        return np.diff(self.first)

    @property
    def day(self) -> IntArray:
        """Index of each group's day."""
        return np.repeat(np.arange(len(self.days)), self.per_day)

    @property
    def size(self) -> IntArray:
        """People in each group."""
        return self.spec.groups.size[self.kind]

    @property
    def children(self) -> IntArray:
        """Children in each group."""
        return self.spec.groups.children[self.kind]

    def doors(self) -> tuple[IntArray, IntArray]:
        """Entry and exit door of each group."""
        if self.entry is None or self.exit is None:
            z = np.zeros(len(self.kind), dtype=np.int64)
            return z, z
        return self.entry, self.exit

    def keys(self, lane: int) -> U64Array:
        """The keys of one random lane, per day."""
        if lane < len(self.lanes):
            row: U64Array = self.lanes[lane]
            return row
        return rng.lane_keys(self.spec.base_key(self.seed), self.ordinals, lane)


@dataclass(frozen=True, eq=False)
class _Sources:
    """Per source of groups (a day's regular crowd, then each of its bursts)."""

    day: IntArray
    number: IntArray
    row: IntArray  # its alias table: a row of ``tables``
    mean: FloatArray  # expected groups before the day level
    levelled: npt.NDArray[np.bool_]
    close: IntArray  # per day: index of its closing minute (0: closed all day)
    tables: list[Alias]


def _sources(
    spec: SiteSpec, grids: Sequence[DayGrid], extra: Mapping[date, Sequence[BurstSpec]]
) -> _Sources:
    """Plan each day and list its sources of groups, day by day (regular crowd first)."""
    nd = len(grids)
    mean_size = spec.groups.mean
    total = sum(spec.daily_visitors)
    rows: dict[int, int] = {}
    tables: list[Alias] = []

    def row(t: Alias | None) -> int:
        if t is None:
            return 0
        if id(t) not in rows:
            rows[id(t)] = len(tables)
            tables.append(t)
        return rows[id(t)]

    # Ordinary days (their weekday's hours, no DST change) by table lookup.
    weekday = np.array([g.day.weekday() for g in grids], dtype=np.int64)
    month = np.array([g.day.month - 1 for g in grids], dtype=np.int64)
    week_row, week_close, week_factor = np.zeros(7, np.int64), np.zeros(7, np.int64), np.zeros(7)
    for wd, plan in enumerate(spec.week):
        if plan.hours is not None:
            table, shut = spec.day_table(_ORDINARY_GRID[spec.timezone], plan)
            week_row[wd], week_close[wd] = row(table), shut
            week_factor[wd] = plan.factor if table is not None else 0.0
    months = np.array(spec.crowd.month_factors)
    rowi = week_row[weekday]
    close = week_close[weekday]
    means = total * week_factor[weekday] * months[month] / mean_size
    for k, grid in enumerate(grids):
        if grid.n != 1440 or spec.is_unusual(grid.day):
            plan = spec.plan(grid.day)
            table, shut = spec.day_table(grid, plan) if plan.hours is not None else (None, 0)
            rowi[k], close[k] = row(table), shut
            means[k] = total * plan.factor / mean_size if table is not None else 0.0

    # Bursts: after their day's regular crowd, in the order given.
    bursts: dict[date, list[BurstSpec]] = {}
    for b in spec.crowd.bursts:
        bursts.setdefault(b.day, []).append(b)
    for d, bs in extra.items():
        bursts.setdefault(d, []).extend(bs)
    b_day, b_num, b_row, b_mean = [], [], [], []
    if bursts:
        for k, grid in enumerate(grids):
            for i, b in enumerate(bursts.get(grid.day, ())):
                bt = spec.burst_table(grid, b.start, b.minutes)
                b_day.append(k)
                b_num.append(i + 1)
                b_row.append(row(bt))
                b_mean.append(b.visitors / mean_size if bt is not None else 0.0)
    day = np.concatenate([np.arange(nd), np.array(b_day, dtype=np.int64)])
    order = np.argsort(day, kind="stable")
    return _Sources(
        day[order],
        np.concatenate([np.zeros(nd, np.int64), np.array(b_num, dtype=np.int64)])[order],
        np.concatenate([rowi, np.array(b_row, dtype=np.int64)])[order],
        np.concatenate([means, np.array(b_mean, dtype=np.float64)])[order],
        np.concatenate([np.ones(nd, bool), np.zeros(len(b_day), bool)])[order],
        close,
        tables,
    )


class _OrdinaryGrids(dict[str, DayGrid]):
    """A 24-hour day of each time zone: the layout of every day without a DST change."""

    def __missing__(self, tz: str) -> DayGrid:
        day = date(2001, 1, 15)
        while day_grid(tz, day).n != 1440:  # pragma: no cover - zones with DST in January
            day += timedelta(days=1)
        self[tz] = day_grid(tz, day)
        return self[tz]


_ORDINARY_GRID = _OrdinaryGrids()


def simulate(
    spec: SiteSpec,
    seed: int,
    days: Sequence[date],
    bursts: Mapping[date, Sequence[BurstSpec]] | None = None,
) -> Groups:
    """Draw the true groups of a site on ``days`` (any dates, any order), vectorised.

    ``bursts`` adds bursts to given days (e.g. ones injected at run time) on top of the
    crowd's own.
    """
    crowd = spec.crowd
    grids = [day_grid(spec.timezone, d) for d in days]
    nd = len(grids)
    ordinals = np.array([d.toordinal() for d in days], dtype=np.int64)
    offsets = np.zeros(nd + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([g.n for g in grids])
    lengths = np.diff(offsets)
    base = spec.base_key(seed)
    src = _sources(spec, grids, bursts or {})
    lanes = rng.lane_table(base, ordinals, range(LANE_SOURCE + 1 + int(src.number.max(initial=0))))

    # The day level, then how many groups each source brings.
    cv = crowd.day_level_cv
    level = np.ones(nd)
    if cv > 0 and nd:
        level = rng.gamma(lanes[LANE_LEVEL], np.full(nd, 1.0 / cv**2)) * cv**2
    mean = src.mean * np.where(src.levelled, level[src.day], 1.0)
    n_groups = rng.poisson(lanes[LANE_SOURCE + src.number, src.day], mean)
    first = np.zeros(nd + 1, dtype=np.int64)
    first[1:] = np.cumsum(np.bincount(src.day, n_groups, nd).astype(np.int64))
    start = np.cumsum(n_groups) - n_groups - first[src.day]  # first group's index in its day

    # 64 random bits per group: arrival (high 32), group cell (16), dwell (low 16).
    b = rng.runs(lanes[LANE_GROUPS][src.day], start, n_groups)
    if src.tables:
        firsts = np.concatenate([t.first for t in src.tables])
        aliases = np.concatenate([t.alias for t in src.tables])
        thresholds = np.concatenate([t.threshold for t in src.tables])
    else:
        firsts = aliases = np.zeros(WIDTH, dtype=np.int64)
        thresholds = np.zeros(WIDTH, dtype=np.uint64)
    t = b >> np.uint64(32)
    t *= np.uint64(WIDTH)
    cell = t >> np.uint64(32)
    cell += np.repeat((src.row * WIDTH).astype(np.uint64), n_groups)
    c = cell.view(np.int64)
    t &= _U32
    arrive = np.where(t < thresholds[c], firsts[c], aliases[c])
    kind = ((b >> np.uint64(16)) & _U16).view(np.int64)
    b &= _U16
    leave = arrive + dwell_table(crowd.dwell_median_minutes, crowd.dwell_sigma)[b.view(np.int64)]

    # Those inside at closing leave within the sweep; nobody stays past the day's end.
    shut = np.repeat(src.close[src.day], n_groups)
    late = leave >= shut
    has_bursts = bool((src.number > 0).any())
    if has_bursts:
        late &= arrive < shut  # a burst after closing is not swept out
    li = np.flatnonzero(late)
    if len(li):
        d = np.searchsorted(first, li, side="right") - 1
        sb = rng.bits(lanes[LANE_SWEEP][d], li - first[d])
        sweep = ((sb >> np.uint64(32)) * np.uint64(crowd.sweep_minutes)) >> np.uint64(32)
        leave[li] = np.minimum(shut[li] + sweep.view(np.int64), lengths[d] - 1)
    if has_bursts:
        np.minimum(leave, np.repeat(lengths[src.day] - 1, n_groups), out=leave)

    entry, exit_ = None, None
    if not spec.one_way:
        db = rng.runs(lanes[LANE_DOORS][src.day], start, n_groups)
        entry_tab, exit_tab = door_tables(spec.daily_visitors, spec.exit_shares)
        entry = entry_tab[(db & _U16).view(np.int64)]
        db >>= np.uint64(16)
        db &= _U16
        exit_ = exit_tab[entry * (len(exit_tab) // spec.n_doors) + db.view(np.int64)]
    return Groups(
        spec, seed, tuple(days), ordinals, lanes, offsets, first, level,
        arrive, leave, kind, entry, exit_,
    )  # fmt: skip


def crowds(groups: Groups) -> list[Crowd]:
    """The true per-minute movements through each door, on the flat minute axis."""
    n, m = groups.spec.n_doors, groups.minutes
    at = np.repeat(groups.offsets[:-1], groups.per_day)
    entry, exit_ = groups.doors()
    children = groups.children
    adults = groups.size - children

    def per_door(idx: IntArray, w: IntArray) -> npt.NDArray[np.int64]:
        a = np.bincount(idx, w, (n + 1) * m).astype(np.int64)
        return a[: n * m].reshape(n, m)

    i_in, i_out = entry * m + at + groups.arrive, exit_ * m + at + groups.leave
    ia, ic = per_door(i_in, adults), per_door(i_in, children)
    oa, oc = per_door(i_out, adults), per_door(i_out, children)
    return [Crowd(ia[d], ic[d], oa[d], oc[d]) for d in range(n)]
