"""MQTT (paho-mqtt 2.x): each alert on `<prefix>/<station>/<inspection>/alerts` at QoS 1, through the
durable outbox. Below, `<base>` is `<prefix>/<station>/<inspection>` (edge.sinks.topics).

- `<base>/alerts`: one JSON alert per message, QoS 1, not retained (an alert is an event, a new
  subscriber must not get an old one as if it were new).
- `<base>/reviews`: an operator's verdict on an earlier alert (`"type": "review"`, its `alert_id`),
  QoS 1, not retained, through the same outbox: a verdict is an event too (a retained one per alert
  would pile up in the broker), and its own topic keeps a subscriber of alerts (a reject line, a
  counter) from taking it for a new alert.
- `<base>/health`: health and drift events, QoS 1, not retained, through the same outbox.
- `<base>/status`: "online" (retained) on every connect; the last will "offline" (retained) is
  published by the broker when this process dies or loses the network; a clean stop publishes
  "offline" itself.
- `<base>/metrics`: every `metrics_every_s` a small JSON (fps, frames, alerts, last score, threshold,
  bundle; edge.sinks.run_state), QoS 0, not retained: a state that the next one replaces, so it
  skips the outbox and is simply not sent while the broker is away.
- with `home_assistant`, retained discovery configs (edge.sinks.home_assistant) on every connect.
- with `commands`, a subscription to `<base>/cmd/bundle` on every connect and retained results on
  `<base>/cmd/bundle/result` (edge.bundle_command: this connection, its own thread).
- paho's network thread (loop_start) reconnects on its own with a growing delay; the sender thread
  only publishes while connected and deletes an alert from the outbox after the broker's PUBACK.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Optional

from edge.errors import EdgeError
from edge.sinks.base import clear_problem, one_line, problem
from edge.sinks.outbox import Entry, NotReady, QueuedSink
from edge.sinks.run_state import RunProbe
from edge.sinks.topics import Topics, default_station


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise EdgeError("the MQTT sink needs paho-mqtt: pip install 'edge-inspect[edge]' (or paho-mqtt>=2)") from None
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise EdgeError("the MQTT sink needs paho-mqtt 2.x; pip install -U 'paho-mqtt>=2'")
    return mqtt


def default_client_id() -> str:
    return f"edge-inspect-{socket.gethostname()}"


def new_client(
    client_id: str,
    username: Optional[str],
    password: Optional[str],
    tls: bool,
    ca: Optional[str],
    cert: Optional[str],
    key: Optional[str],
    reconnect_max_s: int,
    label: str = "MQTT",
):
    """A paho client (clean session) with the config's credentials, TLS and reconnect backoff: the
    alerts' MQTT sink and the Sparkplug sink connect the same way. TLS files that cannot be loaded
    are one line."""
    mqtt = _paho()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    if username:
        client.username_pw_set(username, password)
    if tls or ca or cert:
        # ca None: the system's CA store
        try:
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise EdgeError(
                f"{label}: TLS files could not be loaded ({exc}); check sinks.mqtt.tls ca/cert/key are PEM files"
            ) from None
    client.reconnect_delay_set(min_delay=1, max_delay=max(int(reconnect_max_s), 1))
    return client


class MqttTransport:
    name = "mqtt"

    def __init__(
        self,
        host: str,
        port: int = 1883,
        prefix: str = "edge-inspect",
        client_id: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        ca: Optional[str] = None,
        cert: Optional[str] = None,
        key: Optional[str] = None,
        keepalive_s: int = 30,
        publish_timeout_s: float = 10.0,
        reconnect_max_s: int = 30,
        tls: bool = False,
        station: Optional[str] = None,
        inspection: str = "default",
    ):
        mqtt = _paho()
        self._mqtt = mqtt
        self.host, self.port = host, int(port)
        self.prefix = prefix.rstrip("/")
        self.topics = Topics(self.prefix, station or default_station(), inspection)
        self.alerts_topic = self.topics.alerts
        self.reviews_topic = self.topics.reviews
        self.status_topic = self.topics.status
        self.health_topic = self.topics.health  # health and drift events (edge.health, edge.drift)
        self.metrics_topic = self.topics.metrics
        self._closing = False
        # Retained (topic, payload) said on every connect after "online": Home Assistant discovery.
        self.announcements: list[tuple[str, str]] = []
        # Topics subscribed to on every connect (clean session: the broker forgets them): commands.
        self.subscriptions: dict[str, int] = {}
        self.publish_timeout_s = publish_timeout_s
        self.keepalive_s = int(keepalive_s)
        self.client_id = client_id or default_client_id()
        self.connected = threading.Event()
        self._outcome = threading.Event()  # first connect attempt finished, either way
        self.last_error: Optional[str] = None
        self.on_ready = lambda: None  # set by the sink: cut the retry backoff short
        # Until the start check is over, the sink reports the outcome in one line of its own.
        self.starting = True
        client = new_client(self.client_id, username, password, tls, ca, cert, key, reconnect_max_s)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        # Bound paho's own in-memory queue; the outbox on disk is the real queue.
        client.max_queued_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self.client = client
        self.where = f"{host}:{self.port}"

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self.client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait for the first connect attempt's outcome (or the timeout); True if connected."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.connected.is_set():
            self._outcome.wait(min(0.05, max(deadline - time.monotonic(), 0)))
            if self._outcome.is_set() and not self.connected.is_set():
                return False
        return self.connected.is_set()

    # paho callbacks run on paho's network thread
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            if not self.starting:
                problem(
                    f"mqtt: {self.where} {self.last_error}; check username/password_env and TLS settings",
                    key="mqtt-conn",
                )
            self._outcome.set()
            return
        client.publish(self.status_topic, "online", qos=1, retain=True)
        for topic, payload in self.announcements:
            client.publish(topic, payload, qos=1, retain=True)
        for topic, qos in list(self.subscriptions.items()):
            client.subscribe(topic, qos)
        self.connected.set()
        self._outcome.set()
        self.last_error = None
        clear_problem("mqtt-conn")
        problem(f"mqtt: connected to {self.where} as {self.client_id}")
        self.on_ready()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._closing:  # our own disconnect at close is no loss to report
            self.last_error = f"disconnected ({reason_code})"
            problem(f"mqtt: lost {self.where} ({reason_code}); reconnecting, alerts queue meanwhile", key="mqtt-conn")

    def _on_connect_fail(self, client, userdata) -> None:
        self.last_error = f"cannot reach {self.where}"
        self._outcome.set()
        if not self.starting:
            problem(f"mqtt: cannot reach {self.where}; retrying, alerts queue meanwhile", key="mqtt-conn")

    def send(self, entry: Entry) -> None:
        if not self.connected.is_set():
            raise NotReady(f"not connected to {self.where}" + (f" ({self.last_error})" if self.last_error else ""))
        # Health, drift and bundle (edge.swap: swapped or rejected) events are the device's state: one topic.
        topics = {"review": self.reviews_topic, **dict.fromkeys(("health", "drift", "bundle"), self.health_topic)}
        topic = topics.get(entry.kind, self.alerts_topic)
        info = self.client.publish(topic, entry.payload, qos=1, retain=False)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish failed: {self._mqtt.error_string(info.rc)}")
        deadline = time.monotonic() + self.publish_timeout_s
        # Wait for the PUBACK, but give up early if the connection drops meanwhile.
        while not info.is_published():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no PUBACK from {self.where} within {self.publish_timeout_s:g}s")
            if not self.connected.is_set():
                raise ConnectionError(f"connection to {self.where} lost before PUBACK")
            info.wait_for_publish(0.05)

    def listen(self, topic: str, on_message, qos: int = 1) -> None:
        """Subscribe to exactly `topic` (no wildcards) now and after every reconnect; `on_message(message)`
        runs on paho's network thread, for messages on that topic only (edge.bundle_command)."""
        self.subscriptions[topic] = qos
        self.client.message_callback_add(topic, lambda _client, _userdata, message: on_message(message))
        if self.connected.is_set():
            self.client.subscribe(topic, qos)

    def publish_retained(self, topic: str, payload: str) -> bool:
        """A state a newcomer should see at once (a command's result): QoS 1, retained, not queued."""
        if not self.connected.is_set():
            return False
        return self.client.publish(topic, payload, qos=1, retain=True).rc == self._mqtt.MQTT_ERR_SUCCESS

    def publish_state(self, topic: str, payload: str) -> bool:
        """A periodic state (metrics): QoS 0, not retained, not queued; False when not connected."""
        if not self.connected.is_set():
            return False
        return self.client.publish(topic, payload, qos=0, retain=False).rc == self._mqtt.MQTT_ERR_SUCCESS

    def close(self, timeout_s: float = 2.0) -> None:
        self._closing = True
        if self.connected.is_set():
            try:
                info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()


