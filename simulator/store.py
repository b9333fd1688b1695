"""Durable state that cannot be recomputed: operator actions, the push outbox and cursors.

Written to SQLite (WAL mode) before an action is acknowledged, so a restarted simulator
continues where it stopped. ``":memory:"`` keeps it in memory (tests, throw-away runs).

Every statement runs on the event loop, so none may wait long for a lock another process
holds: the busy timeout is a few milliseconds, after which a write fails with
:class:`StoreBusy` (a request answers an error, the push retries later).
"""

from __future__ import annotations

import math
import sqlite3
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 5  # how long a statement waits for another connection's lock
OPEN_TIMEOUT_S = 5.0  # at start-up (before the event loop runs) waiting is fine

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    value INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_device ON actions (device, kind, at);
CREATE TABLE IF NOT EXISTS push_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    due REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS push_outbox_by_device ON push_outbox (device, id);
CREATE TABLE IF NOT EXISTS push_cursor (
    device TEXT PRIMARY KEY,
    produced_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE,
    device TEXT,
    due REAL NOT NULL,
    body TEXT NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0
);
"""


#: The first and longest wait (wall seconds) before writing again after a failed write.
STORE_RETRY_S = (0.05, 1.0)


def retry_delay(failures: int) -> float:
    """Wall seconds before the next write after ``failures`` failed ones: doubling, capped."""
    first, longest = STORE_RETRY_S
    return float(min(longest, first * 2 ** min(max(failures, 1) - 1, 16)))


class StoreError(RuntimeError):
    """The database failed a statement (read-only, disk full, corrupt...)."""


class StoreBusy(StoreError):
    """Another connection holds the database's write lock longer than the busy timeout."""


def _typed(e: sqlite3.Error) -> StoreError:
    """The store's exception for an SQLite error: busy/locked, or any other failure."""
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusy(f"the database is locked by another connection ({e})")
    return StoreError(f"database error: {e}")


class _Connection(sqlite3.Connection):
    """A connection whose failing statements raise :class:`StoreError` / :class:`StoreBusy`."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        """Run one statement."""
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as e:
            raise _typed(e) from e

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        """Run one statement for each parameter set."""
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as e:
            raise _typed(e) from e

    def rollback_open(self) -> None:
        """Roll back the transaction in progress, if any (a failed COMMIT may have ended it)."""
        if self.in_transaction:
            super().execute("ROLLBACK")


@dataclass(frozen=True)
class OutboxEntry:
    """A produced push payload waiting for delivery; ``due`` is its interval's end."""

    id: int
    device: str
    due: float
    body: str


@dataclass(frozen=True)
class Action:
    """An operator action at simulated time ``at`` (epoch seconds)."""

    device: str
    at: float
    kind: str  # "adjust" (value = new occupancy), "passthrough-restart", "door", "fps", ...
    value: int


#: Actions of these kinds replace one of the same device in the same minute of simulated
#: time (only the latest adjustment of a minute decides its minute-end occupancy), so at
#: most one is kept per device and minute.
ONE_PER_MINUTE = frozenset({"adjust"})


class _Log:
    """The actions of one (device, kind), sorted by time, with their times for bisection."""

    __slots__ = ("actions", "times")

    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.times: list[float] = []

    def insert(self, action: Action) -> None:
        """Insert after every action at the same or an earlier time."""
        i = bisect_right(self.times, action.at)
        self.actions.insert(i, action)
        self.times.insert(i, action.at)

    def remove_minute(self, at: float) -> Action | None:
        """Remove (and return) the action in the minute of ``at``, if there is one."""
        start = 60.0 * math.floor(at / 60.0)
        i = bisect_left(self.times, start)
        if i < len(self.times) and self.times[i] < start + 60.0:
            self.times.pop(i)
            return self.actions.pop(i)
        return None


