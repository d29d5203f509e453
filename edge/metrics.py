"""Operational metrics: a periodic line on stderr and an optional Prometheus endpoint.

The line (every `every_seconds`) reads, e.g.:

  metrics: 29.7 fps | frames 1782 dropped 14 skipped 0 reopens 0 alerts 2 | ms p50/p95/p99
  preprocess 0.21/0.30/0.41 model 11.9/13.1/15.0 score 0.12/0.15/0.20 decide 0.01/0.02/0.02
  alert 0.00/0.00/0.00 total 12.4/13.8/16.1

fps and the latency percentiles are over the interval since the previous line; the counts are
totals since start. `total` is the time from the capture of a frame to its decision, including
the time it waited in the mailbox. With `prometheus_port` set, the same numbers are served at
http://127.0.0.1:PORT/metrics (prometheus-client, part of the `edge` extra).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Protocol

import numpy as np
from pydantic import Field

from edge.errors import EdgeError
from edge.messages import to_stderr
from edge.schema import StrictModel

STAGES = ("preprocess", "model", "score", "decide", "alert", "total")


class SourceCounts(Protocol):
    """The counts of a source the metrics report (edge.sources.FrameSource has them)."""

    dropped: int
    reopens: int
    skipped: int


class MetricsConfig(StrictModel):
    every_seconds: float = Field(60.0, ge=0, description="metrics line on stderr every N seconds; 0: off")
    prometheus_port: int | None = Field(None, ge=0, le=65535, description="serve /metrics on this port; None: off")
    # Loopback by default: exposing it on the plant network is a decision, not an accident.
    prometheus_host: str = Field("127.0.0.1", description="address the Prometheus endpoint binds to")


# -- implementation ----------------------------------------------------------------------------


class Metrics:
    """Counters and per-stage latencies of a run; the stderr line and the Prometheus view of them.

    Latencies go to fixed-size ring buffers (no allocation per frame); percentiles are computed
    only when a line is printed or the endpoint is scraped.
    """

    def __init__(
        self,
        config: Optional[MetricsConfig] = None,
        log: Optional[Callable[[str], None]] = None,
        window: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config or MetricsConfig()
        self._log = log or to_stderr
        self._clock = clock
        self._window = window
        self._lat = {s: np.zeros(window, np.float64) for s in STAGES}
        self._n = {s: 0 for s in STAGES}  # samples ever recorded per stage
        self._mark = {s: 0 for s in STAGES}  # sample count at the last line
        self._sum = {s: 0.0 for s in STAGES}
        self.frames = 0
        self.alerts = 0
        self.sink_errors = 0
        # Health and drift (edge.watch): events by kind and state, and the state in force.
        self.health_events: dict[tuple[str, str], int] = {}
        self.health_state: dict[str, str] = {"health": "ok", "drift": "ok"}
        self.last_score = float("nan")
        self.threshold = float("nan")
        self.source: Optional[SourceCounts] = None  # the source being run (edge.sources.FrameSource)
        self.started = clock()
        self._last_line = self.started
        self._frames_at_line = 0
        self._server = None
        self._lock = threading.Lock()

    # -- hot path -------------------------------------------------------------------------------
    def observe(self, stage: str, seconds: float) -> None:
        i = self._n[stage]
        self._lat[stage][i % self._window] = seconds
        self._n[stage] = i + 1
        self._sum[stage] += seconds

    def health_event(self, event) -> None:
        key = (event.kind, event.state)
        self.health_events[key] = self.health_events.get(key, 0) + 1
        self.health_state[event.kind] = event.state

    def frame_done(self, score: float) -> None:
        self.frames += 1
        self.last_score = score

    # -- counts from the source -----------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return int(self.source.dropped or 0) if self.source is not None else 0

    @property
    def reopens(self) -> int:
        return int(self.source.reopens or 0) if self.source is not None else 0

    @property
    def skipped(self) -> int:
        return int(self.source.skipped or 0) if self.source is not None else 0

    # -- reading ----------------------------------------------------------------------------------
    def percentiles(self, stage: str, since: int = 0, qs=(50, 95, 99)) -> Optional[np.ndarray]:
        """Latency percentiles in seconds over samples recorded after sample number `since`."""
        n = self._n[stage]
        count = min(n - since, self._window, n)
        if count <= 0:
            return None
        if n <= self._window:
            values = self._lat[stage][n - count : n]
        else:
            idx = np.arange(n - count, n) % self._window
            values = self._lat[stage][idx]
        return np.percentile(values, qs)

    def line(self, now: Optional[float] = None) -> str:
        """The metrics line for the interval since the previous one (and start a new interval)."""
        now = self._clock() if now is None else now
        span = max(now - self._last_line, 1e-9)
        fps = (self.frames - self._frames_at_line) / span
        parts = []
        for stage in STAGES:
            p = self.percentiles(stage, self._mark[stage])
            if p is not None:
                parts.append(f"{stage} " + "/".join(f"{1000 * v:.2f}" for v in p))
            self._mark[stage] = self._n[stage]
        self._last_line, self._frames_at_line = now, self.frames
        text = (
            f"metrics: {fps:.1f} fps | frames {self.frames} dropped {self.dropped} skipped {self.skipped} "
            f"reopens {self.reopens} alerts {self.alerts}"
        )
        if self.sink_errors:
            text += f" sink-errors {self.sink_errors}"
        if parts:
            text += " | ms p50/p95/p99 " + " ".join(parts)
        return text

    def tick(self, now: Optional[float] = None) -> bool:
        """Print the line when it is due; True when it printed."""
        every = self.config.every_seconds
        if every <= 0:
            return False
        now = self._clock() if now is None else now
        if now - self._last_line < every:
            return False
        self._log(self.line(now))
        return True

    # -- Prometheus ----------------------------------------------------------------------------
    def serve(self) -> Optional[int]:
        """Start the Prometheus endpoint if configured; the port it listens on (None when off)."""
        port = self.config.prometheus_port
        if port is None:
            return None
        self._server = serve_collector(self.config, _Collector(self))
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def serve_collector(config: MetricsConfig, collector):
    """Serve `collector` at http://HOST:PORT/metrics (config.prometheus_host/port); the server, to close."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise EdgeError(
            "the Prometheus endpoint needs prometheus-client: pip install 'edge-inspect[edge]' "
            "(or drop --prometheus-port)"
        ) from None
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    try:
        server, _thread = start_http_server(config.prometheus_port, addr=config.prometheus_host, registry=registry)
    except OSError as exc:
        raise EdgeError(
            f"cannot serve Prometheus metrics on {config.prometheus_host}:{config.prometheus_port} "
            f"({exc.strerror or exc}); pick another --prometheus-port"
        ) from None
    return server


