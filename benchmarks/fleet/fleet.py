"""Many stations, one broker, on loopback: a central mosquitto, N local mosquitto brokers bridged to it
(docs/fleet.md's bridge settings: cleansession false, QoS 1), one simulated station per local broker
publishing alerts at a steady rate through the project's MQTT sink (outbox, QoS 1), the link to the
central broker cut (the central broker stopped) for a while and restored. A subscriber on the central
broker (a historian: persistent session, QoS 1) counts.

    produced    alerts the stations emitted
    delivered   distinct alert ids the central subscriber got;  lost = produced - delivered
    duplicated  deliveries beyond the first of an id (at least once: receivers drop them by id)
    catch-up    from the central broker's return until the last alert emitted during the cut arrived
    first       from the central broker's return until the first alert arrived

    .venv/bin/python benchmarks/fleet/fleet.py --stations 20 --rate 2 --cut-s 60 --write
    .venv/bin/python benchmarks/fleet/fleet.py --stations 3 --rate 10 --cut-s 3        (what the test runs)

--write replaces benchmarks/results/fleet.md with the table and the command. tests/test_fleet.py runs
a short version (3 stations, a few seconds' cut).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from sinks_helpers import Mosquitto, make_alert, mosquitto_binary, wait_until  # noqa: E402

from edge.sinks.mqtt import MqttSink  # noqa: E402

PREFIX = "plant"
RESULTS = REPO / "benchmarks" / "results" / "fleet.md"


def bridge_conf(station: str, central_port: int) -> str:
    """The lines docs/fleet.md gives a station's local broker (addresses on loopback here)."""
    return (
        "max_queued_messages 1000000\n"  # the bridge's queue while the link is down (default 1000)
        f"connection central-{station}\n"
        f"address 127.0.0.1:{central_port}\n"
        f"remote_clientid bridge-{station}\n"
        "cleansession false\n"  # the central broker keeps the bridge's session (and its QoS 1 in flight)
        f"topic {PREFIX}/# out 1\n"
        "restart_timeout 1 5\n"  # reconnect after 1 s, backing off to 5 s
        "keepalive_interval 10\n"
    )


def queue_conf() -> str:
    return "max_queued_messages 1000000\n"  # the historian's persistent session holds what it missed


