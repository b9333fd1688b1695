"""A simulated device: the domain API every wire format is rendered from.

``counts`` (the crowd model's days, cached), ``occupancy`` (windows and the real-time
reading), ``signals`` (frames, passthrough, I/O, doors), ``exports`` (bins day by day),
``device`` (the whole, with the operator's actions); ``site`` and ``days`` (the day cache) are what
devices share.
"""

from simulator.device.counts import on_grid
from simulator.device.days import DayCache
from simulator.device.device import Device
from simulator.device.exports import Chunk
from simulator.device.occupancy import Realtime, Window
from simulator.device.site import Bursts, Site

__all__ = ["Bursts", "Chunk", "DayCache", "Device", "Realtime", "Site", "Window", "on_grid"]
