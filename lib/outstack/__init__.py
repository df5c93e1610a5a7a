# Outstack Micro: service management for MicroPython boards. Parts load on first use.
__version__ = "0.1.0"
