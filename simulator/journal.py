"""The request journal: what each device was sent, bounded in entries and in bytes.

Recording is one tuple appended to a per-device deque (the hot path): the request target,
aiohttp's raw header pairs and the head of the body are kept as they came. Entries become
dictionaries only when read, which is when headers are decoded and reduced (no secrets),
bodies decoded and JSON-RPC methods parsed.

Memory is bounded twice: ``size`` entries per device, and ``budget`` accounted bytes across
all devices (the oldest entries are forgotten first). Each entry keeps at most
``TARGET_LIMIT`` characters of path and query, ``BODY_LIMIT`` bytes of body and
``HEADER_COUNT`` headers of ``HEADERS_LIMIT`` bytes in all, flagging what it cut.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import count
from operator import itemgetter
from typing import Any
from urllib.parse import unquote

#: Characters of the request target (path and query) kept per entry.
TARGET_LIMIT = 2048
#: Bytes of the request body kept per entry.
BODY_LIMIT = 4096
#: Headers kept per entry, bytes of one header's value, bytes of headers in all.
HEADER_COUNT = 32
HEADER_VALUE_LIMIT = 512
HEADERS_LIMIT = 4096
#: Bytes accounted per entry for its tuple, numbers and slots, and per header for its pair.
ENTRY_OVERHEAD = 600
HEADER_OVERHEAD = 128
#: The default budget of the whole journal, across devices.
DEFAULT_BUDGET = 16 * 2**20

RawHeaders = tuple[tuple[bytes, bytes], ...]
#: seq, wall, sim, device, method, target, target length, headers, headers cut, body head,
#: body size, status, auth outcome, user, duration (s), accounted bytes (always last).
Entry = tuple[
    int, float, float, str, str, str, int, RawHeaders, int, bytes | None, int, int, str,
    str | None, float, int,
]  # fmt: skip
#: The query parameters of GET /sim/v1/journal.
FILTERS = frozenset(
    {"device", "method", "path", "rpc_method", "status", "since", "until", "clock", "limit"}
)

_RPC_METHOD = re.compile(rb'"method"\s*:\s*"([^"\\]{1,200})"')
_USERNAME = re.compile(r'username\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)', re.IGNORECASE)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class FilterError(ValueError):
    """A journal filter that cannot be understood: the parameter at fault and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_time(raw: str, field: str) -> float:
    """Epoch seconds from ISO 8601 (no offset: UTC) or a number of epoch seconds."""
    try:
        t = float(raw)
    except ValueError:
        try:
            d = datetime.fromisoformat(raw)
        except ValueError:
            raise FilterError(field, f"{raw!r} is neither ISO 8601 nor epoch seconds") from None
        t = (d if d.tzinfo is not None else d.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(t):
        raise FilterError(field, f"{raw!r} is not a finite time")
    return t


def parse_limit(raw: str) -> int:
    """A whole number of entries (ASCII digits only)."""
    if not (raw.isascii() and raw.isdigit()):
        raise FilterError("limit", f"{raw!r} is not a whole number")
    return int(raw)


@dataclass(frozen=True)
class Criteria:
    """What journal entries must match; None matches anything."""

    device: str | None = None
    method: str | None = None
    path: str | None = None
    rpc_method: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    clock: str = "wall"

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Criteria:
        """Criteria from query parameters (see docs/CONTROL.md); FilterError on bad values."""
        status = query.get("status")
        if status is not None:
            if not re.fullmatch(r"[0-9]{1,3}|[1-5]xx", status.lower()):
                raise FilterError("status", f"{status!r} is not a status like 401 or 4xx")
            status = status.lower() if status[1:].lower() == "xx" else str(int(status))
        method = query.get("method")
        if method is not None and not re.fullmatch(r"[A-Za-z]{1,20}", method):
            raise FilterError("method", f"{method!r} is not an HTTP method")
        path = query.get("path")
        if path is not None and not path.startswith(("/", "*")):
            raise FilterError("path", f"{path!r} does not start with / (or is not *)")
        clock = query.get("clock", "wall")
        if clock not in ("wall", "sim"):
            raise FilterError("clock", f"{clock!r} is neither wall nor sim")
        since, until = query.get("since"), query.get("until")
        return cls(
            device=query.get("device"),
            method=None if method is None else method.upper(),
            path=path,
            rpc_method=query.get("rpc_method"),
            status=status,
            since=None if since is None else parse_time(since, "since"),
            until=None if until is None else parse_time(until, "until"),
            clock=clock,
        )

    def described(self) -> str:
        """The criteria given, as ``name=value`` for a message."""
        given = [
            f"{f.name}={self.shown(f.name)}"
            for f in fields(self)
            if f.name != "clock" and getattr(self, f.name) is not None
        ]
        return ", ".join(given) or "anything"

    def shown(self, name: str) -> str:
        """One criterion's value as a message shows it (a status as a number or class)."""
        value = getattr(self, name)
        return str(value) if name == "status" else repr(value)

    def differences(self, entry: Mapping[str, Any]) -> list[str]:
        """The names of the criteria a journal entry (as read) does not meet."""
        out = []
        if self.device is not None and entry["device"] != self.device:
            out.append("device")
        if self.method is not None and entry["method"] != self.method:
            out.append("method")
        if self.path is not None and not _path_matches(self.path, entry["path"]):
            out.append("path")
        if self.rpc_method is not None and entry["rpc_method"] != self.rpc_method:
            out.append("rpc_method")
        if self.status is not None and not _status_matches(self.status, entry["status"]):
            out.append("status")
        if self.since is not None or self.until is not None:
            t = datetime.fromisoformat(entry[f"{self.clock}_time"]).timestamp()
            if self.since is not None and t < self.since:
                out.append("since")
            if self.until is not None and t >= self.until:
                out.append("until")
        return out


def _path_matches(want: str, path: str) -> bool:
    """Exact, or a prefix when ``want`` ends with ``*``; as sent or percent-decoded."""
    if want.endswith("*"):
        prefix = want[:-1]
        return path.startswith(prefix) or unquote(path).startswith(prefix)
    return path == want or unquote(path) == want


def _status_matches(want: str, status: int) -> bool:
    """``401`` exactly, or a class like ``4xx``."""
    if want.endswith("xx"):
        return status // 100 == int(want[0])
    return status == int(want)


def reduce_authorization(value: str) -> str:
    """An Authorization value reduced to its scheme and username: no secret left."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(rest.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return scheme
        return f'{scheme} username="{user}"'
    m = _USERNAME.search(rest)
    return scheme if m is None else f"{scheme} username={m.group(1)}"


def _reduce_cookie(value: str) -> str:
    """A Cookie value with the names kept and the values hidden."""
    return "; ".join(f"{c.partition('=')[0].strip()}=***" for c in value.split(";") if c.strip())


def _headers(raw: RawHeaders) -> dict[str, str]:
    """Header pairs as a dictionary (repeats joined with ``, ``), secrets reduced."""
    out: dict[str, str] = {}
    for k, v in raw:
        name, value = k.decode("latin-1"), v.decode("utf-8", "replace")
        low = name.lower()
        if low in _SECRET_HEADERS:
            value = reduce_authorization(value)
        elif low == "cookie":
            value = _reduce_cookie(value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _bounded_headers(raw: RawHeaders) -> tuple[RawHeaders, int, int]:
    """At most HEADER_COUNT headers in HEADERS_LIMIT bytes, values cut; how many cut; bytes."""
    kept: list[tuple[bytes, bytes]] = []
    cut = total = 0
    for k, v in raw:
        k2, v2 = k[:128], v[:HEADER_VALUE_LIMIT]
        n = len(k2) + len(v2)
        if len(kept) == HEADER_COUNT or total + n > HEADERS_LIMIT:
            cut += 1
            continue
        cut += len(k2) < len(k) or len(v2) < len(v)
        kept.append((k2, v2))
        total += n
    return tuple(kept), cut, total


def _rpc(body: bytes | None, truncated: bool) -> tuple[str | None, Any]:
    """The JSON-RPC ``method`` and ``params`` of a body, if it is such a JSON object."""
    if not body or body.lstrip()[:1] != b"{":
        return None, None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        m = _RPC_METHOD.search(body) if truncated else None  # the head of a long body
        return (None if m is None else m.group(1).decode("utf-8", "replace")), None
    if isinstance(doc, dict) and isinstance(doc.get("method"), str):
        return doc["method"], doc.get("params")
    return None, None


def as_dict(e: Entry) -> dict[str, Any]:
    """One entry as the control plane shows it."""
    seq, wall, sim, device, method, target, target_len, raw, hcut, body, body_size = e[:11]
    status, auth, user, duration = e[11:15]
    path, _, query = target.partition("?")
    body_truncated = body is not None and body_size > len(body)
    rpc_method, rpc_params = _rpc(body, body_truncated)
    return {
        "id": seq,
        "wall_time": _iso(wall),
        "sim_time": _iso(sim),
        "device": device,
        "method": method,
        "path": path,
        "query": query,
        "path_truncated": target_len > len(target),
        "headers": _headers(raw),
        "headers_truncated": hcut > 0,
        "body": None if body is None else body.decode("utf-8", "replace"),
        "body_size": body_size,
        "body_truncated": body_truncated,
        "rpc_method": rpc_method,
        "rpc_params": rpc_params,
        "status": status,
        "auth": auth,
        "user": user,
        "duration_ms": round(duration * 1000, 3),
    }


class Journal:
    """Bounded per-device journals of requests, within one byte budget across devices.

    ``_order`` lists the device of every entry recorded, oldest first, so the budget can
    forget the oldest entry of all; ``_gone`` counts, per device, the entries at the front
    of ``_order`` already forgotten another way (the per-device bound, a clear).
    """

    def __init__(self, size: int = 200, budget: int = DEFAULT_BUDGET) -> None:
        self.size = size
        self.budget = budget
        self.bytes = 0
        self.logs: dict[str, deque[Entry]] = {}
        self._order: deque[str] = deque()
        self._gone: dict[str, int] = {}
        self._compact_at = 1024
        self._seq = count(1)

    def record(
        self,
        device: str,
        wall: float,
        sim: float,
        method: str,
        target: str,
        headers: RawHeaders,
        body: bytes | None,
        body_size: int,
        status: int,
        auth: str,
        user: str | None,
        duration: float,
    ) -> None:
        """Remember one request, cut to the per-entry limits; forget the oldest beyond bounds."""
        target_len = len(target)
        if target_len > TARGET_LIMIT:
            target = target[:TARGET_LIMIT]
        hbytes = 0
        for k, v in headers:
            hbytes += len(k) + len(v)
        hcut = 0
        if hbytes > HEADERS_LIMIT or len(headers) > HEADER_COUNT:
            headers, hcut, hbytes = _bounded_headers(headers)
        size = ENTRY_OVERHEAD + len(target) + hbytes + HEADER_OVERHEAD * len(headers)
        if body is not None:
            size += len(body)
        if user is not None:
            size += len(user)
        log = self.logs.get(device)
        if log is None:
            log = self.logs[device] = deque()
        elif len(log) >= self.size:
            self.bytes -= log.popleft()[-1]
            self._gone[device] = self._gone.get(device, 0) + 1
        log.append(
            (next(self._seq), wall, sim, device, method, target, target_len, headers, hcut,
             body, body_size, status, auth, user, duration, size)
        )  # fmt: skip
        self._order.append(device)
        self.bytes += size
        if self.bytes > self.budget:
            self._forget_oldest()
        if len(self._order) > self._compact_at:
            self._compact()

    def _forget_oldest(self) -> None:
        """Forget the oldest entries of all devices until the journal fits its budget."""
        order, gone = self._order, self._gone
        while self.bytes > self.budget and order:
            device = order.popleft()
            n = gone.get(device)
            if n:
                gone[device] = n - 1
                continue
            log = self.logs[device]
            self.bytes -= log.popleft()[-1]
            if not log:
                del self.logs[device]

    def _compact(self) -> None:
        """Drop the forgotten entries' places from ``_order`` (amortised: rarely, in O(n))."""
        gone, order = self._gone, deque[str]()
        for device in self._order:
            n = gone.get(device)
            if n:
                gone[device] = n - 1
            else:
                order.append(device)
        self._order, self._gone = order, {}
        self._compact_at = 2 * len(order) + 1024

    def entries(
        self,
        device: str | None = None,
        limit: int | None = None,
        criteria: Criteria | None = None,
    ) -> list[dict[str, Any]]:
        """Entries oldest first, of one device or all, meeting ``criteria``; the last ``limit``."""
        logs: Iterable[deque[Entry]] = self.logs.values()
        if device is not None:
            logs = [self.logs.get(device, deque())]
        found: list[dict[str, Any]] = []
        if limit == 0:
            return found
        for e in sorted((e for log in logs for e in log), key=itemgetter(0), reverse=True):
            d = as_dict(e)
            if criteria is None or not criteria.differences(d):
                found.append(d)
                if limit is not None and len(found) >= limit:
                    break
        found.reverse()
        return found

    def count(self) -> int:
        """How many entries the journal holds."""
        return sum(len(log) for log in self.logs.values())

    def clear(self, device: str | None = None) -> None:
        """Forget one device's journal, or every device's."""
        if device is None:
            self.logs.clear()
            self._order.clear()
            self._gone.clear()
            self.bytes = 0
            return
        log = self.logs.pop(device, None)
        if log:
            self.bytes -= sum(e[-1] for e in log)
            self._gone[device] = self._gone.get(device, 0) + len(log)
