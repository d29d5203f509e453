"""Real receivers for the sink tests: a mosquitto broker on loopback, a paho subscriber, and an
HTTP server that records (or refuses) webhook POSTs. Nothing here is mocked."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

import pytest

from edge.alert import Alert


@pytest.fixture(autouse=True)
def fresh_problem_log():
    """Sinks rate-limit repeated problem lines per process; each test starts with a clean slate."""
    from edge.sinks.base import reset_problems

    reset_problems()
    yield


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_alert(i: int, **kw) -> Alert:
    return Alert(
        source=kw.pop("source", "camera:0"),
        frame_index=i,
        score=kw.pop("score", 0.5 + i / 1000),
        threshold=kw.pop("threshold", 0.4),
        box=(1, 2, 3, 4),
        **kw,
    )


# --- MQTT -----------------------------------------------------------------------------------


def mosquitto_binary() -> Optional[str]:
    return shutil.which("mosquitto") or next(
        (
            p
            for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
            if os.path.exists(p)
        ),
        None,
    )


def require_mosquitto() -> str:
    binary = mosquitto_binary()
    if binary is None:
        reason = "mosquitto not installed (apt-get install -y mosquitto); the MQTT sink tests need a real broker"
        if os.environ.get("EDGE_REQUIRE_MOSQUITTO"):
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


class Mosquitto:
    """A broker on 127.0.0.1:port with persistence in `folder`, so a stop/start keeps QoS 1 sessions."""

    def __init__(self, binary: str, folder: Path, port: Optional[int] = None, extra: str = ""):
        """`extra`: more lines for mosquitto.conf (a bridge's `connection` section, queue limits)."""
        self.binary = binary
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Started as root, mosquitto would drop to user "mosquitto" and could not write its
            # persistence file into the test's folder; stay the user running the tests.
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            f"log_dest file {folder}/mosquitto.log\n" + extra
        )
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

        def accepting() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        if not wait_until(accepting, timeout, step=0.05):
            raise RuntimeError(f"mosquitto did not listen on {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class Subscriber:
    """A paho client with a persistent session (clean_session False, QoS 1): messages published
    while it is disconnected are kept for it by the broker."""

    def __init__(self, port: int, topic: str, client_id: str = "edge-test-subscriber", clean: bool = False):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("test subscriber could not subscribe")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def alert_ids(self, topic: str) -> list[str]:
        return [json.loads(p)["id"] for p in self.payloads(topic)]

    def retained(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, r in self.messages if t == topic and r]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- HTTP -------------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on 127.0.0.1: answers `fail_with` to the first `fail_first` POSTs, then 200;
    each answer `delay_s` after the request was taken (a slow receiver)."""

    def __init__(
        self,
        port: int = 0,
        fail_first: int = 0,
        fail_with: int = 503,
        reject_ids: frozenset = frozenset(),
        delay_s: float = 0.0,
    ):
        self.requests: list[dict] = []  # accepted ones: {"body": ..., "headers": ...}
        self.refused = 0
        self.fail_first = fail_first
        self.fail_with = fail_with
        self.reject_ids = reject_ids
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                data = json.loads(body)
                with receiver._lock:
                    if data["id"] in receiver.reject_ids:
                        status = 400
                    elif receiver.refused < receiver.fail_first:
                        receiver.refused += 1
                        status = receiver.fail_with
                    else:
                        receiver.requests.append({"body": data, "headers": dict(self.headers)})
                        status = 200
                if delay_s:
                    time.sleep(delay_s)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def ids(self) -> list[str]:
        with self._lock:
            return [r["body"]["id"] for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
