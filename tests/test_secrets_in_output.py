"""No secret in anything `edge run` shows or stores, with the real parts: a real `edge run`
subprocess reading an HTTP video stream whose URL carries credentials (userinfo and ?user=&pwd=),
alerting to JSONL, SQLite, a webhook whose URL carries user:pass and ?token=, and a real mosquitto.
Every output is searched for the secret strings: stdout, stderr, every file under OUT (events,
outboxes, journal), what the webhook receiver and the MQTT subscriber got."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from pathlib import Path

import cv2
import pytest
from cli_helpers import REPO, run_edge
from sinks_helpers import (  # noqa: F401 (fresh_problem_log: autouse fixture)
    Mosquitto,
    Receiver,
    Subscriber,
    free_port,
    fresh_problem_log,
    mosquitto_binary,
    wait_until,
)

DEMO = REPO / "edge" / "demo"
SECRETS = ("cam-user", "cam-pass", "pwd-secret", "hook-user", "hook-pass", "tok-secret")


@pytest.fixture(scope="module")
def demo_stream(tmp_path_factory):
    """The demo's tiles (good and defective) as an MJPG .avi served over HTTP on 127.0.0.1."""
    video = tmp_path_factory.mktemp("stream") / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256), True)
    for path in sorted((DEMO / "images").glob("*.jpg")):
        writer.write(cv2.resize(cv2.imread(str(path)), (256, 256)))
    writer.release()
    data = video.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def leaks(texts: dict[str, str]) -> list[str]:
    return [f"{secret} in {where}" for where, text in texts.items() for secret in SECRETS if secret in text]


def files_under(folder: Path) -> dict[str, str]:
    """Every non-image file under `folder` as text (SQLite files and their WAL included)."""
    return {
        str(p): p.read_bytes().decode("latin-1")
        for p in folder.rglob("*")
        if p.is_file() and p.suffix not in (".png", ".jpg")
    }


def test_no_secret_in_any_output_of_a_run(demo_stream, tmp_path):
    broker = Mosquitto(mosquitto_binary(), tmp_path / "broker").start() if mosquitto_binary() else None
    subscriber = Subscriber(broker.port, "line/#", client_id="t-secrets", clean=True) if broker else None
    receiver = Receiver(fail_first=2)  # two failed deliveries: the failure lines name the URL
    stream = f"http://cam-user:cam-pass@127.0.0.1:{demo_stream}/line.avi?user=cam-user&pwd=pwd-secret&ch=1"
    hook = f"http://hook-user:hook-pass@127.0.0.1:{receiver.port}/alerts?token=tok-secret"
    mqtt = f"  mqtt: {{host: 127.0.0.1, port: {broker.port}, prefix: line, station: s1, backoff_s: 0.05}}\n"
    mqtt = mqtt if broker else ""
    config = tmp_path / "edge.yaml"
    config.write_text(
        f'bundle: {DEMO / "bundle"}\nsource:\n  url: "{stream}"\n  mode: every\nout: {tmp_path / "out"}\n'
        f'sinks:\n  jsonl: {{}}\n  sqlite: {{}}\n  webhook: {{url: "{hook}", backoff_s: 0.05}}\n{mqtt}'
    )
    try:
        proc = run_edge("run", "--config", config, "--max-frames", 40, "--duration", 60, timeout=120)
        assert proc.returncode == 0, proc.stderr
        alerts = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        assert alerts, "the defective tiles should raise alerts"
        wait_until(lambda: len(receiver.requests) >= len(alerts), timeout=10)
        if subscriber:
            wait_until(lambda: len(subscriber.payloads("line/s1/default/alerts")) >= len(alerts), timeout=10)
        texts = {"stdout": proc.stdout, "stderr": proc.stderr, **files_under(tmp_path / "out")}
        texts["webhook"] = json.dumps([r["body"] for r in receiver.requests])
        texts["mqtt"] = repr(subscriber.messages) if subscriber else ""
    finally:
        receiver.stop()
        if subscriber:
            subscriber.close()
        if broker:
            broker.stop()

    assert leaks(texts) == []
    # still clear which camera and which receiver a line is about
    assert alerts[0]["source"] == f"http://***@127.0.0.1:{demo_stream}/line.avi?user=***&pwd=***&ch=1"
    assert f"webhook http://***@127.0.0.1:{receiver.port}/alerts?token=***" in proc.stderr
    # user:pass in the webhook URL is sent as HTTP basic auth, and the alerts arrive
    assert len(receiver.requests) == len(alerts)
    basic = base64.b64encode(b"hook-user:hook-pass").decode()
    assert receiver.requests[0]["headers"]["Authorization"] == f"Basic {basic}"


def test_no_secret_when_a_stream_cannot_be_opened(tmp_path):
    """A camera that is down: every failed open and reopen line, and the final error, without credentials."""
    port = free_port()
    url = f"rtsp://cam-user:cam-pass@127.0.0.1:{port}/line1?token=tok-secret"
    config = tmp_path / "edge.yaml"
    config.write_text(
        f'bundle: {DEMO / "bundle"}\nsource:\n  url: "{url}"\n'
        "  watchdog: {open_timeout_ms: 500, backoff_initial: 0.1, backoff_max: 0.2, max_reopens: 2}\n"
        f"out: {tmp_path / 'out'}\n"
    )
    proc = run_edge("run", "--config", config, "--duration", 10, timeout=60)
    assert proc.returncode != 0
    assert f"rtsp://***@127.0.0.1:{port}/line1?token=***" in proc.stderr
    assert leaks({"stdout": proc.stdout, "stderr": proc.stderr}) == []
