"""The simulated device whole: counts, occupancy, exports, signals, and the operator's actions."""

from __future__ import annotations

from simulator.device.counts import on_grid
from simulator.device.exports import Exports
from simulator.device.signals import Signals
from simulator.errors import (
    MSG_ESTIMATION_OFF,
    MSG_PASSTHROUGH_OFF,
    MSG_SECONDARY,
    RejectedError,
)
from simulator.store import Action


class Device(Exports, Signals):
    """One simulated device: counts from the crowd model plus recorded operator actions.

    Built whole: its site (doors drawn together, the primary, injected bursts), its
    recording if it replays one, and the fleet's day cache are given at construction.
    Every reading takes the simulated time ``now`` it is taken at.
    """

    def record(self, kind: str, value: int, at: float) -> None:
        """Record an action of this device at ``at``, stamped on the device's grid."""
        self.store.add(Action(self.id, on_grid(at), kind, value))

    def adjust_occupancy(self, value: int, now: float) -> None:
        """Set the occupancy estimate to ``value`` from now on (adjustOccupancy)."""
        if self.cfg.occupancy.role == "secondary":
            raise RejectedError(MSG_SECONDARY)
        if not self.cfg.occupancy.estimation:
            raise RejectedError(MSG_ESTIMATION_OFF)
        self.record("adjust", value, now)

    def restart_passthrough(self, now: float) -> None:
        """Restart the passthrough countdown from 0 without a threshold event."""
        if not self.cfg.passthrough.events:
            raise RejectedError(MSG_PASSTHROUGH_OFF)
        self.record("passthrough-restart", 0, now)
