"""Sites end to end: the crowd of some days, then what each door's counter reports.

``site_days(spec, seed, days)`` is the model's pure function: the same (site spec, seed,
day) gives the same arrays, whichever days are computed with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from weakref import WeakKeyDictionary

from simulator.model.counter import Counts, count
from simulator.model.crowd import Groups, SiteSpec, simulate
from simulator.model.specs import BurstSpec


@dataclass(frozen=True, eq=False)
class SiteDays:
    """A site's days: the true groups and each door's counts on the flat minute axis."""

    groups: Groups
    counts: list[Counts]

    def day(self, door: int, k: int) -> Counts:
        """The counts of door ``door`` on the ``k``-th day (views, not copies)."""
        a, b = int(self.groups.offsets[k]), int(self.groups.offsets[k + 1])
        c = self.counts[door]
        return Counts(c.in_[a:b], c.out[a:b], c.in_adults[a:b], c.out_adults[a:b])


def site_days(
    spec: SiteSpec,
    seed: int,
    days: Sequence[date],
    bursts: Mapping[date, Sequence[BurstSpec]] | None = None,
) -> SiteDays:
    """Simulate a site's crowd on ``days`` and count it at every door."""
    groups = simulate(spec, seed, days, bursts)
    counts = count(groups)
    for c in counts:  # shared by every view of these days: nobody may change them
        for a in (c.in_, c.out, c.in_adults, c.out_adults):
            a.flags.writeable = False
    return SiteDays(groups, counts)


_SHARED: WeakKeyDictionary[SiteSpec, OrderedDict[tuple[int, tuple[date, ...]], SiteDays]]
_SHARED = WeakKeyDictionary()


def shared_site_days(spec: SiteSpec, seed: int, days: Sequence[date]) -> SiteDays:
    """``site_days``, remembering a site's last few batches: its doors ask in turn."""
    if spec.n_doors == 1:
        return site_days(spec, seed, days)
    memo = _SHARED.setdefault(spec, OrderedDict())
    key = (seed, tuple(days))
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = site_days(spec, seed, days)
        if len(memo) > 8:
            memo.popitem(last=False)
    return hit


#: Days a device computes at once when one of them is asked for (aligned blocks).
BLOCK_DAYS = 8
