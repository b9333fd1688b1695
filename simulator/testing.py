"""The simulator as a test double: async and threaded context managers (no pytest needed).

Any runner, in the running event loop::

    async with Simulator("ci") as sim:        # a shipped scenario's name, a file or a Scenario
        await sim.acontrol.advance("15m")

Blocking code: ``with ThreadedSimulator("ci") as sim: ...`` (its own thread and loop).
pytest users get the ``p8815_sim`` fixture from the plugin (``simulator.plugin``), which
installing the package registers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from simulator.client import AsyncControl, Control, ControlError
from simulator.clock import SimClock
from simulator.fleet import Fleet
from simulator.runtime.runtime import Runtime
from simulator.schema.load import load_scenario
from simulator.schema.scenario import Scenario
from simulator.server import ServedFleet, serve_fleet
from simulator.store import Store

ScenarioLike = Scenario | str | Path | None

__all__ = [
    "AsyncControl",
    "Control",
    "ControlError",
    "DeviceInfo",
    "Simulator",
    "SimulatorHandle",
    "ThreadedSimulator",
]


def _scenario(s: ScenarioLike) -> Scenario:
    """The scenario itself: the built-in default, a Scenario, a file or a shipped name."""
    if s is None:
        return Scenario()
    return s if isinstance(s, Scenario) else load_scenario(s)


@dataclass(frozen=True)
class DeviceInfo:
    """One served device: its id, base URL, users (name -> password) and HTTPS base URL."""

    id: str
    url: str
    users: dict[str, str]
    https_url: str | None = None


class Simulator:
    """A simulator served in the running event loop: ``async with Simulator(...) as sim``.

    ``scenario``: a shipped scenario's name (``"mall"``), a file, a Scenario, or None for the
    built-in store. Each served device listens on its own port of ``host``: with ``port=0``
    (the default) one the OS chooses, else device *i* of the scenario on ``port + i``.
    ``devices`` limits which devices are served (all by default; a fleet of thousands may
    want a few). Each device serves HTTPS too, on a port of its own (``https_port`` 0, the
    default: one the OS chooses; else device *i* on ``https_port + i``; None: HTTP only),
    with a certificate from the run's CA (:attr:`ca_path`).
    """

    def __init__(
        self,
        scenario: ScenarioLike = None,
        *,
        start: float | None = None,
        speed: float | None = None,
        seed: int | None = None,
        control_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        https_port: int | None = 0,
        devices: Sequence[str] | None = None,
        db: str | Path = ":memory:",
    ) -> None:
        self.scenario = _scenario(scenario)
        if control_token is not None:
            control = self.scenario.control.model_copy(update={"token": control_token})
            self.scenario = self.scenario.model_copy(update={"control": control})
        if start is None and self.scenario.start is not None:
            start = self.scenario.start.timestamp()
        self._clock_args = (start, self.scenario.speed if speed is None else speed)
        self.seed = seed
        self.host = host
        self.port = port
        self.https_port = https_port
        self._only = devices
        self._db = db
        self.devices: dict[str, DeviceInfo] = {}
        self._served: ServedFleet | None = None

    @property
    def runtime(self) -> Runtime:
        """The running runtime: clock, scheduler, push, journal (for in-process inspection)."""
        return self._runtime

    @property
    def fleet(self) -> Fleet:
        """The running fleet (for in-process inspection)."""
        return self._runtime.fleet

    @property
    def url(self) -> str:
        """The base URL of the first served device."""
        return next(iter(self.devices.values())).url

    @property
    def ca_path(self) -> str | None:
        """The PEM file of the CA of the devices' HTTPS certificates (None: HTTPS is off)."""
        return None if self._served is None else self._served.ca_path

    @property
    def control_token(self) -> str | None:
        """The control plane's token."""
        return self.scenario.control.token

    @property
    def control(self) -> Control:
        """A blocking control plane client (from another thread than the simulator's)."""
        return Control(self.url, self.control_token)

    @property
    def acontrol(self) -> AsyncControl:
        """An asyncio control plane client (in the simulator's own event loop)."""
        return AsyncControl(self.url, self.control_token)

    def users(self, device: str | None = None) -> dict[str, str]:
        """The users of a device (default: the first served) by name -> password."""
        info = self.devices[device] if device else next(iter(self.devices.values()))
        return info.users

    async def start(self) -> Simulator:
        """Build the runtime and serve its fleet."""
        start, speed = self._clock_args
        clock = SimClock(start=start, speed=speed)
        self._runtime = Runtime(self.scenario, clock, Store(self._db), self.seed)
        wanted = set(self._only) if self._only is not None else None
        devices = [d for d in self._runtime.fleet.devices if wanted is None or d.id in wanted]
        try:
            self._served = await serve_fleet(
                self._runtime, self.host, self.port, devices=devices, https_port=self.https_port
            )
        except BaseException:
            self._runtime.store.close()
            raise
        for d in devices:
            users = {u.name: u.password for u in d.cfg.users}
            url, https = self._served.url(d.id), self._served.https_url(d.id)
            self.devices[d.id] = DeviceInfo(d.id, url, users, https)
        return self

    async def stop(self) -> None:
        """Stop serving and close the store."""
        if self._served is not None:
            await self._served.cleanup()
            self._served = None
            self._runtime.store.close()

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class ThreadedSimulator:
    """A :class:`Simulator` in a background thread with its own event loop (sync tests)."""

    def __init__(self, scenario: ScenarioLike = None, **kwargs: Any) -> None:
        self.sim = Simulator(scenario, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="p8815")

    def __enter__(self) -> Simulator:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop).result(60)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.sim

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        fut: Future[None] = asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop)
        fut.result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class SimulatorHandle:
    """What the ``p8815_sim`` fixture gives a test: URLs, credentials and a control client."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.control = sim.control
        self.devices = sim.devices
        self.url = sim.url
        self.token = sim.control_token
        self.ca_path = sim.ca_path

    def device(self, device_id: str) -> DeviceInfo:
        """A served device by id."""
        return self.devices[device_id]

    def https_url(self, device: str | int = 0) -> str | None:
        """The HTTPS base URL of a device, by id or by its place among the served (None: off)."""
        if isinstance(device, int):
            return list(self.devices.values())[device].https_url
        return self.devices[device].https_url

    def credentials(self, role: str = "viewer", device: str | None = None) -> tuple[str, str]:
        """(user, password) of the first user with ``role`` on a device."""
        d = self.sim.fleet.by_id[device] if device else self.sim.fleet.devices[0]
        for u in d.cfg.users:
            if u.role == role:
                return u.name, u.password
        raise KeyError(f"no {role} user on {d.id}")

    def digest(self, role: str = "viewer", device: str | None = None) -> Any:
        """A ``requests`` HTTPDigestAuth for a user of ``role`` (needs requests)."""
        try:
            from requests.auth import HTTPDigestAuth
        except ImportError:
            raise ImportError(
                "p8815_sim.digest() makes a requests HTTPDigestAuth: pip install requests, "
                "or use p8815_sim.credentials(role) with your own HTTP client"
            ) from None
        return HTTPDigestAuth(*self.credentials(role, device))
