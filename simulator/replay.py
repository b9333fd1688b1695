"""Replay: a device's counts from a recording in its own a3dpc minute CSV export format.

The file is what ``GET /a3dpc/api/export/csv?...&resolution=minute`` (or ``p8815-sim
export --resolution minute``) returns: a ``start,end,in,out`` header, then one line per
minute with local ``YYYY-MM-DD HH:MM:SS`` labels. Minutes the recording does not hold count
zero. The recording has no adult/child split: every count is an adult. On a DST fall-back
day the repeated wall-clock hour's lines come in order, as the device writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from simulator.model.bins import DayGrid
from simulator.model.counter import Counts


class ReplayError(ValueError):
    """A recording that cannot be read, with the line at fault."""


@dataclass
class Recording:
    """Per local day, the (wall minute, in, out) rows of a recording, in file order."""

    rows: dict[date, list[tuple[int, int, int]]] = field(default_factory=dict)
    _days: dict[date, Counts] = field(default_factory=dict)

    def day(self, day: date, grid: DayGrid) -> Counts:
        """The counts of a local day on its minute grid (zeros where nothing was recorded)."""
        hit = self._days.get(day)
        if hit is not None:
            return hit
        in_ = np.zeros(grid.n, dtype=np.int64)
        out = np.zeros(grid.n, dtype=np.int64)
        where: dict[int, list[int]] = {}
        for i, w in enumerate(grid.wall_minute.tolist()):
            where.setdefault(int(w), []).append(i)
        for w, a, b in self.rows.get(day, ()):
            slots = where.get(w)
            if slots:
                k = slots.pop(0)
                in_[k], out[k] = a, b
        for arr in (in_, out):
            arr.flags.writeable = False
        counts = Counts(in_, out, in_, out)
        self._days[day] = counts
        return counts


def parse_recording(text: str, source: str = "<recording>") -> Recording:
    """Read a minute CSV export."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "start,end,in,out":
        raise ReplayError(f"{source}: line 1: expected the header start,end,in,out")
    rec = Recording()
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            start = parts[0]
            day = date.fromisoformat(start[:10])
            hh, mm = int(start[11:13]), int(start[14:16])
            a, b = int(parts[2]), int(parts[3])
            if len(parts) != 4 or a < 0 or b < 0 or not (0 <= hh < 24 and 0 <= mm < 60):
                raise ValueError
        except (ValueError, IndexError):
            raise ReplayError(
                f"{source}: line {n}: expected YYYY-MM-DD HH:MM:SS,YYYY-MM-DD HH:MM:SS,in,out"
            ) from None
        rec.rows.setdefault(day, []).append((hh * 60 + mm, a, b))
    return rec


def load_recording(path: str | Path) -> Recording:
    """Read a recording file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ReplayError(f"{p}: cannot read: {e.strerror}") from None
    return parse_recording(text, str(p))
