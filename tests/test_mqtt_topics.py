"""The topic tree a plant subscribes to: <prefix>/<station>/<inspection>/{alerts,status,health,metrics},
against a real mosquitto on loopback; and the names a topic level cannot take."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import pytest
from pydantic import ValidationError
from sinks_helpers import (  # noqa: F401 (fresh_problem_log: autouse fixture)
    Mosquitto,
    Subscriber,
    fresh_problem_log,
    make_alert,
    require_mosquitto,
    wait_until,
)

from edge.config import SinksConfig
from edge.metrics import Metrics, MetricsConfig
from edge.sinks.mqtt import MqttSink

FAST = dict(backoff_s=0.05, backoff_max_s=1.0, close_timeout_s=3.0, connect_timeout_s=5.0)


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    yield b
    b.stop()


def running_inspection(frames: int, alerts: int, score: float, threshold: float):
    """What the sinks read of a running pipeline: its real Metrics, its threshold and bundle."""
    metrics = Metrics(MetricsConfig(every_seconds=0))
    metrics.frames, metrics.alerts, metrics.last_score = frames, alerts, score
    return SimpleNamespace(
        metrics=metrics,
        threshold=SimpleNamespace(value=threshold),
        bundle=SimpleNamespace(id="b-1234", version=3),
    )


def test_every_message_lives_under_station_and_inspection(broker, tmp_path):
    sub = Subscriber(broker.port, "plant/#", client_id="t-tree", clean=True)
    sink = MqttSink(
        "127.0.0.1",
        tmp_path / "state",
        port=broker.port,
        prefix="plant",
        station="press-3",
        inspection="top-cam",
        metrics_every_s=0.2,
        **FAST,
    )
    try:
        sink.bind_run(running_inspection(frames=120, alerts=2, score=7.5, threshold=5.0))
        alert = make_alert(1)
        sink.emit(alert)
        base = "plant/press-3/top-cam"
        assert wait_until(lambda: sub.alert_ids(f"{base}/alerts") == [alert.id], 10)
        assert sub.retained(f"{base}/status") == [b"online"] or b"online" in sub.payloads(f"{base}/status")
        assert wait_until(lambda: sub.payloads(f"{base}/metrics"), 10)
        metrics = json.loads(sub.payloads(f"{base}/metrics")[-1])
        assert metrics["frames"] == 120 and metrics["alerts"] == 2
        assert metrics["last_score"] == 7.5 and metrics["threshold"] == 5.0 and metrics["defect"] is True
        assert metrics["bundle_id"] == "b-1234" and metrics["bundle_version"] == 3
        assert {"time", "fps", "dropped", "health", "drift"} <= set(metrics)
        # Nothing is published outside the station's branch.
        assert all(t.startswith(base + "/") for t, _, _ in sub.messages)
    finally:
        sink.close()
        sub.close()


def test_station_defaults_to_the_host_name_and_inspection_to_default(broker, tmp_path):
    sink = MqttSink("127.0.0.1", tmp_path / "state", port=broker.port, prefix="p", metrics_every_s=0, **FAST)
    try:
        host = socket.gethostname().split(".")[0]
        assert sink.transport.alerts_topic == f"p/{host}/default/alerts"
    finally:
        sink.close()


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("station", "line/1", "'/'"),
        ("station", "press#3", "'#'"),
        ("inspection", "+", "'+'"),
        ("inspection", "top cam", "spaces"),
        ("station", "", "must not be empty"),
    ],
)
def test_a_name_that_cannot_be_a_topic_level_is_refused(key, value, says):
    with pytest.raises(ValidationError) as info:
        SinksConfig.model_validate({"mqtt": {"host": "127.0.0.1", key: value}})
    assert says in str(info.value) and key in str(info.value)


# --- Home Assistant discovery -----------------------------------------------------------------


def test_home_assistant_finds_each_inspection_from_retained_configs(broker, tmp_path):
    from edge.config import MqttConfig
    from edge.sinks.factory import _mqtt_sink

    config = MqttConfig(
        host="127.0.0.1",
        port=broker.port,
        prefix="plant",
        station="press-3",
        inspection="top",
        home_assistant=True,
        discovery_prefix="ha",
        metrics_every_s=0.2,
        **{k: v for k, v in FAST.items() if k != "connect_timeout_s"},
    )
    sink, _ = _mqtt_sink(config, tmp_path / "state")
    try:
        sink.bind_run(running_inspection(frames=10, alerts=0, score=1.25, threshold=5.0))
        assert wait_until(lambda: sink.transport.connected.is_set(), 5)
        # Home Assistant starting later: a new subscriber gets the configs because they are retained.
        ha = Subscriber(broker.port, "ha/#", client_id="t-ha", clean=True)
        assert wait_until(lambda: len({t for t, _, r in ha.messages if r}) == 4, 10)
        configs = {t: json.loads(p) for t, p, r in ha.messages if r}
        node = "edge_inspect_press-3_top"
        defect = configs[f"ha/binary_sensor/{node}/defect/config"]
        assert {f"ha/sensor/{node}/{x}/config" for x in ("score", "fps", "alerts")} <= set(configs)
        for payload in configs.values():
            assert {"unique_id", "state_topic", "availability", "device"} <= set(payload)
            assert payload["availability"] == [
                {"topic": "plant/press-3/top/status", "payload_available": "online", "payload_not_available": "offline"}
            ]
            assert payload["device"]["identifiers"] == [node]
        assert len({p["unique_id"] for p in configs.values()}) == 4
        assert defect["state_topic"] == "plant/press-3/top/alerts" and defect["device_class"] == "problem"
        score = configs[f"ha/sensor/{node}/score/config"]
        assert score["state_topic"] == "plant/press-3/top/metrics"
        # The field the template reads is in the metrics the sink publishes.
        state = Subscriber(broker.port, score["state_topic"], client_id="t-ha-state", clean=True)
        assert wait_until(lambda: state.payloads(score["state_topic"]), 10)
        assert json.loads(state.payloads(score["state_topic"])[-1])["last_score"] == 1.25
        state.close()
        ha.close()
    finally:
        sink.close()


def test_home_assistant_without_metrics_is_refused():
    with pytest.raises(ValidationError, match="home_assistant needs metrics_every_s > 0"):
        SinksConfig.model_validate({"mqtt": {"host": "h", "home_assistant": True, "metrics_every_s": 0}})
