"""What the loop shows the page: the latest frame, recent scores, counters. The loop never waits.

`publish()` is called once per inspected frame by the loop (edge/pipeline.py). It takes no lock and
does no drawing: a score goes into a bounded deque (the oldest falls out) and, only while a page
has asked for the live image in the last few seconds and at most `live_fps` times a second, the
frame and a copy of its map replace the previous ones. Nobody reading means nothing is kept but
the scores. The drawing and JPEG encoding happen on the server's threads (edge/web/live.py).

Reads from other threads are safe under the GIL: attribute assignment of a new LiveFrame is
atomic, and list(deque) copies the deque in one C call.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

WATCH_SECONDS = 3.0  # a page that asked within this long still gets frames


@dataclass(frozen=True)
class LiveFrame:
    seq: int  # the inspected frame's number since start
    time: float  # wall clock (epoch seconds)
    image: np.ndarray  # the frame as read (each read is a new array: kept without copying)
    heat: np.ndarray  # a copy of the stitched map (the scorer reuses its buffer)
    score: float
    threshold: float
    alerted: bool


class Observer:
    def __init__(self, trace: int = 600, live_fps: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.scores: deque[tuple[int, float, float, bool]] = deque(maxlen=trace)  # seq, time, score, alerted
        self.seq = 0
        self.latest: LiveFrame | None = None
        self.published_frames = 0  # frames handed over for the live view
        self._interval = 1.0 / live_fps
        self._clock = clock
        self._watched_until = -1.0
        self._next_frame_at = 0.0

    def watch(self, seconds: float = WATCH_SECONDS) -> None:
        """A page wants the live image: keep frames for the next `seconds`."""
        self._watched_until = self._clock() + seconds

    @property
    def watched(self) -> bool:
        return self._clock() < self._watched_until

    def publish(self, image: np.ndarray, heat: np.ndarray, score: float, threshold: float, alerted: bool) -> None:
        """One inspected frame; returns at once, whatever the readers do."""
        self.seq += 1
        now = time.time()
        self.scores.append((self.seq, now, float(score), alerted))
        mono = self._clock()
        if mono >= self._watched_until or mono < self._next_frame_at:
            return
        self._next_frame_at = mono + self._interval
        self.latest = LiveFrame(self.seq, now, image, heat.copy(), float(score), float(threshold), alerted)
        self.published_frames += 1

    def recent(self, after: int = 0) -> list[tuple[int, float, float, bool]]:
        """Scores of frames after number `after`, oldest first."""
        return [s for s in list(self.scores) if s[0] > after]

    def fps(self, seconds: float = 5.0) -> float:
        """Inspected frames a second over the last `seconds` (from the kept scores)."""
        scores = list(self.scores)
        if len(scores) < 2:
            return 0.0
        now = time.time()
        recent = [s for s in scores if now - s[1] <= seconds]
        if len(recent) < 2:
            return 0.0
        span = max(recent[-1][1] - recent[0][1], 1e-6)
        return (len(recent) - 1) / span
