"""The request journal: the last N requests each device received, with their auth outcome.

Recording is one tuple appended to a bounded deque per device, so it costs next to
nothing on the hot path; entries become dictionaries only when someone reads them.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

from simulator.clock import wall_time

#: Auth outcomes: ok, missing (no credentials), denied (wrong user/password/response),
#: stale (an expired nonce), forbidden (role too low), none (no auth asked: 404/405).
Entry = tuple[float, float, str, str, int, str, str | None]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class Journal:
    """Bounded per-device journals of requests."""

    def __init__(self, size: int = 200) -> None:
        self.size = size
        self.logs: dict[str, deque[Entry]] = {}

    def record(
        self,
        device: str,
        sim: float,
        method: str,
        path: str,
        status: int,
        auth: str,
        user: str | None = None,
    ) -> None:
        """Remember one request (the oldest beyond the bound is forgotten)."""
        self.log(device).append((wall_time(), sim, method, path, status, auth, user))

    def log(self, device: str) -> deque[Entry]:
        """The device's bounded deque, for appending an entry tuple directly (the hot path)."""
        log = self.logs.get(device)
        if log is None:
            log = self.logs[device] = deque(maxlen=self.size)
        return log

    def entries(self, device: str, limit: int | None = None) -> list[dict[str, Any]]:
        """A device's journal, oldest first (the last ``limit`` entries if given)."""
        log = list(self.logs.get(device, ()))
        if limit is not None:
            log = log[-limit:] if limit > 0 else []
        return [
            {
                "wall_time": _iso(w),
                "sim_time": _iso(s),
                "method": m,
                "path": p,
                "status": st,
                "auth": a,
                "user": u,
            }
            for w, s, m, p, st, a, u in log
        ]

    def clear(self, device: str | None = None) -> None:
        """Forget one device's journal, or every device's."""
        if device is None:
            self.logs.clear()
        else:
            self.logs.pop(device, None)
