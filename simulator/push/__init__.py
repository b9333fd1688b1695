"""Generic data push: Axis Retail Data JSON to an HTTPS endpoint, durable and in order."""

from simulator.push.pusher import Delivery, Pusher, PushStats
from simulator.push.sender import PushSetupError

__all__ = ["Delivery", "PushSetupError", "PushStats", "Pusher"]
