"""What every device API handler shares: the runtime key, the request's device, security levels."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

from aiohttp import web

from simulator.device import Device
from simulator.runtime.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
DEVICE = web.RequestKey("device", Device)  # the device the request arrived at
USER = web.RequestKey("user", str)  # the user the request authenticated as

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])


def requires(level: str) -> Callable[[H], H]:
    """Mark a handler with the security level (viewer/operator/administrator) it needs."""

    def mark(handler: H) -> H:
        handler.security_level = level  # type: ignore[attr-defined]
        return handler

    return mark


def anonymous(methods: frozenset[str] | None = None) -> Callable[[H], H]:
    """Mark a handler answered without credentials: every request, or only the JSON-RPC
    calls of these methods (the device's anonymous-access setting, on by default)."""

    def mark(handler: H) -> H:
        handler.anonymous = methods if methods is not None else True  # type: ignore[attr-defined]
        return handler

    return mark


#: The largest body read to decide whether a call without credentials is an anonymous one.
ANONYMOUS_BODY_LIMIT = 4096


async def anonymous_call(request: web.Request) -> bool:
    """Whether a request without valid credentials may still be answered (:func:`anonymous`).

    A route open to anonymous JSON-RPC methods has its (small) POST body read: only a
    call of one of those methods is let through; anything else is asked for credentials.
    """
    allowed = getattr(request.match_info.route.handler, "anonymous", None)
    if allowed is None or allowed is True:
        return allowed is True
    size = request.content_length
    if request.method != "POST" or size is None or size > ANONYMOUS_BODY_LIMIT:
        return False
    try:
        body = load_json(await request.read())
    except (ValueError, OSError, web.HTTPException):
        return False
    method = body.get("method") if isinstance(body, dict) else None
    return isinstance(method, str) and method in allowed


#: The paths of each model-specific API (a trailing "/" marks a prefix), and the APIs each
#: device model serves. Paths of no listed API (VAPIX discovery) are served by every model.
API_PATHS: dict[str, tuple[str, ...]] = {
    "a3dpc": ("/a3dpc/", "/axis-cgi/a3dpc.cgi", "/local/a3dpc/"),
    "stereo": ("/stereo/", "/local/stereo/"),
}
MODEL_APIS: dict[str, frozenset[str]] = {
    "P8815-2": frozenset({"a3dpc"}),
    "3D People Counter": frozenset({"stereo"}),
}


def model_serves(model: str, path: str) -> bool:
    """Whether a device model answers ``path``: the P8815-2 has no stereo API and back."""
    for api, paths in API_PATHS.items():
        if any(path == p or (p.endswith("/") and path.startswith(p)) for p in paths):
            return api in MODEL_APIS.get(model, frozenset())
    return True


_POLICY: dict[tuple[str, object], tuple[bool, str]] = {}  # (model, handler) -> policy


def route_policy(model: str, request: web.Request) -> tuple[bool, str]:
    """Whether the model serves the matched route, and the security level it needs.

    Computed once per model and route (the hot path pays one dictionary look-up).
    """
    route = request.match_info.route
    key = (model, route.handler)
    policy = _POLICY.get(key)
    if policy is None:
        path = route.resource.canonical if route.resource is not None else request.path
        level = str(getattr(route.handler, "security_level", "viewer"))
        policy = _POLICY[key] = (model_serves(model, path), level)
    return policy


def calendar_day(text: str) -> date:
    """The day of a ``YYYYMMDD`` text (8 digits); ValueError saying why it is not one."""
    if len(text) != 8 or not _DIGITS.fullmatch(text):
        raise ValueError("not YYYYMMDD")
    try:
        day = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError("no such calendar day") from None
    if day.year < 1971:
        raise ValueError("the device keeps no data before 1971")
    if day.year > 9998:
        raise ValueError("too far in the future")
    return day


def device_of(request: web.Request) -> Device:
    """The device this request arrived at (set by the routing middleware)."""
    device = request.get(DEVICE)
    if not isinstance(device, Device):
        raise web.HTTPNotFound()
    return device


#: Whole numbers are read from ASCII digits only (``str.isdigit`` also accepts ``²`` and
#: ``١``), and numbers longer than ``MAX_DIGITS`` digits as ``±HUGE``: beyond every range the
#: device checks, and never near Python's 4,300-digit limit of ``int()``.
MAX_DIGITS = 30
HUGE: int = 10**MAX_DIGITS
_DIGITS = re.compile(r"[0-9]+")
_VERSION = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def bounded_int(text: str) -> int:
    """The value of ``[-]digits`` (ASCII), or ``±HUGE`` when it has more than MAX_DIGITS."""
    negative = text.startswith("-")
    digits = text.removeprefix("-").lstrip("0")  # int() counts leading zeros to its limit
    value = int(digits or "0") if len(digits) <= MAX_DIGITS else HUGE
    return -value if negative else value


def whole_number(text: str) -> int | None:
    """A non-negative whole number written in ASCII digits (bounded), else None."""
    return bounded_int(text) if _DIGITS.fullmatch(text) else None


def api_version(text: str) -> tuple[int, int] | None:
    """``major[.minor]`` in ASCII digits as numbers (bounded), or None when not of that form."""
    m = _VERSION.fullmatch(text)
    if m is None:
        return None
    return bounded_int(m[1]), bounded_int(m[2] or "0")


def _no_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which Python's json reads but JSON does not have."""
    raise ValueError(f"{name} is not JSON")


def load_json(raw: bytes) -> Any:
    """A request body's JSON; ValueError when it is not JSON (bad UTF-8, NaN, too deep).

    Integers are read by :func:`bounded_int`, so a huge number is a value out of range
    rather than a parse failure.
    """
    try:
        return json.loads(raw, parse_int=bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
