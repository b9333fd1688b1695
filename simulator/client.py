"""A client of the simulator's control plane `/sim/v1/`: blocking (stdlib) and asyncio."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


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
