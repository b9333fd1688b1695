"""The day cache: computed device-days, bounded, keyed by device, day and revision.

Days are kept packed (:func:`pack`): the four minute counts of a day in one array of the
smallest integer type that holds them (a byte a minute for most doors), compressed (zlib:
a day of a door is mostly runs of small counts, ~1 KiB instead of 5.6 KiB), widened back to
int64 when read, so a fleet of 10,000 devices keeps its recent days in little memory.
"""

from __future__ import annotations

import sys
import zlib
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from simulator.model.bins import IntArray
from simulator.model.counter import Counts

#: A cached day: the device's index, the local day, and the revision of what it depends on.
DayKey = tuple[int, date, Hashable]
#: What a cached entry costs besides its packed rows (key, its date and revision, the
#: dictionary's slot and link), in bytes.
ENTRY_OVERHEAD = 400
_UNSIGNED = (np.uint8, np.uint16, np.uint32)


@dataclass(frozen=True, slots=True)
class PackedArray:
    """Rows packed by :func:`pack`: their type, shape and compressed bytes."""

    dtype: str
    shape: tuple[int, int]
    blob: bytes

    @property
    def nbytes(self) -> int:
        """The memory these packed rows hold (the object and its bytes), in bytes."""
        return sys.getsizeof(self) + sys.getsizeof(self.blob)


def pack(arrays: Sequence[IntArray]) -> PackedArray:
    """Equal-length integer arrays as the rows of one array of the smallest type holding them,
    compressed."""
    rows = np.stack(arrays) if arrays else np.zeros((0, 0), dtype=np.int64)
    if rows.size == 0 or rows.min() < 0:
        narrow = rows.astype(np.int64)
    else:
        top = int(rows.max())
        narrow = rows.astype(next((t for t in _UNSIGNED if top <= np.iinfo(t).max), np.int64))
    shape = (int(rows.shape[0]), int(rows.shape[1]))
    return PackedArray(narrow.dtype.str, shape, zlib.compress(narrow.tobytes(), 1))


def unpack(packed: PackedArray) -> list[IntArray]:
    """The int64 rows of a :func:`pack`-ed array (fresh arrays: the packed one stays as is)."""
    raw = np.frombuffer(zlib.decompress(packed.blob), dtype=packed.dtype)
    return list(raw.reshape(packed.shape).astype(np.int64))


class DayCache:
    """A bounded LRU of computed device-days, shared by a fleet, kept packed.

    A key holds the revision of what the day depends on (door actions, injected bursts), so
    a change to one device makes only its own days miss; the stale ones age out. Bounded by
    ``max_days`` entries and by ``max_bytes`` of packed arrays (with their overhead).
    """

    def __init__(self, max_days: int = 65536, max_bytes: int = 128 << 20) -> None:
        self.max_days = max_days
        self.max_bytes = max_bytes
        self.bytes = 0
        self._days: OrderedDict[DayKey, PackedArray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        """Number of days cached."""
        return len(self._days)

    def __contains__(self, key: object) -> bool:
        """Whether a day is cached (not counted as a hit or a miss, not marked as used)."""
        return key in self._days

    def get(self, key: DayKey) -> Counts | None:
        """A cached day, marked as recently used."""
        hit = self._days.get(key)
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        self._days.move_to_end(key)
        in_, out, in_adults, out_adults = unpack(hit)
        return Counts(in_, out, in_adults, out_adults)

    def put(self, key: DayKey, counts: Counts) -> None:
        """Cache a day, evicting the least recently used beyond the bounds."""
        packed = pack([counts.in_, counts.out, counts.in_adults, counts.out_adults])
        old = self._days.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes + ENTRY_OVERHEAD
        self._days[key] = packed
        self.bytes += packed.nbytes + ENTRY_OVERHEAD
        while self._days and (len(self._days) > self.max_days or self.bytes > self.max_bytes):
            _, gone = self._days.popitem(last=False)
            self.bytes -= gone.nbytes + ENTRY_OVERHEAD
