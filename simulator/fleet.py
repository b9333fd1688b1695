"""The simulator's devices, their sites, and which address each one answers on."""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from simulator.clock import SimClock
from simulator.device import DayCache, Device, Site
from simulator.replay import load_recording
from simulator.schema.scenario import Scenario
from simulator.specs import site_specs
from simulator.store import Store


def http_url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def canonical_host(host: str) -> str:
    """An IP address as sockets name it (``0:0::1`` is ``::1``); a name as it is."""
    with contextlib.suppress(OSError):  # a dotted quad: the C parser, fast for a big fleet
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host))
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return host


def in_shard(device: Device, shard: tuple[int, int]) -> bool:
    """Whether shard ``i`` of ``n`` serves a device.

    Decided by the index of the device's site's first door, so the doors of a site stay
    together and the shards' union is the whole fleet, each device exactly once.
    """
    i, n = shard
    return device.site.doors[0].index % n == i


def build_sites(scenario: Scenario) -> dict[str, Site]:
    """Every device's site by device id: the doors of a site share one (linear time)."""
    sites: dict[str, Site] = {}
    configs = {d.id: d for d in scenario.devices}
    for spec in {id(s): s for s in site_specs(scenario).values()}.values():
        doors = [configs[i] for i in spec.door_ids]
        primary = next((d for d in doors if d.occupancy.role == "primary"), doors[0])
        site = Site(spec, primary.id)
        sites.update((i, site) for i in spec.door_ids)
    return sites


class Fleet:
    """All devices of a scenario (their sites, the shard served, their addresses).

    The devices share one clock, one store and one day cache.
    """

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        store: Store | None = None,
        seed: int | None = None,
        cache_days: int = 65536,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.store = store if store is not None else Store()
        self.seed = scenario.seed if seed is None else seed
        self.cache = DayCache(cache_days)
        start = clock.now()
        self.sites = build_sites(scenario)
        self.devices = [
            Device(
                cfg,
                i,
                self.seed,
                clock,
                self.store,
                site=self.sites[cfg.id],
                cache=self.cache,
                replay=load_recording(cfg.replay.file) if cfg.replay is not None else None,
                sim_start=start,
            )
            for i, cfg in enumerate(scenario.devices)
        ]
        self.by_id = {d.id: d for d in self.devices}
        #: The simulated time at start-up (devices boot then; ``after`` events count from it).
        self.sim_start = start
        self._addresses: dict[tuple[str, int], Device] = {}
        self._first_address: dict[str, tuple[str, int]] = {}
        self._any_address: dict[int, Device] = {}
        self.shard = shard
        self.served = [d for d in self.devices if in_shard(d, shard)]

    def address_of(self, device: Device) -> tuple[str, int] | None:
        """The first address a device answers on, if it is bound."""
        return self._first_address.get(device.id)

    def url_of(self, device: Device) -> str | None:
        """The base URL of a device (its first address), if it is bound."""
        addr = self._first_address.get(device.id)
        return None if addr is None else http_url(*addr)

    def bind(self, device: Device, host: str, port: int) -> None:
        """Route requests that arrive on the local socket address ``host:port`` to ``device``.

        ``host`` is the address the socket is bound to (its ``getsockname()``), not a name.
        """
        addr = (canonical_host(host), int(port))
        self._addresses[addr] = device
        self._first_address.setdefault(device.id, addr)
        if addr[0] in ("0.0.0.0", "::"):  # every local address: the port alone tells
            self._any_address[addr[1]] = device

    def resolve(self, sockname: object) -> Device | None:
        """The device answering on the local address a request arrived on."""
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            hit = self._addresses.get(sockname[:2]) or self._any_address.get(sockname[1])
            if hit is not None:
                return hit
        if len(self.devices) == 1:
            return self.devices[0]
        return None
