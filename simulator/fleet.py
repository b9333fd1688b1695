"""The simulator's devices, their clock and store, and which address each one answers on."""

from __future__ import annotations

from simulator.api.auth import DigestAuthenticator
from simulator.clock import SimClock
from simulator.device import DayCache, Device
from simulator.model.site import site_specs
from simulator.push import Pusher
from simulator.scenario import DeviceConfig, Scenario
from simulator.store import Store


def authenticator_for(cfg: DeviceConfig) -> DigestAuthenticator:
    """The Digest checker of one device: realm AXIS_<serial>, its users and auth policy."""
    return DigestAuthenticator(
        realm=f"AXIS_{cfg.serial_upper}",
        users={u.name: (u.password, u.role) for u in cfg.users},
        algorithm=cfg.auth.algorithm,
        nonce_lifetime=cfg.auth.nonce_lifetime_s,
        strict_nc=cfg.auth.strict_nc,
    )


class Fleet:
    """All devices of a scenario, sharing one clock, one store and one day cache."""

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        store: Store | None = None,
        seed: int | None = None,
        cache_days: int = 4096,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.store = store if store is not None else Store()
        self.seed = scenario.seed if seed is None else seed
        self.cache = DayCache(cache_days)
        start = clock.now()
        self.devices = [
            Device(cfg, i, self.seed, clock, self.store, self.cache, sim_start=start)
            for i, cfg in enumerate(scenario.devices)
        ]
        self.by_id = {d.id: d for d in self.devices}
        specs = site_specs(scenario)
        for d in self.devices:
            d.site_spec = specs[d.id]
            d.site_doors = [self.by_id[i] for i in d.site_spec.door_ids]
            primaries = [x for x in d.site_doors if x.cfg.occupancy.role == "primary"]
            d.site_primary = primaries[0] if primaries else d.site_doors[0]
        self.auth = {d.id: authenticator_for(d.cfg) for d in self.devices}
        self._addresses: dict[tuple[str, int], Device] = {}
        self.pusher = Pusher(self.devices, clock, self.store, seed=self.seed)

    def bind(self, device: Device, host: str, port: int) -> None:
        """Route requests that arrive on ``host:port`` to ``device``."""
        self._addresses[(host, port)] = device

    def resolve(self, sockname: object) -> Device | None:
        """The device answering on the local address a request arrived on."""
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            hit = self._addresses.get((str(sockname[0]), int(sockname[1])))
            if hit is not None:
                return hit
            for (host, port), dev in self._addresses.items():
                if port == int(sockname[1]) and host in ("0.0.0.0", "::", ""):
                    return dev
        if len(self.devices) == 1:
            return self.devices[0]
        return None
