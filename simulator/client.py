"""A client of the simulator's control plane `/sim/v1/`: blocking (stdlib) and asyncio."""

from __future__ import annotations

import inspect
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from simulator.journal import Criteria

#: A time filter: ISO 8601, epoch seconds or a datetime (no offset: UTC).
Since = str | float | datetime | None


class ControlError(Exception):
    """A control plane answer other than 2xx."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control plane answered {status}: {body}")
        self.status = status
        self.body = body


class _Calls:
    """The control plane's operations; ``request`` is blocking or a coroutine."""

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request to ``/sim/v1/<path>``."""
        raise NotImplementedError

    def clock(self) -> Any:
        """The clock: now, epoch, speed, frozen, start, next_event."""
        return self.request("GET", "clock")

    def set_time(self, when: str | float) -> Any:
        """Set the clock (ISO 8601 or epoch seconds); forward, due events happen."""
        return self.request("POST", "clock/set", {"time": when})

    def advance(self, by: str | float) -> Any:
        """Advance by a duration (seconds or ``15m``), running everything due in order."""
        return self.request("POST", "clock/advance", {"by": by})

    def speed(self, speed: float) -> Any:
        """Change the clock's speed."""
        return self.request("POST", "clock/speed", {"speed": speed})

    def freeze(self) -> Any:
        """Freeze the clock."""
        return self.request("POST", "clock/freeze")

    def inject(self, kind: str, **fields: Any) -> Any:
        """Inject an event (``at``/``after`` schedule it; neither: now)."""
        return self.request("POST", "events", {"kind": kind, **fields})

    def events(self) -> Any:
        """Scheduled and applied events."""
        return self.request("GET", "events")

    def state(self, device: str) -> Any:
        """A device's live state."""
        return self.request("GET", f"devices/{device}")

    def journal(self, device: str, limit: int | None = None) -> Any:
        """A device's journal: ``{"device", "size", "entries"}``, entries oldest first."""
        q = "" if limit is None else f"?limit={limit}"
        return self.request("GET", f"journal/{device}{q}")

    def calls(
        self,
        device: str | None = None,
        method: str | None = None,
        path: str | None = None,
        rpc_method: str | None = None,
        since: Since = None,
        status: int | str | None = None,
        until: Since = None,
    ) -> Any:
        """The journal entries (requests the devices received) matching every filter given.

        ``path`` is exact or a prefix ending in ``*``; ``status`` is e.g. 401 or ``"4xx"``;
        ``since``/``until`` are wall times (ISO 8601, epoch seconds or a datetime).
        """
        query = _filters(device, method, path, rpc_method, since, status, until)
        q = f"?{urlencode(query)}" if query else ""
        return _then(self.request("GET", f"journal{q}"), lambda body: body["entries"])

    def assert_called(
        self,
        device: str | None = None,
        method: str | None = None,
        path: str | None = None,
        rpc_method: str | None = None,
        since: Since = None,
        status: int | str | None = None,
        until: Since = None,
        times: int | None = None,
    ) -> Any:
        """The matching entries, if there are ``times`` of them (None: at least one).

        Otherwise AssertionError, naming the recorded requests nearest to the expectation
        and how each differs from it.
        """
        __tracebackhide__ = True
        criteria = Criteria.parse(_filters(device, method, path, rpc_method, since, status, until))
        return _then(self.request("GET", "journal"), partial(_verify, criteria, times))

    def clear_journal(self, device: str | None = None) -> Any:
        """Forget every device's journal, or one device's."""
        return self.request("DELETE", "journal" if device is None else f"journal/{device}")

    def add_fault(self, **spec: Any) -> Any:
        """Switch a fault on (see FaultSpec in docs/CONTROL.md)."""
        return self.request("POST", "faults", spec)

    def clear_faults(self) -> Any:
        """Switch every fault off."""
        return self.request("DELETE", "faults")

    def deliveries(self, device: str) -> Any:
        """A device's push delivery log."""
        return self.request("GET", f"push/{device}")

    def reset(self, device: str | None = None, clock: bool = True) -> Any:
        """Reset one device, or everything (and the clock) to the scenario's state."""
        if device is not None:
            return self.request("POST", f"devices/{device}/reset")
        return self.request("POST", "reset", {"clock": clock})


