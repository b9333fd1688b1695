"""p8815-sim: a simulator of the AXIS P8815-2 3D People Counter."""

__version__ = "0.1.0"
