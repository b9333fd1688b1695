"""Generic data push: Axis Retail Data JSON to an HTTPS endpoint, durable and in order."""

from simulator.runtime.push.pusher import Delivery, Pusher, PushStats
from simulator.runtime.push.sender import PushSetupError

__all__ = ["Delivery", "PushSetupError", "PushStats", "Pusher"]
