"""The day cache: computed device-days, bounded, keyed by device, day and revision."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from datetime import date

from simulator.model.counter import Counts

#: A cached day: the device's index, the local day, and the revision of what it depends on.
DayKey = tuple[int, date, Hashable]


class DayCache:
    """A bounded LRU of computed device-days, shared by a fleet.

    A key holds the revision of what the day depends on (door actions, injected bursts), so
    a change to one device makes only its own days miss; the stale ones age out.
    """

    def __init__(self, max_days: int = 4096) -> None:
        self.max_days = max_days
        self._days: OrderedDict[DayKey, Counts] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: DayKey) -> Counts | None:
        """A cached day, marked as recently used."""
        hit = self._days.get(key)
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        self._days.move_to_end(key)
        return hit

    def put(self, key: DayKey, counts: Counts) -> None:
        """Cache a day, evicting the least recently used beyond the bound."""
        self._days[key] = counts
        if len(self._days) > self.max_days:
            self._days.popitem(last=False)
