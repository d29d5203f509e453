"""Pacing a replayed file at the rate its live counterpart would deliver it (`source.rate`).

A video file, an image folder or a signal file is read as fast as the model takes it unless a
rate is given; then the capture thread reads one item every 1/rate seconds, as a camera on the
line would deliver them. The schedule is kept on the monotonic clock, so a slow read (decoding,
a model that held the reader back) is caught up instead of stretching every later period.
"""

from __future__ import annotations

import time
from typing import Callable, Optional


class Paced:
    """`rate` items per second (None: no wait); `wait()` before each read keeps the schedule."""

    def __init__(self, rate: Optional[float]):
        self.period = 1.0 / rate if rate else 0.0
        self._next: Optional[float] = None

    def wait(self, sleep: Callable[[float], object] = time.sleep) -> None:
        """Sleep until the next item is due; `sleep` may be an Event.wait, so a stop cuts the wait short."""
        if not self.period:
            return
        now = time.monotonic()
        if self._next is None:
            self._next = now
        if self._next > now:
            sleep(self._next - now)
        # at most one period of catch-up: a reader held back long does not then burst a backlog
        self._next = max(self._next, now - self.period) + self.period
