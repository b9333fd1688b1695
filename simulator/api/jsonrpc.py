"""The JSON-RPC style request/response machinery of a3dpc.cgi and the VAPIX JSON APIs.

A request is a JSON object ``{"apiVersion", "context", "method", "params"}``; the answer
echoes the context and method around ``data`` or ``error``. Each API is a
:class:`JsonRpcApi` subclass that supplies its version, its table of methods, its error
classes and the few rules where the two wire formats differ (the order of the checks, how
strictly ``context`` is read, the envelope's key order). Errors are raised, never built:
the device middleware (``api/errors.py``) hands every exception of a call, raised here, by a
method or by the domain, to its API's :meth:`JsonRpcApi.error_response`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from simulator.api.common import api_version, device_of, load_json
from simulator.device import Device
from simulator.errors import CodedError

log = logging.getLogger("simulator.api")

#: A method: the device and the request's ``params`` in, the response's ``data`` out.
Method = Callable[[Device, Any], dict[str, Any]]


@dataclass
class Call:
    """What is known of a request so far, kept for its (error) response."""

    context: Any = None
    method: Any = None
    params: Any = None


@dataclass(frozen=True)
class Rpc:
    """The API a request was addressed to and its call: how to answer its errors."""

    api: JsonRpcApi
    call: Call


RPC = web.RequestKey("rpc", Rpc)  # set as soon as a JSON-RPC request is being handled


class JsonRpcApi(ABC):
    """One JSON-RPC style API: version, methods, error classes and envelope."""

    #: The base class of this API's errors, and the ones its general failures raise.
    error_type: ClassVar[type[CodedError]]
    internal: ClassVar[type[CodedError]]
    invalid_json: ClassVar[type[CodedError]]
    missing: ClassVar[type[CodedError]]
    unsupported_version: ClassVar[type[CodedError]]
    unknown_method: ClassVar[type[CodedError]]
    #: Whether ``method`` comes before ``data``/``error`` in the envelope.
    method_first: ClassVar[bool]
    #: The error for a request other than POST, if the API routes other methods to itself.
    post_only: ClassVar[type[CodedError] | None] = None

    def __init__(self, version: str, methods: Mapping[str, Method]) -> None:
        numbers = api_version(version)
        if numbers is None:
            raise ValueError(f"API version {version!r} is not major.minor")
        self.version = version
        self.numbers = numbers
        self.methods = dict(methods)

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler: parse, check, dispatch, answer (errors go to error_response)."""
        device = device_of(request)
        call = Call()
        request[RPC] = Rpc(self, call)
        if self.post_only is not None and request.method != "POST":
            raise self.post_only()
        method = self.read_call(self.parse(await request.read()), call)
        return self.respond(call, data=method(device, call.params))

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The body as a JSON object (bounded by ``load_json``), else ``invalid_json``."""
        try:
            body = load_json(raw)
        except ValueError:
            raise self.invalid_json() from None
        if not isinstance(body, dict):
            raise self.invalid_json("the request must be a JSON object")
        return body

    @abstractmethod
    def read_call(self, body: dict[str, Any], call: Call) -> Method:
        """Fill ``call`` from the body, in this API's order of checks; the method to run."""

    def lookup(self, name: Any) -> Method:
        """The method called ``name``, else ``unknown_method``."""
        method = self.methods.get(name) if isinstance(name, str) else None
        if method is None:
            raise self.unknown_method(name)
        return method

    def check_version(self, version: Any) -> None:
        """``apiVersion`` must be given, readable and served (same major, minor not newer)."""
        if version is None:
            raise self.missing("apiVersion")
        asked = self.read_version(version)
        if asked is None:
            raise self.malformed_version(version)
        major, minor = self.numbers
        if asked[0] != major or asked[1] > minor:
            raise self.unsupported_version(version)

    @abstractmethod
    def read_version(self, version: Any) -> tuple[int, int] | None:
        """A given ``apiVersion`` as (major, minor), or None when it cannot be read."""

    @abstractmethod
    def malformed_version(self, version: Any) -> CodedError:
        """The error for an ``apiVersion`` that cannot be read."""

    def envelope(self, call: Call, body: Mapping[str, Any]) -> dict[str, Any]:
        """The response object: apiVersion, context (if sent), and method around the body."""
        out: dict[str, Any] = {"apiVersion": self.version}
        if call.context is not None:
            out["context"] = call.context
        method = {"method": call.method} if call.method is not None else {}
        for part in (method, body) if self.method_first else (body, method):
            out.update(part)
        return out

    def respond(self, call: Call, **body: Any) -> web.Response:
        """The JSON response of a call."""
        return web.json_response(self.envelope(call, body))

    def answers(self, exc: Exception) -> bool:
        """Whether ``exc`` is one of this API's errors (else it is answered as internal)."""
        return isinstance(exc, self.error_type)

    def error_response(self, call: Call, exc: Exception) -> web.Response:
        """The one place this API's errors become its wire format."""
        coded = exc if isinstance(exc, CodedError) and self.answers(exc) else self.internal()
        if coded.detail is not None:
            log.debug("answered error %d %r: %s", coded.code, coded.message, coded.detail)
        return self.respond(call, error={"code": coded.code, "message": coded.message})
