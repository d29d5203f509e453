"""The status the page shows: fps, counts, sink backlogs, disk space, bundle identity and age."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from edge.bundle import Bundle
from edge.web.observer import Observer


def bundle_identity(bundle: Bundle) -> dict:
    m = bundle.manifest
    created = datetime.fromisoformat(m.created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    age = datetime.now(timezone.utc) - created
    return {
        "path": str(bundle.path),
        "id": bundle.id,
        "version": bundle.version,
        "model": bundle.model_file,  # the one that runs: a bundle's .onnx on --runtime onnxruntime
        "sha256": bundle.model_sha256[:12],
        "kind": m.model.kind,
        "quantization": m.model.quantization,
        "created": m.created,
        "age_days": round(age.total_seconds() / 86400, 1),
        "threshold": {"value": m.threshold.value, "method": m.threshold.method, "runtime": m.threshold.runtime},
    }


def disk(path: Path) -> dict:
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return {"path": str(path), "error": exc.strerror or str(exc)}
    return {"path": str(path), "free_mb": round(usage.free / 2**20, 1), "total_mb": round(usage.total / 2**20, 1)}


def backlogs(sinks: list, dispatcher: Any) -> dict:
    """Alerts not yet delivered: the alert worker's queue, each outbox (webhook, MQTT)."""
    out: dict[str, Any] = {}
    if dispatcher is not None:
        out["alert_worker"] = "idle" if dispatcher.idle else "busy"
        out["snapshots_thinned"] = int(getattr(dispatcher, "thinned", 0))
    for sink in sinks:
        pending = getattr(sink, "pending", None)
        if isinstance(pending, int):
            out[getattr(sink, "name", type(sink).__name__)] = pending
    return out


def gpio_pulses(sinks: list) -> Optional[int]:
    """Pulses given by the GPIO sinks (one per alert: reviews never pulse); None without one."""
    counts = [sink.pulses for sink in sinks if getattr(sink, "name", "") == "gpio"]
    return sum(counts) if counts else None


def health(metrics: Any) -> dict:
    """The picture's state and the scores' (ok, or the problem: edge.health, edge.drift), and how
    many changes of state this run has seen."""
    state = getattr(metrics, "health_state", None) or {}
    events = getattr(metrics, "health_events", None) or {}
    return {"image": state.get("health", "ok"), "drift": state.get("drift", "ok"), "events": sum(events.values())}


class StatusReport:
    """Reads the run's counters when asked (nothing is done per frame for it)."""

    def __init__(
        self,
        observer: Observer,
        metrics: Any,
        bundle: Bundle,
        out: Path,
        threshold: Callable[[], float],
        source_name: Callable[[], str],
        sinks: Optional[Callable[[], tuple[list, Any]]] = None,
    ):
        self.observer, self.metrics, self.bundle, self.out = observer, metrics, bundle, out
        self.threshold, self.source_name, self.sinks = threshold, source_name, sinks
        self.started = time.monotonic()
        self.identity = bundle_identity(bundle)
        self.swap: Any = None  # the run's edge.swap.BundleSwap, when it has one

    def follow(self, bundle: Bundle) -> None:
        """A bundle swapped in (edge.swap): the status names it from now on."""
        self.bundle, self.identity = bundle, bundle_identity(bundle)

    def __call__(self) -> dict:
        m = self.metrics
        sinks, dispatcher = self.sinks() if self.sinks is not None else ([], None)
        report = {
            "source": self.source_name(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "fps": round(self.observer.fps(), 2),
            "frames": m.frames,
            "inspected": self.observer.seq,
            "alerts": m.alerts,
            "dropped": m.dropped,
            "reopens": m.reopens,
            "skipped": m.skipped,
            "sink_errors": m.sink_errors,
            "backlog": backlogs(sinks, dispatcher),
            "disk": disk(self.out),
            "bundle": self.identity,
            "threshold": self.threshold(),
            "health": health(m),
        }
        if self.swap is not None:
            report["swap"] = {"swaps": self.swap.swaps, "rejected": self.swap.rejected, "last": self.swap.last}
        pulses = gpio_pulses(sinks)
        if pulses is not None:
            report["gpio_pulses"] = pulses
        return report
