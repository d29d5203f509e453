"""A small picture of a running inspection, read from beside the loop (never from inside it).

The MQTT metrics topic, Home Assistant's sensors, Sparkplug's DDATA and the OPC UA server all show
the same few numbers; they read them here, from the pipeline's counters, on their own threads and at
their own pace: nothing is added to the per-frame path.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Any, Optional


def _num(value: Any) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class RunProbe:
    """Reads a Pipeline (edge.pipeline): counters, last score, threshold, bundle, health.

    Each reader keeps its own probe: frames per second are over the time since that reader's last look.
    """

    def __init__(self, pipeline, clock=time.monotonic):
        self.pipeline = pipeline
        self._clock = clock
        self._last = (clock(), self._frames())

    def _frames(self) -> int:
        return int(getattr(self.pipeline.metrics, "frames", 0))

    def snapshot(self) -> dict:
        p = self.pipeline
        m = p.metrics
        now, frames = self._clock(), self._frames()
        then, before = self._last
        self._last = (now, frames)
        fps = (frames - before) / (now - then) if now > then else 0.0
        score = _num(m.last_score)
        threshold = _num(getattr(getattr(p, "threshold", None), "value", None)) or _num(m.threshold)
        bundle = getattr(p, "bundle", None)
        health = getattr(m, "health_state", {}) or {}
        return {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "fps": round(fps, 2),
            "frames": frames,
            "alerts": int(m.alerts),
            "dropped": int(m.dropped),
            "last_score": score,
            "threshold": threshold,
            # The last frame on its own (the decision may still be waiting for more votes).
            "defect": bool(score is not None and threshold is not None and score > threshold),
            "health": health.get("health", "ok"),
            "drift": health.get("drift", "ok"),
            "bundle_id": getattr(bundle, "id", None),
            "bundle_version": getattr(bundle, "version", None),
        }
