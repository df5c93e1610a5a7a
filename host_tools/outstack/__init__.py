"""Outstack Micro host tools: virtual board, deploy, and (later) OTA, console and fleet."""

__version__ = "0.1.0"
