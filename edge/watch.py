"""The health and drift watches of one run, built from its bundle and config (edge/health.py,
edge/drift.py): the pipeline hands each inspected frame over after decide and sends on the events."""

from __future__ import annotations

import time
from typing import Optional

from edge.bundle import Bundle
from edge.decide import LiveThreshold
from edge.drift import DriftConfig, DriftWatch
from edge.health import HealthConfig, HealthReference, HealthWatch
from edge.health_event import HealthEvent
from edge.messages import Log
from edge.web.sensitivity import calibration_scores


class Watch:
    """Both watches (either may be off); `observe()` returns the events of this frame."""

    def __init__(
        self, health: Optional[HealthWatch], drift: Optional[DriftWatch], notes: tuple = (), log: Optional[Log] = None
    ):
        self.health = health
        self.drift = drift
        # Which checks this bundle cannot run: said at the first frame, not at build time, so a
        # run that fails to start (a port in use, a camera missing) still says one line only.
        self._notes = list(notes)
        self._log = log
        self.seconds = 0.0  # time spent in the checks (the cost target: benchmarks/health_cost.py)

    @classmethod
    def for_bundle(
        cls, bundle: Bundle, health: HealthConfig, drift: DriftConfig, threshold: "float | LiveThreshold", log: Log
    ) -> "Watch":
        """`threshold`: the run's LiveThreshold, so the drift watch's false-alarm rate follows the one in force."""
        health_watch = drift_watch = None
        notes = []
        if health.enabled:
            health_watch = HealthWatch(health, HealthReference.load(bundle.path))
            off = health_watch.checks_off()
            if off:  # an older bundle has no health/ reference from calibration
                notes.append(f"health: bundle has no calibration reference (health/): off: {', '.join(off)}")
        if drift.enabled:
            scores = calibration_scores(bundle)
            if scores is None or scores.normal.size < 2:
                notes.append("drift: bundle keeps no calibration scores (report/scores.csv): drift watch off")
            else:
                drift_watch = DriftWatch(drift, scores.normal, threshold)
        return cls(health_watch, drift_watch, tuple(notes), log)

    @property
    def grey_width(self) -> Optional[int]:
        """The width of the health checks' grey copy (the capture thread makes it); None: health off."""
        return self.health.config.width if self.health is not None else None

    def observe(self, image, score: float, flagged: bool, now: float, source: str, grey=None) -> list[HealthEvent]:
        """This frame's events. `grey`: its health grey copy, when the capture thread made it."""
        if self._notes and self._log is not None:
            for note in self._notes:
                self._log(note)
            self._notes.clear()
        start = time.perf_counter()
        events = []
        if self.health is not None:
            self.health.source = source
            events.append(self.health.observe(image, now, grey))
        if self.drift is not None:
            self.drift.source = source
            events.append(self.drift.observe(score, flagged, now))
        self.seconds += time.perf_counter() - start
        return [e for e in events if e is not None]

    @property
    def unhealthy(self) -> Optional[str]:
        return self.health.unhealthy if self.health is not None else None

    def status(self) -> dict:
        """The `health` entry of the web page's status JSON."""
        out: dict = {"image": None, "drift": None}
        if self.health is not None:
            out["image"] = {"state": self.health.state, "last": self.health.last, "events": self.health.events}
        if self.drift is not None:
            state = "drift" if self.drift.drifted else "ok"
            out["drift"] = {"state": state, "events": self.drift.events, **self.drift.figures()}
        return out
