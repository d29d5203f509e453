"""The metrics line on stderr and the Prometheus endpoint, scraped over loopback HTTP."""

from __future__ import annotations

import socket
import urllib.request
from types import SimpleNamespace

import pytest

from edge.errors import EdgeError
from edge.metrics import Metrics, MetricsConfig


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def busy_metrics(clock, **config) -> Metrics:
    lines: list[str] = []
    m = Metrics(MetricsConfig(**config), log=lines.append, clock=clock)
    m.lines = lines  # type: ignore[attr-defined]
    m.source = SimpleNamespace(dropped=7, reopens=2, skipped=1)
    m.threshold = 0.25
    return m


def test_metrics_line_reports_rate_counts_and_latency_percentiles():
    clock = Clock()
    m = busy_metrics(clock, every_seconds=10)
    for i in range(100):
        m.observe("model", (i + 1) / 1000)  # 1 .. 100 ms
        m.observe("preprocess", 0.002)
        m.frame_done(0.1)
    m.alerts = 3
    clock.now += 10
    assert m.tick() is True
    line = m.lines[0]
    assert line.startswith("metrics: 10.0 fps | frames 100 dropped 7 skipped 1 reopens 2 alerts 3")
    assert "preprocess 2.00/2.00/2.00" in line
    assert "model 50.50/95.05/99.01" in line  # p50/p95/p99 of 1..100 ms


def test_the_line_comes_every_n_seconds_and_covers_only_its_interval():
    clock = Clock()
    m = busy_metrics(clock, every_seconds=5)
    m.observe("model", 0.100)
    m.frame_done(0.1)
    clock.now += 4.9
    assert m.tick() is False
    clock.now += 0.2
    assert m.tick() is True
    m.observe("model", 0.010)
    m.frame_done(0.1)
    m.frame_done(0.1)
    clock.now += 5
    m.tick()
    assert "model 10.00/10.00/10.00" in m.lines[1]  # the 100 ms sample belongs to the first line
    assert m.lines[1].startswith("metrics: 0.4 fps | frames 3")


def test_metrics_line_off():
    clock = Clock()
    m = busy_metrics(clock, every_seconds=0)
    clock.now += 1e6
    assert m.tick() is False and m.lines == []


def test_percentiles_after_the_ring_buffer_wraps():
    m = Metrics(window=8)
    for i in range(20):
        m.observe("score", float(i))
    assert list(m.percentiles("score", 0, qs=(0, 100))) == [12.0, 19.0]  # only the last 8 are kept


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        return response.read().decode()


def test_prometheus_endpoint_serves_the_run_on_loopback():
    clock = Clock()
    m = busy_metrics(clock, prometheus_port=0)  # 0: any free port
    port = m.serve()
    try:
        assert m._server.server_address[0] == "127.0.0.1"  # not on the plant network by default
        for _ in range(4):
            m.observe("model", 0.02)
            m.frame_done(0.125)
        m.alerts = 1
        text = scrape(port)
        assert "edge_frames_total 4.0" in text
        assert "edge_alerts_total 1.0" in text
        assert "edge_dropped_frames_total 7.0" in text
        assert "edge_source_reopens_total 2.0" in text
        assert "edge_last_score 0.125" in text
        assert "edge_threshold 0.25" in text
        assert 'edge_stage_seconds_count{stage="model"} 4.0' in text
        assert 'edge_stage_latency_seconds{quantile="0.99",stage="model"} 0.02' in text
        m.frame_done(0.5)
        assert "edge_frames_total 5.0" in scrape(port)  # live values at each scrape
    finally:
        m.close()


def test_prometheus_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        m = Metrics(MetricsConfig(prometheus_port=port))
        with pytest.raises(EdgeError, match=f"cannot serve Prometheus metrics on 127.0.0.1:{port}"):
            m.serve()


def test_no_endpoint_unless_asked():
    assert Metrics(MetricsConfig()).serve() is None


def test_metrics_config_refuses_unknown_keys():
    with pytest.raises(ValueError):
        MetricsConfig(every=5)
