"""Sparkplug B 3.0 beside the MQTT sink: the station is an edge node, the inspection a device.

Topics `spBv1.0/<group_id>/<type>/<station>[/<inspection>]`, payloads protobuf (edge.sinks.sparkplug_proto):

- NDEATH is the MQTT last will, set before every connect with that session's `bdSeq` (0-255,
  one more per connect, kept in the state folder so a restart does not reuse the last one); a clean
  stop publishes it itself. A host matches it to the NBIRTH that carried the same bdSeq.
- on every connect: NBIRTH (seq 0: bdSeq, Node Control/Rebirth, the software), then DBIRTH with every
  device metric; then DDATA on each alert and every `every_s` with what changed. `seq` counts every
  NBIRTH/DBIRTH/DDATA/DDEATH from 0 to 255 and wraps.
- a host's NCMD `Node Control/Rebirth = true` makes the node send NBIRTH and DBIRTH again.

Sparkplug data messages are QoS 0 and stateful (a host resyncs from births), so this sink reports the
inspection's state; it is not the alerts' durable path (that is `<base>/alerts` through the outbox).
A message while the broker is away is skipped, never queued: the births on reconnect carry the state.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

from edge import __version__
from edge.alert import Alert
from edge.sinks import sparkplug_proto as spb
from edge.sinks.base import clear_problem, one_line, problem
from edge.sinks.mqtt import _paho, new_client
from edge.sinks.run_state import RunProbe

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"

# Device metrics: name -> (datatype, the RunProbe snapshot key that gives its value)
DEVICE_METRICS = {
    "Defect": (spb.BOOLEAN, "defect"),
    "Score": (spb.DOUBLE, "last_score"),
    "Threshold": (spb.DOUBLE, "threshold"),
    "FPS": (spb.FLOAT, "fps"),
    "Frames": (spb.UINT64, "frames"),
    "Alerts": (spb.UINT64, "alerts"),
    "Dropped": (spb.UINT64, "dropped"),
    "Health": (spb.STRING, "health"),
    "Drift": (spb.STRING, "drift"),
    "Bundle/ID": (spb.STRING, "bundle_id"),
    "Bundle/Version": (spb.INT32, "bundle_version"),
    "Last Alert/ID": (spb.STRING, "last_alert_id"),
    "Last Alert/Score": (spb.DOUBLE, "last_alert_score"),
    "Last Alert/Time": (spb.DATETIME, "last_alert_ms"),
}


def now_ms() -> int:
    return int(time.time() * 1000)


def _iso_ms(text: str) -> Optional[int]:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


class SparkplugSink:
    name = "sparkplug"
    durable = False  # a state report; the alerts' durable path is the MQTT sink's outbox

    def __init__(
        self,
        host: str,
        state_dir: str | Path,
        port: int = 1883,
        group_id: str = "edge-inspect",
        edge_node: str = "station",
        device: str = "default",
        client_id: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        ca: Optional[str] = None,
        cert: Optional[str] = None,
        key: Optional[str] = None,
        tls: bool = False,
        keepalive_s: int = 30,
        every_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        reconnect_max_s: int = 30,
    ):
        _paho()  # paho-mqtt missing is one line, before the bdSeq file is touched
        self.where = f"{host}:{int(port)}"
        self.every_s = every_s
        node = f"{NAMESPACE}/{group_id}/{{}}/{edge_node}"
        self.topic = {kind: node.format(kind) for kind in ("NBIRTH", "NDEATH", "NCMD")}
        self.topic.update({kind: f"{node.format(kind)}/{device}" for kind in ("DBIRTH", "DDATA", "DDEATH", "DCMD")})
        self._bdseq_file = Path(state_dir) / f"sparkplug-bdseq-{group_id}-{edge_node}"
        self._lock = threading.Lock()  # seq and the last values sent
        self._seq = 0
        self.bdseq = self._next_bdseq()
        self._state: dict = {k: None for _, k in DEVICE_METRICS.values()}
        self._sent: dict = {}
        self._probe: Optional[RunProbe] = None
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        client_id = client_id or f"edge-inspect-spb-{edge_node}"
        client = new_client(client_id, username, password, tls, ca, cert, key, reconnect_max_s, "Sparkplug MQTT")
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        self._set_will()
        client.connect_async(host, int(port), keepalive=int(keepalive_s))
        client.loop_start()
        if not self.connected.wait(connect_timeout_s):
            problem(f"warning: Sparkplug: broker {self.where} not reachable yet; births are sent when it is")

    # -- bdSeq: one per MQTT session, kept across restarts -----------------------------------------
    def _next_bdseq(self) -> int:
        try:
            last = int(self._bdseq_file.read_text().strip())
        except (OSError, ValueError):
            last = -1
        value = (last + 1) % 256
        try:
            self._bdseq_file.parent.mkdir(parents=True, exist_ok=True)
            self._bdseq_file.write_text(str(value))
        except OSError as exc:
            problem(f"Sparkplug: cannot keep bdSeq in {self._bdseq_file} ({one_line(exc)})", key="spb-bdseq")
        return value

    def _death(self) -> bytes:
        payload = spb.Payload(timestamp=now_ms())
        spb.add_metric(payload, "bdSeq", spb.INT64, self.bdseq, payload.timestamp)
        return payload.SerializeToString()

    def _set_will(self) -> None:
        # Sparkplug 3.0: NDEATH is QoS 1, not retained, and carries the bdSeq of the session it ends.
        self.client.will_set(self.topic["NDEATH"], self._death(), qos=1, retain=False)

    # -- paho callbacks (paho's network thread) ----------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            problem(f"Sparkplug: {self.where} refused the connection: {reason_code}", key="spb-conn")
            return
        client.subscribe([(self.topic["NCMD"], 0), (self.topic["DCMD"], 0)])
        self._births(connecting=True)
        clear_problem("spb-conn")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._stop.is_set():
            problem(f"Sparkplug: lost {self.where} ({reason_code}); births follow the reconnect", key="spb-conn")
        self.connected.clear()
        if not self._stop.is_set():
            # The next session gets a new bdSeq, and its will must carry it (set before paho reconnects).
            self.bdseq = self._next_bdseq()
            self._set_will()

    def _on_message(self, client, userdata, message) -> None:
        try:
            payload = spb.Payload.FromString(message.payload)
        except Exception:  # noqa: BLE001 - a malformed command is ignored, never fatal
            problem(f"Sparkplug: undecodable command on {message.topic} ignored", key="spb-cmd")
            return
        if any(m.name == REBIRTH and spb.metric_value(m) is True for m in payload.metrics):
            self._births()

    # -- messages ------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % 256
        return seq

    def _births(self, connecting: bool = False) -> None:
        with self._lock:
            if connecting:
                # Under the lock: bind_run either sees the connection (and sends DBIRTH after this
                # NBIRTH) or ran before (and this sends it).
                self.connected.set()
            self._refresh()
            self._seq = 0  # NBIRTH always carries seq 0
            t = now_ms()
            nbirth = spb.Payload(timestamp=t, seq=self._next_seq())
            spb.add_metric(nbirth, "bdSeq", spb.INT64, self.bdseq, t)  # Int64, as Tahu sends it
            spb.add_metric(nbirth, REBIRTH, spb.BOOLEAN, False, t)
            spb.add_metric(nbirth, "Properties/Software", spb.STRING, f"edge-inspect {__version__}", t)
            self.client.publish(self.topic["NBIRTH"], nbirth.SerializeToString(), qos=0, retain=False)
            if self._probe is not None:
                self._device_birth(t)

    def _device_birth(self, t: int) -> None:
        """DBIRTH: every metric a DDATA may carry, with its value now (the caller holds the lock)."""
        dbirth = spb.Payload(timestamp=t, seq=self._next_seq())
        for name, (datatype, key) in DEVICE_METRICS.items():
            spb.add_metric(dbirth, name, datatype, self._state[key], t)
        self.client.publish(self.topic["DBIRTH"], dbirth.SerializeToString(), qos=0, retain=False)
        self._sent = dict(self._state)

    def _refresh(self) -> None:
        if self._probe is not None:
            snapshot = self._probe.snapshot()
            self._state.update({k: snapshot[k] for k in self._state if k in snapshot})

    def _data(self, refresh: bool = True) -> None:
        """DDATA with the metrics that changed since the last birth or data message."""
        if not self.connected.is_set() or self._probe is None:
            return  # no DDATA before the DBIRTH
        with self._lock:
            if refresh:
                self._refresh()
            changed = {k: v for k, v in self._state.items() if self._sent.get(k) != v}
            if not changed:
                return
            t = now_ms()
            payload = spb.Payload(timestamp=t, seq=self._next_seq())
            for name, (datatype, key) in DEVICE_METRICS.items():
                if key in changed:
                    spb.add_metric(payload, name, datatype, self._state[key], t)
            self.client.publish(self.topic["DDATA"], payload.SerializeToString(), qos=0, retain=False)
            self._sent.update(changed)

    # -- the sink --------------------------------------------------------------------------------
    def bind_run(self, pipeline) -> None:
        """The device is born once its inspection runs: DBIRTH now (if connected) and after every NBIRTH."""
        with self._lock:
            self._probe = RunProbe(pipeline)
            if self.connected.is_set():
                self._refresh()
                self._device_birth(now_ms())
        if self.every_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._periodic, name="edge-sparkplug", daemon=True)
            self._thread.start()

    def _periodic(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._data()
            except Exception as exc:  # noqa: BLE001 - never end the run over a state report
                problem(f"Sparkplug: DDATA not sent ({one_line(exc)})", key="spb-data")

    def emit(self, alert: Alert) -> None:
        with self._lock:
            self._state.update(
                last_alert_id=alert.id,
                last_alert_score=float(alert.score),
                last_alert_ms=_iso_ms(alert.time),
                defect=True,
            )
        self._data(refresh=False)  # the alert as raised; the next periodic DDATA has the latest frame

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.connected.is_set():
            self._data()  # the run's final counters, before the device's death
            with self._lock:
                ddeath = spb.Payload(timestamp=now_ms(), seq=self._next_seq())
            self.client.publish(self.topic["DDEATH"], ddeath.SerializeToString(), qos=0)
            # A clean stop says NDEATH itself (the will is only for deaths the broker sees).
            info = self.client.publish(self.topic["NDEATH"], self._death(), qos=1, retain=False)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
