"""A simulated device: the domain API every wire format is rendered from.

``counts`` (the crowd model's days, the site the doors share, its bursts), ``occupancy``
(windows and the real-time reading), ``signals`` (frames, passthrough, I/O), ``exports``
(bins day by day), ``device`` (the whole, with the operator's actions), ``days`` (the day
cache a fleet shares).
"""

from simulator.device.counts import Bursts, Site, on_grid
from simulator.device.days import DayCache
from simulator.device.device import Device
from simulator.device.exports import Chunk
from simulator.device.occupancy import Realtime, Window

__all__ = ["Bursts", "Chunk", "DayCache", "Device", "Realtime", "Site", "Window", "on_grid"]
