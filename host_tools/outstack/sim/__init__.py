"""The virtual board (`outstack sim`): the MicroPython unix port run as a board."""

from .board import VirtualBoard

__all__ = ["VirtualBoard"]
