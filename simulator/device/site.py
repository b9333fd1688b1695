"""A site: the doors simulated together, the primary holding adjustments, injected bursts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from simulator.model.crowd import SiteSpec
from simulator.scenario import Burst

if TYPE_CHECKING:
    from simulator.device.counts import DeviceCounts


class Bursts:
    """Bursts injected at run time into one site, by local day, with a revision."""

    def __init__(self) -> None:
        self._by_day: dict[date, list[Burst]] = {}
        self.revision = 0  # bumped on every change: the site's cached days are stale

    def add(self, burst: Burst) -> None:
        """One more burst on its day."""
        self._by_day.setdefault(burst.day, []).append(burst)
        self.revision += 1

    def on(self, day: date) -> list[Burst]:
        """The bursts of a day (none: empty)."""
        return self._by_day.get(day, [])

    def clear(self) -> None:
        """Forget every burst."""
        if self._by_day:
            self._by_day.clear()
            self.revision += 1


@dataclass(eq=False)
class Site:
    """The doors of one site: drawn together, summed for occupancy, adjusted on the primary.

    Doors join as they are built (:class:`~simulator.device.Device` joins the site it is
    given); ``primary_id`` names the door that holds adjustments.
    """

    spec: SiteSpec
    primary_id: str
    bursts: Bursts = field(default_factory=Bursts)
    doors: list[DeviceCounts] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The site's name (``site:<name>``, or ``device:<id>`` for a lone door)."""
        return self.spec.name

    @property
    def primary(self) -> DeviceCounts:
        """The door holding the site's occupancy adjustments."""
        return next((d for d in self.doors if d.id == self.primary_id), self.doors[0])

    def join(self, door: DeviceCounts) -> None:
        """A door of this site is built."""
        self.doors.append(door)
