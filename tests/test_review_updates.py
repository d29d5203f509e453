"""A verdict given on the page goes on through the sinks as a review update, never as a new alert:
a real `edge run --web` on a video, a real mosquitto, a real HTTP receiver (loopback only), GPIO on
gpiozero's mock pins; and the journal and outbox files from before reviews still replay."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from cli_helpers import run_edge_in_process
from sinks_helpers import Mosquitto, Receiver, Subscriber, make_alert, require_mosquitto, wait_until
from web_station import start_station

from edge.alert import Alert, ReviewUpdate

pytest.importorskip("starlette")


def _reviews(payloads: list[bytes]) -> list[dict]:
    return [d for d in map(json.loads, payloads) if d.get("type") == "review"]


def test_a_review_reaches_mqtt_and_the_webhook_and_never_pulses_the_gate(tmp_path, monkeypatch):
    pytest.importorskip("gpiozero")
    broker = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    receiver = Receiver()
    sub = Subscriber(broker.port, "line/#", client_id="t-review", clean=True)
    config = tmp_path / "sinks.yaml"
    config.write_text(
        "sinks:\n  gpio: {pin: 17, pulse_ms: 5}\n"
        f"  mqtt: {{host: 127.0.0.1, port: {broker.port}, prefix: line, station: s1}}\n"
        f"  webhook: {{url: '{receiver.url}'}}\n"
    )
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    station = start_station(tmp_path / "station", ("--config", config))
    try:
        alert = station.wait_for(lambda: (station.json("/api/alerts?limit=1", token=None)[1]["alerts"] or [0])[0])
        body = {"verdict": "real_defect", "defect": "crack", "who": "ann"}
        status, record = station.json(f"/api/alerts/{alert['id']}/review", body)
        assert status == 200 and record["verdict"] == "real_defect"

        assert wait_until(lambda: _reviews(sub.payloads("line/s1/default/reviews")), timeout=15)
        review = _reviews(sub.payloads("line/s1/default/reviews"))[0]
        assert review["alert_id"] == alert["id"] and review["verdict"] == "real_defect"
        assert review["defect"] == "crack" and review["id"] != alert["id"]
        assert not sub.retained("line/s1/default/reviews")
        assert not _reviews(sub.payloads("line/s1/default/alerts"))  # never on the alerts topic

        assert wait_until(lambda: _reviews([json.dumps(r["body"]).encode() for r in receiver.requests]), timeout=15)
        posted = next(r for r in receiver.requests if r["body"].get("type") == "review")
        assert posted["body"]["alert_id"] == alert["id"] and posted["body"]["verdict"] == "real_defect"
        assert posted["headers"]["Idempotency-Key"] == posted["body"]["id"] == review["id"]

        def one_pulse_per_alert():  # a review that pulsed would leave pulses ahead of alerts for good
            s = station.json("/api/status", token=None)[1]
            return s["alerts"] > 0 and s["gpio_pulses"] == s["alerts"]

        station.wait_for(one_pulse_per_alert, timeout=10, every=0.05)
        line = json.loads((station.out / "reviews.jsonl").read_text().splitlines()[-1])
        assert line == review  # one format: the file, MQTT and the webhook

        result = run_edge_in_process("events", "--db", station.out / "events.db", "--json", "-n", "0")
        rows = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
        assert rows[alert["id"]]["review"]["verdict"] == "real_defect"
        assert rows[alert["id"]]["review"]["defect"] == "crack"
        table = run_edge_in_process("events", "--db", station.out / "events.db", "-n", "0").stdout
        assert "verdict" in table and "defect: crack" in table
    finally:
        err = station.stop()
        sub.close()
        receiver.stop()
        broker.stop()
    assert "failed on review" not in err


def test_only_sinks_that_take_reviews_get_them(tmp_path):
    pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory

    from edge.sinks.console import ConsoleSink
    from edge.sinks.dispatch import AlertDispatcher
    from edge.sinks.gpio import GpioSink
    from edge.sinks.jsonl import JsonlSink

    stdout = io.StringIO()
    gpio = GpioSink(17, pulse_ms=1, pin_factory=MockFactory())
    jsonl = JsonlSink(tmp_path / "events.jsonl")
    dispatcher = AlertDispatcher([ConsoleSink(stdout), jsonl, gpio], threaded=False)
    dispatcher.submit_review(ReviewUpdate(alert_id="a1", verdict="false_alarm", who="ann"))
    line = json.loads(stdout.getvalue())
    assert line["type"] == "review" and line["alert_id"] == "a1" and line["verdict"] == "false_alarm"
    assert gpio.pulses == 0 and (tmp_path / "events.jsonl").read_text() == ""
    gpio.close()
    jsonl.close()


OLD_JOURNAL = """
CREATE TABLE alerts (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, payload TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE pending (seq INTEGER NOT NULL, sink TEXT NOT NULL, PRIMARY KEY (seq, sink)) WITHOUT ROWID;
"""


def test_a_journal_from_before_reviews_replays_and_reviews_replay_to_their_sinks(tmp_path):
    from edge.sinks.journal import AlertJournal

    path = tmp_path / "journal.db"
    old = make_alert(1)
    with sqlite3.connect(path) as db:
        db.executescript(OLD_JOURNAL)
        db.execute(
            "INSERT INTO alerts (alert_id, payload, created) VALUES (?, ?, 0)", (old.id, json.dumps(old.to_dict()))
        )
        db.execute("INSERT INTO pending VALUES (1, 'webhook'), (1, 'sqlite')")
    journal = AlertJournal(path, ["webhook", "sqlite"], review_sinks=["webhook"])
    review = ReviewUpdate(alert_id=old.id, verdict="false_alarm")
    journal.record([review])
    (s1, first, sinks1), (s2, second, sinks2) = journal.backlog()
    assert isinstance(first, Alert) and first.id == old.id and sinks1 == {"webhook", "sqlite"}
    assert isinstance(second, ReviewUpdate) and second == review and sinks2 == {"webhook"}
    journal.done([(s1, "webhook"), (s1, "sqlite"), (s2, "webhook")])
    assert journal.backlog() == []
    journal.close()


def test_an_outbox_from_before_reviews_is_read_as_alerts(tmp_path):
    from edge.sinks.outbox import Outbox

    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, "
            "payload TEXT NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute("INSERT INTO outbox (alert_id, payload, created) VALUES ('a1', '{}', 0)")
    outbox = Outbox(path)
    outbox.put("r1", "{}", kind="review")
    first = outbox.peek()
    assert (first.alert_id, first.kind) == ("a1", "alert")
    outbox.delete(first)
    assert (outbox.peek().alert_id, outbox.peek().kind) == ("r1", "review")
    outbox.close()
