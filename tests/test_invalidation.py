"""An event on one device leaves every other device's cached days and readings warm."""

from __future__ import annotations

import pytest

from simulator.device import Device
from simulator.schema.load import parse_scenario
from simulator.schema.timeline import BurstEvent, DoorClosedEvent, IOEvent
from tests.conftest import T0, make_fleet

FLEET = """
seed: 5
fleet: {count: 3, id_prefix: door-, serial_start: ACCC8E200000}
"""


class Counting:
    """Counts how often a device builds an occupancy window (the readings' heavy part)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.windows: dict[str, int] = {}
        build = Device._occupancy_window

        def spy(dev: Device, *args: object, **kwargs: object) -> object:
            self.windows[dev.id] = self.windows.get(dev.id, 0) + 1
            return build(dev, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Device, "_occupancy_window", spy)


@pytest.mark.parametrize(
    "event",
    [
        IOEvent(kind="io", device="door-0001", active=True),
        DoorClosedEvent(kind="door_closed", device="door-0001"),
        BurstEvent(kind="burst", device="door-0001", visitors=300, minutes=10),
    ],
)
def test_an_event_on_one_device_recomputes_nothing_of_another(
    event: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = make_fleet(parse_scenario(FLEET))
    a, b = fleet.fleet.by_id["door-0000"], fleet.fleet.by_id["door-0001"]
    before = a.realtime(T0)
    b.realtime(T0)
    spy = Counting(monkeypatch)
    misses = fleet.fleet.cache.misses
    fleet.inject(event)  # type: ignore[arg-type]
    assert a.realtime(T0 + 1).occupancy >= 0 and a.realtime(T0) == before
    assert fleet.fleet.cache.misses == misses  # no day of door-0000 drawn again
    assert spy.windows.get("door-0000", 0) == 0  # its whole-day window still memoised
    b.realtime(T0 + 1)
    if event.kind != "io":  # type: ignore[attr-defined]
        assert fleet.fleet.cache.misses > misses  # the touched device recomputes its own day
        assert spy.windows["door-0001"] >= 1