class Historian:
    """A subscriber on the central broker: persistent session, QoS 1; every arrival timed."""

    def __init__(self, port: int, topic: str = f"{PREFIX}/+/+/alerts", client_id: str = "fleet-historian"):
        import paho.mqtt.client as mqtt

        self.arrivals: list[tuple[str, float]] = []  # (alert id, monotonic time)
        self.bridges: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(topic, 1), ("$SYS/broker/connection/+/state", 1)])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("the historian could not subscribe")

    def _on_message(self, client, userdata, message) -> None:
        now = time.monotonic()
        if message.topic.startswith("$SYS/"):
            with self._lock:
                self.bridges[message.topic.split("/")[3]] = message.payload
            return
        alert_id = json.loads(message.payload)["id"]
        with self._lock:
            self.arrivals.append((alert_id, now))

    def connected_bridges(self) -> int:
        with self._lock:
            return sum(1 for v in self.bridges.values() if v == b"1")

    def snapshot(self) -> list[tuple[str, float]]:
        with self._lock:
            return list(self.arrivals)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Station:
    """One simulated station: the project's MQTT sink on its local broker, alerts at a steady rate."""

    def __init__(self, name: str, port: int, state: Path, rate: float):
        self.name = name
        self.sink = MqttSink(
            "127.0.0.1",
            state,
            port=port,
            prefix=PREFIX,
            station=name,
            inspection="default",
            client_id=f"edge-inspect-{name}",
            metrics_every_s=0,
            backoff_s=0.05,
            backoff_max_s=1.0,
            close_timeout_s=10.0,
        )
        self.period = 1.0 / rate
        self.produced: list[tuple[str, float]] = []  # (alert id, monotonic time emitted)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"station-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            alert = make_alert(i, source=f"{self.name}:camera0")
            self.sink.emit(alert)
            self.produced.append((alert.id, time.monotonic()))
            i += 1
            next_at += self.period
            self._stop.wait(max(next_at - time.monotonic(), 0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def close(self) -> None:
        self.sink.close()


@dataclass
class FleetResult:
    stations: int
    rate_per_station: float
    cut_s: float
    produced: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    produced_during_cut: int = 0
    catch_up_s: Optional[float] = None
    first_after_s: Optional[float] = None
    drained_s: Optional[float] = None
    lost_by_station: dict = field(default_factory=dict)
    statuses_online: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def run_fleet(
    stations: int,
    rate: float,
    cut_s: float,
    folder: Path,
    before_s: float = 2.0,
    after_s: float = 2.0,
    drain_timeout_s: float = 120.0,
    log: Callable[[str], None] = lambda _m: None,
) -> FleetResult:
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto not installed (apt-get install -y mosquitto)")
    central = Mosquitto(binary, folder / "central", extra=queue_conf()).start()
    locals_: list[Mosquitto] = []
    fleet: list[Station] = []
    historian: Optional[Historian] = None
    result = FleetResult(stations, rate, cut_s)
    try:
        historian = Historian(central.port)
        names = [f"station-{i:02d}" for i in range(stations)]
        for name in names:
            locals_.append(Mosquitto(binary, folder / name, extra=bridge_conf(name, central.port)).start())
        if not wait_until(lambda: historian.connected_bridges() == stations, 30):
            raise RuntimeError(f"only {historian.connected_bridges()} of {stations} bridges connected")
        log(f"{stations} bridges up; stations publish {rate:g} alerts/s each")
        fleet = [Station(n, b.port, folder / n / "state", rate) for n, b in zip(names, locals_, strict=True)]
        for s in fleet:
            s.start()
        time.sleep(before_s)
        cut_at = time.monotonic()
        central.stop()  # the link is gone: stations keep publishing to their local broker
        log(f"central broker stopped for {cut_s:g} s")
        time.sleep(cut_s)
        central.start()
        back_at = time.monotonic()
        log("central broker back")
        time.sleep(after_s)
        for s in fleet:
            s.stop()
        produced = {aid: (s.name, t) for s in fleet for aid, t in s.produced}
        wait_until(lambda: produced.keys() <= {a for a, _ in historian.snapshot()}, drain_timeout_s, step=0.1)
        arrivals = historian.snapshot()
        first_seen: dict[str, float] = {}
        for aid, t in arrivals:
            first_seen.setdefault(aid, t)
        during = [aid for aid, (_, t) in produced.items() if cut_at <= t < back_at]
        result.produced = len(produced)
        result.delivered = len(produced.keys() & first_seen.keys())
        result.lost = result.produced - result.delivered
        result.duplicated = len(arrivals) - len(first_seen)
        result.produced_during_cut = len(during)
        seen_during = [first_seen[a] for a in during if a in first_seen]
        if seen_during:
            result.catch_up_s = round(max(seen_during) - back_at, 2)
        after = [t for t in first_seen.values() if t >= back_at]
        if after:
            result.first_after_s = round(min(after) - back_at, 2)
        if arrivals:
            result.drained_s = round(max(t for _, t in arrivals) - back_at, 2)
        for s in fleet:
            lost = sum(1 for aid, _ in s.produced if aid not in first_seen)
            if lost:
                result.lost_by_station[s.name] = lost
        result.statuses_online = _statuses_online(central.port, stations)
        return result
    finally:
        for s in fleet:
            s.stop()
            s.close()
        if historian is not None:
            historian.close()
        for b in locals_:
            b.stop()
        central.stop()


def _statuses_online(port: int, stations: int) -> int:
    """How many stations' retained status a newcomer on the central broker reads as online."""
    from sinks_helpers import Subscriber

    sub = Subscriber(port, f"{PREFIX}/+/+/status", client_id="fleet-late", clean=True)
    try:
        wait_until(lambda: len({t for t, _, r in sub.messages if r}) >= stations, 5)
        return sum(1 for _, p, r in sub.messages if r and p == b"online")
    finally:
        sub.close()


def table(r: FleetResult) -> str:
    return "\n".join(
        [
            "| stations | alerts/s each | cut | produced | delivered | lost | duplicated | during the cut | "
            "first after return | catch-up | retained status online |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {r.stations} | {r.rate_per_station:g} | {r.cut_s:g} s | {r.produced} | {r.delivered} | {r.lost} | "
            f"{r.duplicated} | {r.produced_during_cut} | {r.first_after_s} s | {r.catch_up_s} s | "
            f"{r.statuses_online}/{r.stations} |",
        ]
    )


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=20)
    ap.add_argument("--rate", type=float, default=2.0, help="alerts per second per station")
    ap.add_argument("--cut-s", type=float, default=60.0, help="how long the central broker is down")
    ap.add_argument("--before-s", type=float, default=5.0)
    ap.add_argument("--after-s", type=float, default=5.0)
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(REPO)}")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-fleet-") as tmp:
        started = time.monotonic()
        r = run_fleet(
            args.stations,
            args.rate,
            args.cut_s,
            Path(tmp),
            before_s=args.before_s,
            after_s=args.after_s,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
        wall = time.monotonic() - started
    print(table(r))
    print(json.dumps(r.to_dict()))
    if args.write:
        command = "nice -n 10 .venv/bin/python benchmarks/fleet/fleet.py " + " ".join(argv or sys.argv[1:])
        _write(r, command, wall)
    return 1 if r.lost else 0


def _write(r: FleetResult, command: str, wall: float) -> None:
    cpu = os.cpu_count()
    RESULTS.write_text(
        "# Fleet: many stations, one central broker, the link cut and restored\n\n"
        f"```bash\n{command}\n```\n\n"
        f"{table(r)}\n\n"
        f"Loopback, one machine ({cpu} cores, shared with other work), mosquitto "
        f"{_mosquitto_version()}, {wall:.0f} s wall. Each station: the project's MQTT sink (edge/sinks/mqtt.py: "
        "outbox on disk, QoS 1, PUBACK from its local broker) publishing to its own local mosquitto, bridged to "
        "the central one with docs/fleet.md's settings (cleansession false, `topic plant/# out 1`, "
        "`restart_timeout 1 5`). The cut: the central broker stopped (SIGTERM, persistence on) and started "
        "again on the same port. The subscriber: a persistent QoS 1 session on the central broker.\n\n"
        "- produced / delivered / lost: alert ids emitted by the stations / received at least once centrally.\n"
        "- duplicated: deliveries beyond the first (at least once; receivers drop them by `id`).\n"
        "- first after return / catch-up: from the central broker's restart until the first alert arrived / "
        "until the last alert emitted during the cut arrived. Both include the bridges' reconnect delay "
        "(`restart_timeout`, 1 s backing off to 5 s): after a long cut every bridge retries at the cap, so the "
        "catch-up is about the cap; a shorter cap catches up sooner, at the cost of more reconnect attempts "
        "during an outage.\n"
        "- retained status online: stations whose retained `plant/<station>/default/status` a new subscriber "
        "on the central broker reads as `online` after the cut.\n\n"
        f"Raw: `{json.dumps(r.to_dict())}`\n"
    )


def _mosquitto_version() -> str:
    import subprocess

    out = subprocess.run([mosquitto_binary() or "mosquitto", "-h"], capture_output=True, text=True).stdout
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else "?"


if __name__ == "__main__":
    raise SystemExit(main())
