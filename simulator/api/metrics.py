"""Prometheus metrics of one simulator: ``GET /sim/v1/metrics`` in the text format 0.0.4.

Every application has its own :class:`Metrics` and registry (several simulators may run in
one process). The request path pays one call, :meth:`Metrics.request`, that adds to plain
dictionaries and lists; everything read from state (push backlog, scheduler lag, open
connections, the process) is read when scraped, by the collector's :meth:`Metrics.collect`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractRoute
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from simulator.api import control
from simulator.api.common import DEVICE
from simulator.clock import wall_time
from simulator.device import Chunk
from simulator.runtime.push.pusher import Delivery
from simulator.runtime.runtime import Runtime

NS = "p8815_sim"
#: Up to this many pushing devices the push metrics have a ``device`` label; beyond, one
#: fleet-wide series each (a scrape stays small for a fleet of thousands).
PER_DEVICE_LIMIT = 100
#: Buckets (wall seconds) of the request duration histogram.
DURATION_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0)
#: Buckets (wall seconds) of the push lateness histogram: from in time to a day late.
LATENESS_BUCKETS = (0.1, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0, 21600.0, 86400.0)
APIS = ("a3dpc", "stereo", "vapix", "control", "other")
#: The journal's auth outcomes that are not Digest failures.
NOT_FAILURES = frozenset({"ok", "none"})

routes = web.RouteTableDef()


class Histogram:
    """Observations counted in fixed buckets, with their sum (cheap to observe)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def add(self, other: Histogram) -> None:
        """Add another histogram's observations (same bounds)."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as Prometheus exposes them."""
        out: list[tuple[str, float]] = []
        n = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            n += count
            out.append((bound, n))
        return out


def api_of(path: str) -> str:
    """The API a route's path belongs to: a3dpc, stereo, vapix, control or other."""
    if path.startswith(control.PREFIX + "/"):
        return "control"
    if path.startswith(("/a3dpc/", "/axis-cgi/a3dpc.cgi")):
        return "a3dpc"
    if path.startswith("/stereo/"):
        return "stereo"
    if path.startswith("/axis-cgi/"):
        return "vapix"
    return "other"


def _api(route: object) -> str:
    """The API of a counted request's route (``other``: no route matched)."""
    if isinstance(route, str):
        return route
    resource = route.resource if isinstance(route, AbstractRoute) else None
    return "other" if resource is None else api_of(resource.canonical)


