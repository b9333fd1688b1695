"""The simulator's devices, their sites, and which address each one answers on."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator, Mapping, Sequence

from simulator.clock import SimClock
from simulator.device import DayCache, Device, Site
from simulator.replay import load_recording
from simulator.schema.scenario import DeviceConfig, Scenario, fleet_devices
from simulator.specs import doors_spec
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


class DevicesById(Mapping[str, Device]):
    """The fleet's devices by id: those it serves, and any other of the scenario's, built
    with its site when first asked for (a shard holds only what it serves, yet knows all)."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self._built: dict[str, Device] = {}

    def __getitem__(self, device_id: str) -> Device:
        hit = self._built.get(device_id)
        if hit is None:
            hit = self._fleet.build_site_of(device_id)
        return hit

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._built or (
            isinstance(device_id, str) and self._fleet.index_of(device_id) is not None
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._built)

    def __len__(self) -> int:
        return len(self._built)

    def add(self, device: Device) -> None:
        """A device is built."""
        self._built[device.id] = device


class Fleet:
    """The devices of a scenario that a shard serves (their sites, their addresses).

    The devices share one clock, one store and one day cache. Only the sites of the shard are
    built; another device is built when first asked for (``by_id``).
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
        #: The simulated time at start-up (devices boot then; ``after`` events count from it).
        self.sim_start = clock.now()
        #: Every device's config, in scenario order (a template's made when asked for).
        self.configs = fleet_devices(scenario.devices)
        self.sites: dict[str, Site] = {}
        self.by_id = DevicesById(self)
        self.shard = shard
        #: The devices served, in scenario order (with the whole fleet: every device).
        self.served = [d for g in scenario.site_groups(shard) for d in self._build(g)]
        self.served.sort(key=lambda d: d.index)
        self.devices = self.served
        self._addresses: dict[tuple[str, int], Device] = {}
        self._first_address: dict[str, tuple[str, int]] = {}
        self._any_address: dict[int, Device] = {}

    def index_of(self, device_id: str) -> int | None:
        """A device's index in the scenario (None: no such device)."""
        return self.configs.index_of(device_id)

    def _build(self, doors: Sequence[int]) -> list[Device]:
        """Build the devices of one site (the doors' indexes) and the site."""
        configs = [self.configs[j] for j in doors]
        primary = next((d for d in configs if d.occupancy.role == "primary"), configs[0])
        site = Site(doors_spec(configs), primary.id)
        devices = [
            Device(
                cfg,
                j,
                self.seed,
                self.clock,
                self.store,
                site=site,
                cache=self.cache,
                replay=load_recording(cfg.replay.file) if cfg.replay is not None else None,
                sim_start=self.sim_start,
            )
            for j, cfg in zip(doors, configs, strict=True)
        ]
        for d in devices:
            self.by_id.add(d)
            self.sites[d.id] = site
        return devices

    def build_site_of(self, device_id: str) -> Device:
        """Build a device not served here (with its site), booted with the served ones."""
        i = self.index_of(device_id)
        if i is None:
            raise KeyError(device_id)
        built = self._build(self.scenario.site_of(i))
        booted = next((d.booted_at for d in self.served if d.booted_at is not None), None)
        for d in built:
            if booted is not None:
                d.boot(booted)
        return self.by_id[device_id]

    def address_of(self, device: Device) -> tuple[str, int] | None:
        """The first address a device answers on, if it is bound."""
        return self._first_address.get(device.id)

    def url_of(self, device: Device) -> str | None:
        """The base URL of a device (its first address), if it is bound."""
        return self.url_of_id(device.id)

    def url_of_id(self, device_id: str) -> str | None:
        """The base URL of the device with this id (its first address), if it is bound."""
        addr = self._first_address.get(device_id)
        return None if addr is None else http_url(*addr)

    def all_configs(self) -> list[DeviceConfig]:
        """Every device's config in scenario order (those served: their devices' own)."""
        if len(self.served) == len(self.configs):
            return [d.cfg for d in self.served]
        served = {d.index: d.cfg for d in self.served}
        return [served.get(i) or self.configs[i] for i in range(len(self.configs))]

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
        if len(self.configs) == 1 and self.devices:
            return self.devices[0]
        return None
