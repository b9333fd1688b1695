"""Durable state that cannot be recomputed: operator actions on the devices.

Written to SQLite (WAL mode) before an action is acknowledged, so a restarted simulator
continues where it stopped. ``":memory:"`` keeps it in memory (tests, throw-away runs).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    value INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_device ON actions (device, kind, at);
"""


@dataclass(frozen=True)
class Action:
    """An operator action at simulated time ``at`` (epoch seconds)."""

    device: str
    at: float
    kind: str  # "adjust" (value = new occupancy) or "passthrough-restart"
    value: int


class Store:
    """The action log, read once at start-up and written through on every change."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._actions: dict[tuple[str, str], list[Action]] = defaultdict(list)
        for device, at, kind, value in self._db.execute(
            "SELECT device, at, kind, value FROM actions ORDER BY at, id"
        ):
            self._actions[(device, kind)].append(Action(device, at, kind, value))

    def add(self, action: Action) -> None:
        """Record an action durably, then make it visible."""
        self._db.execute(
            "INSERT INTO actions (device, at, kind, value) VALUES (?, ?, ?, ?)",
            (action.device, action.at, action.kind, action.value),
        )
        log = self._actions[(action.device, action.kind)]
        log.append(action)
        if len(log) > 1 and log[-2].at > action.at:
            log.sort(key=lambda a: a.at)

    def actions(self, device: str, kind: str, since: float, until: float) -> list[Action]:
        """Actions of one kind on a device with ``since <= at <= until``, oldest first."""
        return [a for a in self._actions.get((device, kind), ()) if since <= a.at <= until]

    def last(self, device: str, kind: str, until: float) -> Action | None:
        """The latest action of a kind at or before ``until``."""
        found = None
        for a in self._actions.get((device, kind), ()):
            if a.at > until:
                break
            found = a
        return found

    def clear(self, device: str | None = None) -> None:
        """Forget the actions of one device, or of all devices."""
        if device is None:
            self._db.execute("DELETE FROM actions")
            self._actions.clear()
        else:
            self._db.execute("DELETE FROM actions WHERE device = ?", (device,))
            for key in [k for k in self._actions if k[0] == device]:
                del self._actions[key]

    def close(self) -> None:
        """Close the database."""
        self._db.close()
