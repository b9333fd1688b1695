"""One control plane for the worker processes of ``serve --workers K``.

Each worker serves one shard of the fleet with a runtime of its own. A request to any worker's
control plane acts on every worker: a change (POST, PUT, PATCH, DELETE) is applied here, then
forwarded to every peer, and answered once all have applied it (a peer that fails or does not
answer makes it a 502 naming that worker); ``GET /devices``, ``GET /fleet`` (the console's page)
and ``GET /journal`` gather every worker's; a device's own reads (``/devices/{id}``,
``/journal/{id}``, ``/push/{id}``) are answered by the worker serving it. A forwarded request
carries the :data:`MARKER` header (behind the control token, like every control request) and is
only applied where it arrives. The supervisor names the peers in a JSON file (the path in
:data:`PEERS_ENV`) written once every worker is ready; without it a worker answers alone.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from simulator.api.common import RUNTIME

#: The environment variable naming the peers file of a worker (set by the supervisor).
PEERS_ENV = "P8815_SIM_WORKER_PEERS"
#: The header that marks a request forwarded by a peer: apply it here only.
MARKER = "X-P8815-Sim-Fanout"
#: Methods that change the simulator: forwarded to every peer.
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: How long a peer may take to apply a change (an advance over months takes a while).
TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10)
#: Forwarded from the original request.
FORWARDED_HEADERS = ("Authorization", "Content-Type")


@dataclass(frozen=True)
class Peer:
    """A worker: its shard, the origin its control plane answers on, the devices it serves."""

    shard: tuple[int, int]
    origin: str
    devices: frozenset[str]

    def name(self) -> str:
        """How an error names the worker."""
        return f"worker of shard {self.shard[0]}/{self.shard[1]} at {self.origin}"


def peers_document(workers: list[tuple[tuple[int, int], str, list[str]]]) -> dict[str, Any]:
    """The peers file's content: each worker's shard, control origin and device ids."""
    return {
        "workers": [
            {"shard": list(shard), "origin": origin, "devices": devices}
            for shard, origin, devices in workers
        ]
    }


_loaded: dict[str, list[Peer]] = {}


def load_peers(path: str) -> list[Peer]:
    """Every worker named in the peers file (none until the supervisor wrote it)."""
    if path in _loaded:
        return _loaded[path]
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    peers = [
        Peer((int(w["shard"][0]), int(w["shard"][1])), str(w["origin"]), frozenset(w["devices"]))
        for w in doc["workers"]
    ]
    _loaded[path] = peers
    return peers


def others(request: web.Request) -> list[Peer]:
    """The workers other than this one (none when serving alone)."""
    path = os.environ.get(PEERS_ENV)
    if not path:
        return []
    shard = request.app[RUNTIME].fleet.shard
    return [p for p in load_peers(path) if p.shard != shard]


async def handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a control request for every worker (by ``handler`` alone when serving alone)."""
    peers = others(request)
    if not peers or MARKER in request.headers:
        return await handler(request)
    device = request.match_info.get("device")
    owner = next((p for p in peers if device in p.devices), None) if device else None
    if request.method in CHANGES:
        return await _change(request, handler, peers, owner)
    if request.method != "GET":
        return await handler(request)
    if owner is not None:
        status, body = await _ask(request, owner, b"")
        return _relay(status, body, owner)
    resource = request.match_info.route.resource
    if resource is None or resource.canonical not in MERGES:
        return await handler(request)
    return await _gather(request, handler, peers, MERGES[resource.canonical])


async def _change(
    request: web.Request, handler: Handler, peers: list[Peer], owner: Peer | None
) -> web.StreamResponse:
    """Apply a change here, then on every peer; the answer is the device owner's (or ours)."""
    body = await request.read()
    local = await handler(request)
    if local.status >= 400:
        return local
    answers = await asyncio.gather(*(_ask(request, p, body) for p in peers))
    for peer, (status, text) in zip(peers, answers, strict=True):
        if status >= 400 or status == 0:
            return _relay(status, text, peer)
    if owner is not None:
        return _relay(*answers[peers.index(owner)], owner)
    return local


async def _ask(request: web.Request, peer: Peer, body: bytes) -> tuple[int, bytes]:
    """Send the request to ``peer`` as a forwarded one: its status and body (0: no answer)."""
    headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
    headers[MARKER] = "1"
    url = peer.origin + request.path_qs
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.request(request.method, url, data=body or None, headers=headers) as r,
        ):
            return r.status, await r.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        return 0, (str(e) or type(e).__name__).encode()


def _relay(status: int, body: bytes, peer: Peer) -> web.Response:
    """A peer's answer as ours; a failure as a 502 naming the peer and what it said."""
    if 0 < status < 400:
        return web.Response(status=status, body=body, content_type="application/json")
    try:
        said = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        said = body.decode("utf-8", "replace")[:500]
    why = f"did not answer: {said}" if status == 0 else f"answered {status}: {said}"
    return web.json_response({"error": {"message": f"{peer.name()} {why}"}}, status=502)


async def _gather(
    request: web.Request, handler: Handler, peers: list[Peer], merge: Merge
) -> web.StreamResponse:
    """Our answer merged with every peer's (for the fleet-wide reads)."""
    local = await handler(request)
    if local.status >= 400 or not isinstance(local, web.Response) or local.body is None:
        return local
    answers = await asyncio.gather(*(_ask(request, p, b"") for p in peers))
    docs = []
    for peer, (status, body) in zip(peers, answers, strict=True):
        if not 0 < status < 400:
            return _relay(status, body, peer)
        docs.append(json.loads(body))
    assert isinstance(local.body, bytes)
    return web.json_response(merge(json.loads(local.body), docs, request))


def _merge_devices(
    ours: dict[str, Any], theirs: list[dict[str, Any]], request: web.Request
) -> dict[str, Any]:
    """Every device in fleet order, each with the URL of the worker serving it."""
    urls = {d["id"]: d["url"] for doc in theirs for d in doc["devices"] if d["url"] is not None}
    devices = [d | {"url": urls.get(d["id"], d["url"])} for d in ours["devices"]]
    return ours | {"devices": devices}


def _merge_fleet(
    ours: dict[str, Any], theirs: list[dict[str, Any]], request: web.Request
) -> dict[str, Any]:
    """The console's page of devices, each row from the worker serving it (its live state)."""
    served = {d["id"]: d for doc in theirs for d in doc["devices"] if d["url"] is not None}
    return ours | {"devices": [served.get(d["id"], d) for d in ours["devices"]]}


def _merge_journal(
    ours: dict[str, Any], theirs: list[dict[str, Any]], request: web.Request
) -> dict[str, Any]:
    """Every worker's entries, oldest first by wall time, the last ``limit`` of them."""
    docs = [ours, *theirs]
    entries = sorted(
        (e for doc in docs for e in doc["entries"]),
        key=lambda e: (datetime.fromisoformat(e["wall_time"]), e["device"], e["id"]),
    )
    limit = request.query.get("limit")
    if limit is not None:  # checked by our own answer already
        entries = entries[len(entries) - min(int(limit), len(entries)) :]
    totals = {k: sum(doc[k] for doc in docs) for k in ("size", "budget_bytes", "bytes")}
    return ours | totals | {"entries": entries}


Merge = Callable[[dict[str, Any], list[dict[str, Any]], web.Request], dict[str, Any]]
MERGES: dict[str, Merge] = {
    "/sim/v1/devices": _merge_devices,
    "/sim/v1/fleet": _merge_fleet,
    "/sim/v1/journal": _merge_journal,
}
