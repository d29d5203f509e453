"""Webhook sink against a real HTTP server on loopback, and the durable outbox under it."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
from sinks_helpers import Receiver, free_port, fresh_problem_log, make_alert, wait_until  # noqa: F401 (autouse fixture)

from edge.sinks.outbox import Outbox
from edge.sinks.webhook import WebhookSink

FAST = dict(backoff_s=0.02, backoff_max_s=0.2, close_timeout_s=2.0, timeout_s=2.0)


def test_alerts_arrive_as_json_posts_with_id_headers_and_env_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "Bearer s3cret")
    receiver = Receiver()
    from edge.config import SinksConfig
    from edge.sinks.factory import build_sinks

    config = SinksConfig.model_validate(
        {
            "stdout": False,
            "jsonl": False,
            "sqlite": False,
            "snapshots": False,
            "webhook": {
                "url": receiver.url,
                "headers": {"X-Line": "press-3"},
                "headers_env": {"Authorization": "HOOK_TOKEN"},
            },
        }
    )
    built = build_sinks(config, tmp_path / "out", tmp_path / "state")
    try:
        alerts = [make_alert(i) for i in range(3)]
        for a in alerts:
            built.group.emit(a)
        assert wait_until(lambda: len(receiver.ids()) == 3, 10)
    finally:
        built.close()
        receiver.stop()
    assert receiver.ids() == [a.id for a in alerts]  # in order
    first = receiver.requests[0]
    assert first["body"] == alerts[0].to_dict()
    assert first["headers"]["Authorization"] == "Bearer s3cret"
    assert first["headers"]["X-Line"] == "press-3"
    assert first["headers"]["Idempotency-Key"] == alerts[0].id
    assert first["headers"]["Content-Type"] == "application/json"


def test_failing_receiver_503_then_ok_gets_every_alert_in_order(tmp_path):
    receiver = Receiver(fail_first=4, fail_with=503)
    sink = WebhookSink(receiver.url, tmp_path, **FAST)
    try:
        alerts = [make_alert(i) for i in range(5)]
        for a in alerts:
            sink.emit(a)
        assert wait_until(lambda: len(receiver.ids()) == 5, 15)
    finally:
        sink.close()
        receiver.stop()
    assert receiver.refused == 4
    assert receiver.ids() == [a.id for a in alerts]
    assert sink.pending == 0


def test_receiver_down_then_up_delivers_everything_and_emit_never_blocks(tmp_path, capsys):
    port = free_port()  # nothing listens yet: connection refused
    sink = WebhookSink(f"http://127.0.0.1:{port}/alerts", tmp_path, **FAST)
    alerts = [make_alert(i) for i in range(20)]
    emitter = threading.Thread(target=lambda: [sink.emit(a) for a in alerts])
    emitter.start()
    emitter.join(10)
    assert not emitter.is_alive(), "emit() blocked while the receiver was down"
    assert wait_until(lambda: sink.failures >= 2, 10)
    assert sink.pending == 20
    receiver = Receiver(port=port)
    try:
        assert wait_until(lambda: len(receiver.ids()) == 20, 15)
    finally:
        sink.close()
        receiver.stop()
    assert receiver.ids() == [a.id for a in alerts]
    err = capsys.readouterr().err
    assert "webhook: delivery failed" in err and "retrying" in err
    # rate-limited: a retry storm is not a log storm
    assert err.count("webhook: delivery failed") <= 2


def test_undelivered_alerts_survive_a_restart(tmp_path, capsys):
    port = free_port()
    url = f"http://127.0.0.1:{port}/alerts"
    first = WebhookSink(url, tmp_path, **{**FAST, "close_timeout_s": 0.2})
    alerts = [make_alert(i) for i in range(6)]
    for a in alerts:
        first.emit(a)
    first.close()  # the "process" stops with nothing delivered
    assert "6 alerts not delivered yet" in capsys.readouterr().err
    assert len(Outbox(tmp_path / "outbox-webhook.db")) == 6

    receiver = Receiver(port=port)
    second = WebhookSink(url, tmp_path, **FAST)  # the restarted process, same state dir
    try:
        assert "6 undelivered alerts from before this start" in capsys.readouterr().err
        assert wait_until(lambda: len(receiver.ids()) == 6, 10)
    finally:
        second.close()
        receiver.stop()
    assert receiver.ids() == [a.id for a in alerts]
    assert second.pending == 0


def test_a_payload_the_receiver_rejects_for_good_is_set_aside_not_retried_forever(tmp_path, capsys):
    alerts = [make_alert(i) for i in range(3)]
    receiver = Receiver(reject_ids=frozenset({alerts[1].id}))
    sink = WebhookSink(receiver.url, tmp_path, **FAST)
    try:
        for a in alerts:
            sink.emit(a)
        assert wait_until(lambda: len(receiver.ids()) == 2, 10)
        assert wait_until(lambda: sink.pending == 0, 5)
        assert sink.outbox.dead_count() == 1
    finally:
        sink.close()
        receiver.stop()
    assert receiver.ids() == [alerts[0].id, alerts[2].id]
    assert "rejected for good" in capsys.readouterr().err
    with sqlite3.connect(tmp_path / "outbox-webhook.db") as db:
        assert db.execute("SELECT alert_id, reason FROM dead").fetchall()[0][0] == alerts[1].id


def test_full_outbox_drops_the_oldest_loudly(tmp_path, capsys):
    box = Outbox(tmp_path / "o.db", max_entries=5, label="webhook")
    for i in range(8):
        box.put(f"id{i}", "{}")
    assert len(box) == 5
    assert box.peek().alert_id == "id3"  # id0..id2 dropped, oldest first
    assert box.dropped == 3
    assert "ALERTS DROPPED" in capsys.readouterr().err
    box.close()


def test_outbox_keeps_order_across_reopen_and_deletes_only_what_was_acknowledged(tmp_path):
    box = Outbox(tmp_path / "o.db")
    for i in range(4):
        box.put(f"id{i}", f'{{"n": {i}}}')
    entry = box.peek()
    box.delete(entry)
    box.close()
    box = Outbox(tmp_path / "o.db")
    assert [box.peek().alert_id] == ["id1"]
    assert len(box) == 3
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    box.close()


def test_a_receiver_slower_than_the_timeout_is_said_plainly(tmp_path):
    """A receiver that answers after timeout_s is never acknowledged (the fault suite's slow receiver):
    the delivery error says so and names the setting, instead of a bare 'timed out'."""
    import socket

    from edge.sinks.outbox import Entry
    from edge.sinks.webhook import WebhookTransport

    slow = socket.socket()  # accepts the connection, never answers within the timeout
    slow.bind(("127.0.0.1", 0))
    slow.listen(4)
    try:
        transport = WebhookTransport(f"http://user:secret@127.0.0.1:{slow.getsockname()[1]}/hook", timeout_s=0.3)
        alert = make_alert(0)
        with pytest.raises(ConnectionError) as caught:
            transport.send(Entry(1, alert.id, json.dumps(alert.to_dict())))
        message = str(caught.value)
        assert "no answer within 0.3 s" in message and "sinks.webhook.timeout_max_s" in message
        assert "secret" not in message
    finally:
        slow.close()


def test_a_receiver_slower_than_the_timeout_gets_every_alert(tmp_path, capsys):
    """Before: a receiver answering after timeout_s was never acknowledged; the outbox re-sent its
    first alert for ever and the rest waited. Now each unanswered request doubles the wait (up to
    timeout_max_s): every alert is delivered, in order of first arrival, repeats only with the same id."""
    receiver = Receiver(delay_s=0.35)
    sink = WebhookSink(receiver.url, tmp_path, timeout_s=0.1, timeout_max_s=2.0, backoff_s=0.02, backoff_max_s=0.1)
    alerts = [make_alert(i) for i in range(4)]
    try:
        for a in alerts:
            sink.emit(a)
        assert wait_until(lambda: sink.pending == 0, 20)
    finally:
        sink.close()
        receiver.stop()
    got = receiver.ids()
    assert list(dict.fromkeys(got)) == [a.id for a in alerts]
    assert sink.transport.wait_s > 0.35  # it learned to wait for this receiver
    assert "no answer within 0.1 s; waiting up to 0.2 s" in capsys.readouterr().err


def test_close_is_bounded_when_the_receiver_hangs(tmp_path):
    # A server that accepts the connection but never answers: the sink must still close.
    import socket

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    try:
        sink = WebhookSink(
            f"http://127.0.0.1:{hang.getsockname()[1]}/",
            tmp_path,
            backoff_s=0.05,
            backoff_max_s=0.1,
            close_timeout_s=0.3,
            timeout_s=0.5,
        )
        sink.emit(make_alert(0))
        closer = threading.Thread(target=sink.close)
        closer.start()
        closer.join(10)
        assert not closer.is_alive()
        assert len(Outbox(tmp_path / "outbox-webhook.db")) == 1  # kept for the next start
    finally:
        hang.close()


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com/hook", "http://"])
def test_bad_webhook_urls_are_refused_by_the_config(url):
    from pydantic import ValidationError

    from edge.config import WebhookConfig

    with pytest.raises(ValidationError):
        WebhookConfig(url=url)
