"""Have the scores of good parts moved away from what calibration saw? Checked on every frame.

The bundle keeps the normal images' scores from calibration (report/scores.csv, read by
edge.web.sensitivity). Their quantiles cut the score axis into `bins` bins, each holding an equal
share of calibration's normal scores. The device keeps the last `window` scores of frames it did
not flag, counted into the same bins as they come (one searchsorted per frame, the oldest score
taken out of its bin: no sort, no histogram per frame), and compares the two shares with the
population stability index, PSI = sum((now - calibration) * ln(now / calibration)).

Why PSI and 0.25: it is the distance credit scoring has used for decades to say a population moved,
with the usual reading under 0.1 no change, 0.1-0.25 some, over 0.25 a shift worth acting on; it
needs no assumption on the score's distribution and costs a dozen operations per frame.

Beside it, the rolling false-alarm rate: the share of all recent inspected frames scoring over the
threshold (flagged or not), to set against calibration's. Both are read at the threshold in force
(a LiveThreshold: an operator's override from the page, or the threshold of a bundle swapped in
by edge.swap), not the one the run started with. When PSI stays over `level` for
`hold_seconds`, a `drift` event says how far, since when, and what to do; when it stays under for
as long, a drift event with state ok says it is over.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np
from pydantic import Field

from edge.decide import LiveThreshold
from edge.health_event import HealthEvent, iso_time
from edge.schema import StrictModel

FLOOR = 1e-4  # an empty bin's share: PSI's log needs one, and it keeps one empty bin from dominating
ADVICE = (
    "the scores of good parts moved away from calibration: review recent frames on the web page "
    "(false alarms or real defects?); if the line changed for good (light, material, camera), "
    "recalibrate on new normal frames"
)
BACK = "the scores are back near calibration's"


class DriftConfig(StrictModel):
    """When the scores count as drifted (see edge/drift.py for why each default)."""

    enabled: bool = Field(True, description="compare recent scores with calibration's")
    window: int = Field(500, ge=20, description="recent scores of unflagged frames compared")
    bins: int = Field(10, ge=2, le=100, description="quantile bins of calibration's normal scores")
    level: float = Field(0.25, gt=0, description="PSI over which the scores count as drifted")
    hold_seconds: float = Field(300.0, ge=0, description="PSI must stay over (or under) the level this long")


class DriftWatch:
    """A rolling window of scores against calibration's; `observe()` returns an event on a change."""

    def __init__(
        self, config: DriftConfig, normal_scores: np.ndarray, threshold: "float | LiveThreshold", source: str = ""
    ):
        self.config = config
        # The holder the loop's decider reads: a threshold moved on the page or by a swap is seen here too.
        self.live_threshold = threshold if isinstance(threshold, LiveThreshold) else LiveThreshold(threshold)
        self.source = source
        scores = np.sort(np.asarray(normal_scores, dtype=np.float64))
        # Inner edges only: a score below the first edge is bin 0, above the last is the last bin.
        self._edges = np.unique(np.quantile(scores, np.linspace(0, 1, config.bins + 1)[1:-1]))
        self._expected = np.maximum(self._shares(scores), FLOOR)
        self._normal = scores
        self._bins: deque[int] = deque()
        self._counts = np.zeros(self._edges.size + 1, dtype=np.int64)
        # Every recent inspected score, so the rates are counted at whatever threshold is in force when asked.
        self._recent: deque[float] = deque(maxlen=config.window)
        self.drifted = False
        self.psi = float("nan")
        self.events = 0
        self._crossed_at: Optional[float] = None  # when PSI last crossed the level the other way

    def _shares(self, scores: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(self._edges, scores, side="right"), minlength=self._edges.size + 1)
        return counts / max(scores.size, 1)

    def observe(self, score: float, flagged: bool, now: float) -> Optional[HealthEvent]:
        """Count one inspected frame (its score; whether it was flagged) at frame time `now`."""
        if not np.isfinite(score):
            return None
        self._recent.append(score)
        if not flagged:
            self._count_score(score)
        if len(self._bins) < self.config.window:
            return None  # judge a full window only: a few scores say nothing about a distribution
        self.psi = self._psi()
        return self._settle(self.psi > self.config.level, now)

    def _count_score(self, score: float) -> None:
        b = int(np.searchsorted(self._edges, score, side="right"))
        self._bins.append(b)
        self._counts[b] += 1
        if len(self._bins) > self.config.window:
            self._counts[self._bins.popleft()] -= 1

    def _psi(self) -> float:
        now = np.maximum(self._counts / len(self._bins), FLOOR)
        return float(np.sum((now - self._expected) * np.log(now / self._expected)))

    @property
    def threshold(self) -> float:
        return self.live_threshold.value

    @property
    def false_alarm_rate(self) -> float:
        """Share of the recent inspected frames over the threshold in force (counted when asked: events, page)."""
        n = len(self._recent)
        return float(np.count_nonzero(np.fromiter(self._recent, np.float64, n) > self.threshold)) / n if n else 0.0

    @property
    def calibration_false_alarm_rate(self) -> float:
        """Share of calibration's normal scores over the threshold in force (the device's rule: strictly above)."""
        n = self._normal.size
        return float(n - np.searchsorted(self._normal, self.threshold, side="right")) / n if n else 0.0

    def _settle(self, over: bool, now: float) -> Optional[HealthEvent]:
        if over == self.drifted:
            self._crossed_at = None
            return None
        if self._crossed_at is None:
            self._crossed_at = now
        if now - self._crossed_at < self.config.hold_seconds:
            return None
        previous = "drift" if self.drifted else "ok"
        self.drifted, since = over, self._crossed_at
        self._crossed_at = None
        self.events += 1
        return HealthEvent(
            kind="drift",
            state="drift" if over else "ok",
            previous=previous,
            since=iso_time(since),
            detail=self.figures(),
            advice=ADVICE if over else BACK,
            source=self.source,
        )

    def figures(self) -> dict:
        """How far: the PSI and its level, the false-alarm rates now and at calibration."""
        return {
            "psi": round(self.psi, 4) if np.isfinite(self.psi) else None,
            "level": self.config.level,
            "window": len(self._bins),
            "false_alarm_rate": round(self.false_alarm_rate, 4),
            "calibration_false_alarm_rate": round(self.calibration_false_alarm_rate, 4),
            "threshold": self.threshold,
        }