class Metrics:
    """The counters of one application and the collector that exposes them with the state."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        #: Durations by (route, status, model): the route's API is found when scraped (a
        #: route no path matched is None; the control plane's requests are "control").
        self.requests: dict[tuple[object, int, str], Histogram] = {}
        self.digest_failures: dict[str, int] = {}  # reason -> count
        self.export_rows: dict[tuple[str, str, str], int] = {}  # (api, format, resolution)
        self.lateness: dict[str, Histogram] = {}  # device ("" fleet-wide) -> histogram
        #: The open connections of the server and how many it closed at its cap (set by
        #: the server that serves the application; absent under a test client).
        self.connections: Callable[[], tuple[int, int]] | None = None
        self.pushing = [d.id for d in runtime.fleet.served if d.cfg.push is not None]
        self.per_device = len(self.pushing) <= PER_DEVICE_LIMIT
        runtime.pusher.on_attempt = self.push_attempt
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(namespace=NS, registry=self.registry)

    # ---- the hot path -------------------------------------------------------------------
    def request(self, request: web.Request, status: int, auth: str, seconds: float) -> None:
        """Count a device request: its route, status and device model; a Digest failure's reason."""
        info = request.match_info
        route = None if info.http_exception is not None else info.route
        self.count(route, status, request[DEVICE].cfg.model, auth, seconds)

    def count(
        self, route: AbstractRoute | None, status: int, model: str, auth: str, seconds: float
    ) -> None:
        """Count a device request by its route (None: no path matched), status and model."""
        key = (route, status, model)
        (self.requests.get(key) or self._new(key)).observe(seconds)
        if auth not in NOT_FAILURES:
            self.digest_failures[auth] = self.digest_failures.get(auth, 0) + 1

    def control_request(self, status: int, seconds: float) -> None:
        """Count a control plane request."""
        key = ("control", status, "none")
        (self.requests.get(key) or self._new(key)).observe(seconds)

    def _new(self, key: tuple[object, int, str]) -> Histogram:
        """The durations of a new (route, status, model)."""
        hist = self.requests[key] = Histogram(DURATION_BUCKETS)
        return hist

    def count_rows(
        self, api: str, fmt: str, resolution: str, chunks: Iterable[Chunk]
    ) -> Iterator[Chunk]:
        """The chunks of an export, their rows counted as they are handed to the encoder."""
        key = (api, fmt, resolution)
        rows = self.export_rows
        for chunk in chunks:
            rows[key] = rows.get(key, 0) + len(chunk.values[0])
            yield chunk

    def push_attempt(self, d: Delivery) -> None:
        """A push delivery attempt: a delivered one's lateness into the histogram.

        Lateness: wall seconds from the moment the simulated clock reached the interval's
        end (or from the clock's last change, if it jumped past it) to the delivery.
        """
        if not d.ok:
            return
        key = d.device if self.per_device else ""
        hist = self.lateness.get(key)
        if hist is None:
            hist = self.lateness[key] = Histogram(LATENESS_BUCKETS)
        hist.observe(max(0.0, d.wall_time - self.runtime.clock.wall_at(d.interval_end)))

    # ---- the collector ------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """Every metric, the state read now."""
        yield from self._http()
        yield from self._push()
        yield from self._runtime()

    def _http(self) -> Iterator[Metric]:
        """Requests, their durations, Digest failures and export rows."""
        reqs = CounterMetricFamily(
            f"{NS}_http_requests", "HTTP requests answered, by API, status and device model",
            labels=("api", "status", "model"),
        )  # fmt: skip
        counts: dict[tuple[str, str, str], int] = {}
        durations = {api: Histogram(DURATION_BUCKETS) for api in APIS}
        for (route, status, model), h in list(self.requests.items()):
            api = _api(route)
            key = (api, str(status), model)
            counts[key] = counts.get(key, 0) + sum(h.counts)
            durations[api].add(h)
        for key, n in sorted(counts.items()):
            reqs.add_metric(key, n)
        yield reqs
        hist = HistogramMetricFamily(
            f"{NS}_http_request_duration_seconds", "Wall seconds to answer a request, by API",
            labels=("api",),
        )  # fmt: skip
        for api, h in durations.items():
            if any(h.counts):
                hist.add_metric((api,), h.buckets(), h.total)
        yield hist
        fails = CounterMetricFamily(
            f"{NS}_digest_failures", "Requests refused by Digest authentication, by reason",
            labels=("reason",),
        )  # fmt: skip
        for reason, n in sorted(self.digest_failures.items()):
            fails.add_metric((reason,), n)
        yield fails
        rows = CounterMetricFamily(
            f"{NS}_export_rows", "Rows (bins) of exports served, by API, format and resolution",
            labels=("api", "format", "resolution"),
        )  # fmt: skip
        for key, n in sorted(self.export_rows.items()):
            rows.add_metric(key, n)
        yield rows

    def _push(self) -> Iterator[Metric]:
        """Push deliveries, failed attempts, backlog and lateness (per device up to a limit)."""
        if not self.pushing:
            return
        pusher = self.runtime.pusher
        labels = ("device",) if self.per_device else ()
        families = {
            "delivered": CounterMetricFamily(
                f"{NS}_push_deliveries", "Push intervals delivered (2xx)", labels=labels
            ),
            "failed_attempts": CounterMetricFamily(
                f"{NS}_push_failures", "Push delivery attempts that failed", labels=labels
            ),
        }
        backlog = GaugeMetricFamily(
            f"{NS}_push_backlog", "Push intervals produced, waiting for delivery", labels=labels
        )
        rows = [(d, pusher.stats(d), pusher.pending(d)) for d in self.pushing]
        if self.per_device:
            for dev, stats, pending in rows:
                for field, family in families.items():
                    family.add_metric((dev,), getattr(stats, field))
                backlog.add_metric((dev,), pending)
        else:
            for field, family in families.items():
                family.add_metric((), sum(getattr(s, field) for _, s, _ in rows))
            backlog.add_metric((), sum(p for _, _, p in rows))
        yield from families.values()
        yield backlog
        late = HistogramMetricFamily(
            f"{NS}_push_lateness_seconds",
            "Wall seconds from an interval's end on the simulated clock to its delivery",
            labels=labels,
        )
        for key, h in sorted(self.lateness.items()):
            late.add_metric((key,) if self.per_device else (), h.buckets(), h.total)
        yield late

    def _runtime(self) -> Iterator[Metric]:
        """The scheduler's lag behind the clock and the server's open connections."""
        rt = self.runtime
        clock, heap = rt.clock, rt.scheduler.heap
        lag = wall_lag = 0.0
        if heap and (due := heap[0][0]) < (now := clock.now()):
            lag = now - due
            wall_lag = max(0.0, wall_time() - clock.wall_at(due))
        yield GaugeMetricFamily(
            f"{NS}_scheduler_lag_seconds",
            "Simulated seconds the earliest due push boundary or event waits behind the clock",
            value=lag,
        )
        yield GaugeMetricFamily(
            f"{NS}_scheduler_lag_wall_seconds",
            "Wall seconds since the earliest waiting push boundary or event fell due",
            value=wall_lag,
        )
        yield GaugeMetricFamily(
            f"{NS}_devices", "Devices this simulator serves", value=len(rt.fleet.served)
        )
        if self.connections is not None:
            open_, evicted = self.connections()
            yield GaugeMetricFamily(
                f"{NS}_open_connections", "Client connections open to the devices", value=open_
            )
            yield CounterMetricFamily(
                f"{NS}_connections_evicted",
                "Idle connections closed to make room at the connection cap",
                value=evicted,
            )


METRICS = web.AppKey("metrics", Metrics)


async def timed_control(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a control plane request (:func:`control.guard`) and count it."""
    t0, status = perf_counter(), 500
    try:
        resp = await control.guard(request, handler)
        status = resp.status
        return resp
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        request.app[METRICS].control_request(status, perf_counter() - t0)


def counted(
    request: web.Request, api: str, fmt: str, resolution: str, chunks: Iterable[Chunk]
) -> Iterator[Chunk]:
    """An export's chunks, their rows counted in the application's metrics."""
    return request.app[METRICS].count_rows(api, fmt, resolution, chunks)


@routes.get(f"{control.PREFIX}/metrics")
async def scrape(request: web.Request) -> web.Response:
    """The metrics in Prometheus' text format 0.0.4 (the control token asked, if set)."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