class Store:
    """The action log, read once at start-up and written through on every change."""

    def __init__(self, path: str | Path = ":memory:", *, check_writable: bool = True) -> None:
        try:
            self._db = self._open(str(path), check_writable)
        except StoreError as e:
            raise StoreError(f"{path}: {e}") from None
        except sqlite3.Error as e:
            raise StoreError(f"{path}: cannot use the database: {e}") from None
        self._actions: dict[tuple[str, str], _Log] = defaultdict(_Log)
        self._revisions: dict[tuple[str, str], int] = defaultdict(int)
        self.revision = 0  # bumped on every change, so derived values can be memoised
        for device, at, kind, value in self._db.execute(
            "SELECT device, at, kind, value FROM actions ORDER BY at, id"
        ):
            self._actions[(device, kind)].insert(Action(device, at, kind, value))
        self._outbox_sizes = self._count_outbox()

    def _count_outbox(self) -> dict[str, int]:
        """How many outbox rows each device has, counted in the database."""
        rows = self._db.execute("SELECT device, COUNT(*) FROM push_outbox GROUP BY device")
        return {str(d): int(n) for d, n in rows.fetchall()}

    @staticmethod
    def _open(path: str, check_writable: bool) -> _Connection:
        """Connect, set WAL and the schema, check a write works, then shorten the busy timeout."""
        db = sqlite3.connect(
            path, isolation_level=None, timeout=OPEN_TIMEOUT_S, factory=_Connection
        )
        try:
            if path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            if check_writable and path != ":memory:":
                _check_writable(db)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except BaseException:
            db.close()
            raise
        return db

    def add(self, action: Action) -> None:
        """Record an action durably, then make it visible.

        An action of a :data:`ONE_PER_MINUTE` kind replaces the device's one in the same
        minute (whichever was recorded first), in memory and in the database.
        """
        key = (action.device, action.kind)
        log = self._actions[key]
        if action.kind in ONE_PER_MINUTE:
            start = 60.0 * math.floor(action.at / 60.0)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "DELETE FROM actions WHERE device = ? AND kind = ? AND at >= ? AND at < ?",
                    (action.device, action.kind, start, start + 60.0),
                )
                self._insert(action)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.rollback_open()
                raise
            log.remove_minute(action.at)
        else:
            self._insert(action)
        log.insert(action)
        self.revision += 1
        self._revisions[key] += 1

    def _insert(self, action: Action) -> None:
        """Write one action row."""
        self._db.execute(
            "INSERT INTO actions (device, at, kind, value) VALUES (?, ?, ?, ?)",
            (action.device, action.at, action.kind, action.value),
        )

    def actions(self, device: str, kind: str, since: float, until: float) -> list[Action]:
        """Actions of one kind on a device with ``since <= at <= until``, oldest first."""
        log = self._actions.get((device, kind))
        if log is None:
            return []
        i, j = bisect_left(log.times, since), bisect_right(log.times, until)
        return log.actions[i:j]

    def last(self, device: str, kind: str, until: float) -> Action | None:
        """The latest action of a kind at or before ``until``."""
        log = self._actions.get((device, kind))
        if log is None:
            return None
        j = bisect_right(log.times, until)
        return log.actions[j - 1] if j else None

    def kind_revision(self, device: str, kind: str) -> int:
        """A number that changes whenever the actions of one kind on a device change."""
        return self._revisions.get((device, kind), 0)

    def action_rows(self) -> int:
        """How many actions the database holds (every device and kind)."""
        return int(self._db.execute("SELECT COUNT(*) FROM actions").fetchone()[0])

    def clear(self, device: str | None = None) -> None:
        """Forget the actions of one device, or of all devices."""
        self.revision += 1
        if device is None:
            self._db.execute("DELETE FROM actions")
            keys = list(self._actions)
        else:
            self._db.execute("DELETE FROM actions WHERE device = ?", (device,))
            keys = [k for k in self._actions if k[0] == device]
        for key in keys:
            del self._actions[key]
            self._revisions[key] += 1

    # ---- push outbox ------------------------------------------------------------------
    def push_cursor(self, device: str) -> float | None:
        """The end of the last push interval produced for a device, or None."""
        row = self._db.execute(
            "SELECT produced_until FROM push_cursor WHERE device = ?", (device,)
        ).fetchone()
        return None if row is None else float(row[0])

    def outbox_produce(
        self,
        rows: Sequence[tuple[str, float, str]],
        cursors: Mapping[str, float],
        limits: Mapping[str, int],
    ) -> dict[str, int]:
        """Durably add (device, due, body) rows and move cursors in one transaction.

        A device's outbox keeps at most ``limits[device]`` rows: the oldest beyond it are
        deleted. Returns how many rows were dropped per device (only devices that dropped).
        """
        dropped: dict[str, int] = {}
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO push_outbox (device, due, body) VALUES (?, ?, ?)", rows)
            for device, _, _ in rows:
                self._outbox_sizes[device] = self._outbox_sizes.get(device, 0) + 1
            for device in {r[0] for r in rows}:
                excess = self._outbox_sizes[device] - limits.get(device, self._outbox_sizes[device])
                if excess > 0:
                    db.execute(
                        "DELETE FROM push_outbox WHERE id IN (SELECT id FROM push_outbox "
                        "WHERE device = ? ORDER BY id LIMIT ?)",
                        (device, excess),
                    )
                    self._outbox_sizes[device] -= excess
                    dropped[device] = excess
            db.executemany(
                "INSERT INTO push_cursor (device, produced_until) VALUES (?, ?) "
                "ON CONFLICT (device) DO UPDATE SET produced_until = excluded.produced_until",
                list(cursors.items()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.rollback_open()
            self._outbox_sizes = self._count_outbox()
            raise
        return dropped

    def outbox_next(self, device: str, after_id: int = 0) -> OutboxEntry | None:
        """The oldest outbox entry of a device with an id above ``after_id``."""
        row = self._db.execute(
            "SELECT id, due, body FROM push_outbox WHERE device = ? AND id > ? ORDER BY id LIMIT 1",
            (device, after_id),
        ).fetchone()
        return None if row is None else OutboxEntry(int(row[0]), device, float(row[1]), row[2])

    def outbox_remove(self, delivered: Sequence[tuple[str, int]]) -> None:
        """Delete delivered (device, id) entries in one transaction; gone ones are ignored."""
        if not delivered:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.executemany(
                "DELETE FROM push_outbox WHERE id = ? AND device = ?",
                [(entry_id, device) for device, entry_id in delivered],
            )
            db.execute("COMMIT")
        except BaseException:
            db.rollback_open()
            raise
        if cur.rowcount != len(delivered):  # some were gone already: count the rows again
            self._outbox_sizes = self._count_outbox()
            return
        for device, _ in delivered:
            self._outbox_sizes[device] = max(0, self._outbox_sizes.get(device, 0) - 1)

    def outbox_size(self, device: str) -> int:
        """How many entries of a device are in the outbox (delivered ones not yet removed too)."""
        return self._outbox_sizes.get(device, 0)

    # ---- scheduled and injected events (simulator/runtime/events.py) -----------------------------
    def event_add(self, due: float, body: str, device: str | None, key: str | None = None) -> int:
        """Durably record an event; a ``key`` already present is kept. Returns its id."""
        if key is not None:
            row = self._db.execute("SELECT id FROM sim_events WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return int(row[0])
        cur = self._db.execute(
            "INSERT INTO sim_events (key, device, due, body) VALUES (?, ?, ?, ?)",
            (key, device, due, body),
        )
        return int(cur.lastrowid or 0)

    def events(self) -> list[tuple[int, str | None, float, str, bool]]:
        """Every recorded event as (id, key, due, body, applied), in due order."""
        rows = self._db.execute(
            "SELECT id, key, due, body, applied FROM sim_events ORDER BY due, id"
        ).fetchall()
        return [(int(i), k, float(d), b, bool(a)) for i, k, d, b, a in rows]

    def event_applied(self, event_id: int) -> None:
        """Mark an event as applied."""
        self._db.execute("UPDATE sim_events SET applied = 1 WHERE id = ?", (event_id,))

    def event_delete(self, event_id: int) -> None:
        """Forget one event."""
        self._db.execute("DELETE FROM sim_events WHERE id = ?", (event_id,))

    def events_reset(self, device: str | None = None) -> None:
        """Forget injected events and mark timeline ones (with a key) as not applied."""
        where, args = ("", ()) if device is None else (" AND device = ?", (device,))
        self._db.execute("DELETE FROM sim_events WHERE key IS NULL" + where, args)
        self._db.execute("UPDATE sim_events SET applied = 0 WHERE key IS NOT NULL" + where, args)

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _check_writable(db: _Connection) -> None:
    """Write a row in a transaction rolled back: a read-only file or directory fails here."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO push_cursor (device, produced_until) VALUES ('', 0)")
        finally:
            db.rollback_open()
    except StoreError as e:
        raise StoreError(
            f"not writable ({e.__cause__ or e}); the simulator writes the file and "
            "creates its -wal and -shm files next to it"
        ) from None