class ByInspection:
    """Several runs' metrics on one endpoint (edge/inspections.py): each sample labelled `inspection`."""

    def __init__(self, runs: dict[str, Metrics]):
        self.collectors = {name: _Collector(metrics) for name, metrics in runs.items()}

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.metrics_core import Metric

        merged: dict[str, Metric] = {}
        for name, collector in self.collectors.items():
            for family in collector.collect():
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                out.samples.extend(s._replace(labels={**s.labels, "inspection": name}) for s in family.samples)
        yield from merged.values()


class _Collector:
    """Reads the Metrics object at scrape time: nothing is done per frame for Prometheus."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        m = self.m
        yield CounterMetricFamily("edge_frames", "Frames inspected", value=m.frames)
        yield CounterMetricFamily("edge_alerts", "Alerts raised", value=m.alerts)
        yield CounterMetricFamily(
            "edge_dropped_frames", "Frames dropped because the model was busy (latest-frame mode)", value=m.dropped
        )
        yield CounterMetricFamily("edge_source_reopens", "Times the watchdog reopened the source", value=m.reopens)
        yield CounterMetricFamily("edge_skipped_frames", "Unreadable images skipped", value=m.skipped)
        yield CounterMetricFamily("edge_sink_errors", "Alerts a sink failed to take", value=m.sink_errors)
        events = CounterMetricFamily(
            "edge_health_events", "Changes of state of the picture (health) or scores (drift)", labels=["type", "state"]
        )
        for (kind, state), count in m.health_events.items():
            events.add_metric([kind, state], count)
        yield events
        unhealthy = GaugeMetricFamily("edge_unhealthy", "1 while the picture or the scores are not ok", labels=["type"])
        for kind, state in m.health_state.items():
            unhealthy.add_metric([kind], float(state != "ok"))
        yield unhealthy
        yield GaugeMetricFamily("edge_last_score", "Score of the last inspected frame", value=m.last_score)
        yield GaugeMetricFamily("edge_threshold", "Alert threshold of the bundle", value=m.threshold)
        yield GaugeMetricFamily("edge_uptime_seconds", "Seconds since the run started", value=m._clock() - m.started)
        summary = SummaryMetricFamily(
            "edge_stage_seconds", "Per-stage latency (quantiles over the last frames)", labels=["stage"]
        )
        quantiles = GaugeMetricFamily(
            "edge_stage_latency_seconds",
            "Per-stage latency quantile over the last frames",
            labels=["stage", "quantile"],
        )
        for stage in STAGES:
            summary.add_metric([stage], count_value=m._n[stage], sum_value=m._sum[stage])
            p = m.percentiles(stage, 0)
            if p is not None:
                for q, v in zip(("0.5", "0.95", "0.99"), p, strict=True):
                    quantiles.add_metric([stage, q], float(v))
        yield summary
        yield quantiles