def _then(result: Any, then: Callable[[Any], Any]) -> Any:
    """``then(result)``, or for a coroutine (the async client) a coroutine of it."""
    __tracebackhide__ = True
    if inspect.isawaitable(result):

        async def chained() -> Any:
            __tracebackhide__ = True
            return then(await result)

        return chained()
    return then(result)


def _filters(
    device: str | None,
    method: str | None,
    path: str | None,
    rpc_method: str | None,
    since: Since,
    status: int | str | None,
    until: Since,
) -> dict[str, str]:
    """The journal's query parameters for the filters given."""
    given = {
        "device": device,
        "method": method,
        "path": path,
        "rpc_method": rpc_method,
        "since": _time(since),
        "until": _time(until),
        "status": None if status is None else str(status),
    }
    return {k: v for k, v in given.items() if v is not None}


def _time(t: Since) -> str | None:
    """A time filter as the journal's query takes it."""
    if isinstance(t, datetime):
        return t.isoformat()
    return None if t is None else str(t)


def _verify(criteria: Criteria, times: int | None, journal: dict[str, Any]) -> Any:
    """The entries meeting ``criteria`` if there are ``times`` of them, else AssertionError."""
    __tracebackhide__ = True  # pytest shows the failed expectation, not this frame
    entries = journal["entries"]
    found = [e for e in entries if not criteria.differences(e)]
    if (len(found) == times) if times is not None else found:
        return found
    wanted = "at least one request" if times is None else f"exactly {times} request(s)"
    lines = [
        f"expected {wanted} matching {criteria.described()}; "
        f"{len(found)} of the {len(entries)} recorded match"
    ]
    if found:
        lines += ["matching:", *(f"  {_line(e)}" for e in found[-5:])]
    else:
        lines += _nearest(criteria, entries)
    raise AssertionError("\n".join(lines))


def _nearest(criteria: Criteria, entries: list[dict[str, Any]], n: int = 3) -> list[str]:
    """The ``n`` recorded requests differing from ``criteria`` in fewest fields, newest first."""
    if not entries:
        return ["the journal is empty"]
    ranked = sorted(
        ((criteria.differences(e), -i, e) for i, e in enumerate(entries)),
        key=lambda x: (len(x[0]), x[1]),
    )
    lines = ["nearest:"]
    for diffs, _, e in ranked[:n]:
        why = "; ".join(_difference(criteria, e, name) for name in diffs)
        lines.append(f"  {_line(e)}\n      differs: {why}")
    return lines


def _difference(criteria: Criteria, e: dict[str, Any], name: str) -> str:
    """How one field of an entry differs from what was expected."""
    if name in ("since", "until"):
        bound = "before since" if name == "since" else "not before until"
        return f"{criteria.clock} time {e[criteria.clock + '_time']} is {bound}"
    return f"{name} is {e[name]!r}, not {criteria.shown(name)}"


def _line(e: dict[str, Any]) -> str:
    """One journal entry on a line."""
    target = e["path"] + (f"?{e['query']}" if e["query"] else "")
    rpc = f" [{e['rpc_method']}]" if e["rpc_method"] else ""
    return (
        f"#{e['id']} {e['wall_time']} {e['device']}: {e['method']} {target}{rpc}"
        f" -> {e['status']} ({e['auth']}{', ' + e['user'] if e['user'] else ''})"
    )


def _url(base_url: str, path: str) -> str:
    return f"{base_url.rstrip('/')}/sim/v1/{path.lstrip('/')}"


class Control(_Calls):
    """A blocking control plane client (standard library only; use it from any thread)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the JSON answer, or ControlError."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(_url(self.base_url, path), data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token is not None:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                body_ = json.loads(text)
            except json.JSONDecodeError:
                body_ = text
            raise ControlError(e.code, body_) from None


class AsyncControl(_Calls):
    """An asyncio control plane client: ``await sim.acontrol.advance("15m")``."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the JSON answer, or ControlError."""
        import aiohttp  # only asyncio users need it (it is a dependency anyway)

        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, _url(self.base_url, path), json=body, headers=headers) as r,
        ):
            data = await r.json(content_type=None)
            if r.status >= 300:
                raise ControlError(r.status, data)
            return data