class MqttSink(QueuedSink):
    def __init__(
        self,
        host: str,
        state_dir: str | Path,
        port: int = 1883,
        prefix: str = "edge-inspect",
        client_id: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        ca: Optional[str] = None,
        cert: Optional[str] = None,
        key: Optional[str] = None,
        tls: bool = False,
        keepalive_s: int = 30,
        publish_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        required: bool = False,
        max_entries: int = 10000,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        close_timeout_s: float = 5.0,
        outbox_name: str = "outbox-mqtt.db",
        station: Optional[str] = None,
        inspection: str = "default",
        metrics_every_s: float = 10.0,
        announcements: Optional[list[tuple[str, str]]] = None,
    ):
        transport = MqttTransport(
            host,
            port,
            prefix,
            client_id,
            username,
            password,
            ca,
            cert,
            key,
            keepalive_s,
            publish_timeout_s,
            reconnect_max_s=int(backoff_max_s),
            tls=tls,
            station=station,
            inspection=inspection,
        )
        transport.announcements = list(announcements or [])
        self.metrics_every_s = metrics_every_s
        self._probe: Optional[RunProbe] = None
        self._metrics_stop = threading.Event()
        self._metrics_thread: Optional[threading.Thread] = None
        transport.start()
        connected = transport.wait_connected(connect_timeout_s)
        transport.starting = False
        if not connected:
            why = transport.last_error or f"no answer within {connect_timeout_s:g}s"
            if required:
                transport.client.loop_stop()
                raise EdgeError(
                    f"MQTT broker {transport.where} unreachable at start ({why}); sinks.mqtt.required is true, "
                    "so not starting: check host/port and that the broker runs"
                )
            problem(
                f"warning: MQTT broker {transport.where} unreachable at start ({why}); alerts queue in "
                f"{Path(state_dir) / outbox_name} and are sent when it is back",
                key="mqtt-conn",  # the reconnect attempts that follow are not repeated for a minute
            )
        try:
            super().__init__(
                transport,
                Path(state_dir) / outbox_name,
                max_entries=max_entries,
                backoff_s=backoff_s,
                backoff_max_s=backoff_max_s,
                close_timeout_s=close_timeout_s,
            )
        except BaseException:
            transport.close(timeout_s=0.5)
            raise
        transport.on_ready = self.kick

    def bind_run(self, pipeline) -> None:
        """Publish the run's metrics every `metrics_every_s` (edge.app calls this once the pipeline exists)."""
        if self.metrics_every_s <= 0 or self._metrics_thread is not None:
            return
        self._probe = RunProbe(pipeline)
        self._metrics_thread = threading.Thread(target=self._publish_metrics, name="edge-mqtt-metrics", daemon=True)
        self._metrics_thread.start()

    def _publish_metrics(self) -> None:
        while not self._metrics_stop.wait(self.metrics_every_s):
            self._publish_once()

    def _publish_once(self) -> None:
        try:
            snapshot = self._probe.snapshot()  # type: ignore[union-attr]  # set before the thread starts
            self.transport.publish_state(self.transport.metrics_topic, json.dumps(snapshot))
        except Exception as exc:  # noqa: BLE001 - a metrics message must never end the run
            problem(f"mqtt: metrics not published ({one_line(exc)})", key="mqtt-metrics")

    def close(self) -> None:
        self._metrics_stop.set()
        if self._metrics_thread is not None:
            self._metrics_thread.join(2.0)
            self._publish_once()  # the run's final counters
        super().close()
