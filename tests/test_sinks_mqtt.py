"""MQTT sink against a real mosquitto broker on loopback (started by the test, stopped and
restarted mid-run), with a real paho subscriber."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sinks_helpers import (  # noqa: F401 (fresh_problem_log: autouse fixture)
    Mosquitto,
    Subscriber,
    free_port,
    fresh_problem_log,
    make_alert,
    require_mosquitto,
    wait_until,
)

from edge.errors import EdgeError
from edge.sinks.mqtt import MqttSink

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(backoff_s=0.05, backoff_max_s=1.0, close_timeout_s=3.0, connect_timeout_s=5.0, station="s1")


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    yield b
    b.stop()


def test_alerts_are_published_qos1_not_retained_and_status_is_online_retained(broker, tmp_path):
    sub = Subscriber(broker.port, "line1/#", client_id="t-basic", clean=True)
    sink = MqttSink("127.0.0.1", tmp_path / "state", port=broker.port, prefix="line1", client_id="press-3", **FAST)
    try:
        alerts = [make_alert(i) for i in range(5)]
        for a in alerts:
            sink.emit(a)
        assert wait_until(lambda: len(sub.alert_ids("line1/s1/default/alerts")) == 5, 10)
        assert wait_until(lambda: sink.pending == 0, 5)
        assert sub.alert_ids("line1/s1/default/alerts") == [a.id for a in alerts]
        assert json.loads(sub.payloads("line1/s1/default/alerts")[0]) == alerts[0].to_dict()
        assert b"online" in sub.payloads("line1/s1/default/status")
        # Events are not retained: a subscriber arriving later gets the status, no old alert.
        late = Subscriber(broker.port, "line1/#", client_id="t-late", clean=True)
        assert wait_until(lambda: late.retained("line1/s1/default/status") == [b"online"], 5)
        assert late.payloads("line1/s1/default/alerts") == []
        late.close()
    finally:
        sink.close()
    # A clean stop says "offline" itself (the will is only for deaths).
    assert wait_until(lambda: sub.payloads("line1/s1/default/status")[-1:] == [b"offline"], 5)
    sub.close()


def test_broker_stopped_and_restarted_mid_run_loses_no_alert(broker, tmp_path, capsys):
    sub = Subscriber(broker.port, "plant/s1/default/alerts", client_id="t-outage")  # persistent QoS 1 session
    sink = MqttSink("127.0.0.1", tmp_path / "state", port=broker.port, prefix="plant", **FAST)
    alerts = [make_alert(i) for i in range(30)]
    try:
        for a in alerts[:10]:
            sink.emit(a)
        assert wait_until(lambda: len(set(sub.alert_ids("plant/s1/default/alerts"))) == 10, 10)

        broker.stop()
        assert wait_until(lambda: not sink.transport.connected.is_set(), 10)
        # Alerts keep coming while the broker is gone; emit must return at once (the pipeline never waits).
        emitter = threading.Thread(target=lambda: [sink.emit(a) for a in alerts[10:20]])
        emitter.start()
        emitter.join(10)
        assert not emitter.is_alive(), "emit() blocked while the broker was down"
        assert sink.pending >= 10

        broker.start()
        for a in alerts[20:]:
            sink.emit(a)
        # At least once: every id arrives; duplicates are allowed and removed by id.
        assert wait_until(lambda: set(sub.alert_ids("plant/s1/default/alerts")) == {a.id for a in alerts}, 30)
        assert wait_until(lambda: sink.pending == 0, 10)
    finally:
        sink.close()
        sub.close()
    err = capsys.readouterr().err
    assert "mqtt: lost 127.0.0.1" in err
    assert "mqtt: connected to" in err
    received = sub.alert_ids("plant/s1/default/alerts")
    # Order of first arrival follows emission order.
    assert list(dict.fromkeys(received)) == [a.id for a in alerts]


def test_last_will_offline_is_published_when_the_process_dies(broker, tmp_path):
    sub = Subscriber(broker.port, "cell/s1/default/status", client_id="t-will", clean=True)
    script = textwrap.dedent(f"""
        import sys, time
        from edge.sinks.mqtt import MqttSink
        sink = MqttSink("127.0.0.1", {str(tmp_path / "state")!r}, port={broker.port}, prefix="cell", station="s1")
        print("connected" if sink.transport.connected.is_set() else "not connected", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "connected"
        assert wait_until(lambda: b"online" in sub.payloads("cell/s1/default/status"), 10)
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: only the broker can tell
        proc.wait(10)
        assert wait_until(lambda: sub.payloads("cell/s1/default/status")[-1:] == [b"offline"], 10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
    late = Subscriber(broker.port, "cell/s1/default/status", client_id="t-will-late", clean=True)
    try:
        assert wait_until(lambda: late.retained("cell/s1/default/status") == [b"offline"], 5)  # retained
    finally:
        late.close()


def test_unreachable_broker_at_start_warns_and_queues_then_delivers(tmp_path, capsys):
    binary = require_mosquitto()
    port = free_port()
    sink = MqttSink("127.0.0.1", tmp_path / "state", port=port, prefix="late", **FAST)
    broker = None
    try:
        err = capsys.readouterr().err
        assert "warning: MQTT broker 127.0.0.1:" in err and "unreachable at start" in err and "alerts queue in" in err
        alerts = [make_alert(i) for i in range(3)]
        for a in alerts:
            sink.emit(a)
        assert sink.pending == 3
        broker = Mosquitto(binary, tmp_path / "broker", port=port)
        # The subscriber's session must exist before the alerts are published.
        broker.start()
        sub = Subscriber(port, "late/s1/default/alerts", client_id="t-late-start", clean=True)
        # paho retries with a growing delay; the queued alerts go out once it reconnects.
        assert wait_until(lambda: set(sub.alert_ids("late/s1/default/alerts")) == {a.id for a in alerts}, 30)
        sub.close()
    finally:
        sink.close()
        if broker is not None:
            broker.stop()


def test_required_broker_unreachable_at_start_is_one_clear_error(tmp_path):
    port = free_port()
    with pytest.raises(EdgeError, match=r"MQTT broker 127\.0\.0\.1:\d+ unreachable at start .*required is true"):
        MqttSink("127.0.0.1", tmp_path / "state", port=port, required=True, connect_timeout_s=3)


def test_undelivered_alerts_are_sent_after_a_restart(broker, tmp_path):
    port = broker.port
    broker.stop()
    first = MqttSink("127.0.0.1", tmp_path / "state", port=port, prefix="r", **{**FAST, "close_timeout_s": 0.2})
    alerts = [make_alert(i) for i in range(4)]
    for a in alerts:
        first.emit(a)
    first.close()
    broker.start()
    sub = Subscriber(port, "r/s1/default/alerts", client_id="t-restart", clean=True)
    second = MqttSink("127.0.0.1", tmp_path / "state", port=port, prefix="r", **FAST)
    try:
        assert wait_until(lambda: sub.alert_ids("r/s1/default/alerts") == [a.id for a in alerts], 10)
    finally:
        second.close()
        sub.close()


def test_mqtt_password_comes_from_the_environment(tmp_path, monkeypatch):
    from edge.config import SinksConfig
    from edge.sinks.factory import build_sinks

    config = SinksConfig.model_validate({"mqtt": {"host": "127.0.0.1", "password_env": "EDGE_TEST_NO_SUCH_VAR"}})
    monkeypatch.delenv("EDGE_TEST_NO_SUCH_VAR", raising=False)
    with pytest.raises(
        EdgeError, match="sinks.mqtt.password_env: environment variable EDGE_TEST_NO_SUCH_VAR is not set"
    ):
        build_sinks(config, tmp_path / "out", tmp_path / "state")
