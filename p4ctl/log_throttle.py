"""Warnings a switch can cause at any rate, at most one per interval.

A burst of new flows beyond the queues, a switch sending garbage, a busy
flow whose reverse key is taken: each would log a line per message, and a
log that scrolls by thousands of lines a second hides the one that matters.
The first line goes out; those within the next ``interval`` seconds are
counted, and the next line that goes out says how many were held back.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LogThrottle:
    """At most one log line per ``interval`` seconds; says how many it held back."""

    __slots__ = ("_clock", "_next", "held_back", "interval")

    def __init__(self, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._next = 0.0
        self.held_back = 0

    def allow(self, now: float | None = None) -> str | None:
        """A suffix for the line if it may go out now (None: held back)."""
        if now is None:
            now = self._clock()
        if now < self._next:
            self.held_back += 1
            return None
        self._next = now + self.interval
        held, self.held_back = self.held_back, 0
        return f" (and {held} more like it in the last {self.interval:.0f} s)" if held else ""
