"""Fault scripts for the alert path (issue 13): real `edge run` processes, a real mosquitto and a real
HTTP receiver on 127.0.0.1, the demo bundle on a looped video of the demo images (about half of them
defective). Each scenario prints one line: produced / delivered / lost / duplicated per network sink.

    produced   alerts in events.jsonl (derived from the alert journal: every alert journaled)
    delivered  distinct alert ids the receiver got;  lost = produced - delivered
    duplicated deliveries beyond the first of an id (allowed: at least once, receivers drop by id)

    .venv/bin/python benchmarks/faults/alerts_faults.py broker-down --down-s 60
    .venv/bin/python benchmarks/faults/alerts_faults.py webhook-500 --down-s 60
    .venv/bin/python benchmarks/faults/alerts_faults.py slow-receiver --delay-s 2 --timeout-s 0.5 --run-s 20
    .venv/bin/python benchmarks/faults/alerts_faults.py kill9 --kills 10
    .venv/bin/python benchmarks/faults/alerts_faults.py full-disk --disk-mb 20 --run-s 30     (root: mounts a tmpfs)
    .venv/bin/python benchmarks/faults/alerts_faults.py soak --run-s 600                       (RSS per minute)

Short durations (e.g. --down-s 5 --run-s 10) give the quick versions tests/test_alerts_faults.py runs,
with --rate 8: the video replayed as an 8 fps camera would deliver it (source.rate). Without --rate
(the default, and how the figures in benchmarks/results/faults_alerts.md were measured) it goes as
fast as the model takes frames.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "edge" / "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def demo_video(path: Path, size=(640, 480)) -> Path:
    """The 18 demo images as a 10 fps MJPG video (looped by edge run)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size, True)
    for image in sorted((DEMO / "images").iterdir()):
        writer.write(cv2.resize(cv2.imread(str(image)), size))
    writer.release()
    return path


class Receiver:
    """An HTTP webhook receiver: answers 500 while `failing`, waits `delay_s` before each answer."""

    def __init__(self, port: int, delay_s: float = 0.0):
        self.ids: list[str] = []
        self.failing = False
        self.delay_s = delay_s
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                time.sleep(receiver.delay_s)
                status = 500 if receiver.failing else 200
                if status == 200:
                    receiver.ids.append(body["id"])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Broker:
    """mosquitto on 127.0.0.1:port, persistent, and a QoS 1 subscriber with a persistent session."""

    def __init__(self, folder: Path, port: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port, self.proc = folder, port, None
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {folder}/\n"
        )
        self.ids: list[str] = []

    def start(self) -> "Broker":
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stderr=subprocess.DEVNULL)

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_until(up, 10)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def subscribe(self, topic: str) -> None:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fault-sub", clean_session=False)
        client.reconnect_delay_set(1, 2)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.on_message = lambda c, u, m: self.ids.append(json.loads(m.payload)["id"])
        client.connect("127.0.0.1", self.port, keepalive=10)
        client.loop_start()
        self.client = client


class Scene:
    """A scratch folder with the video, the config, a receiver and a broker (started on demand)."""

    def __init__(self, folder: Path, webhook_timeout_s: float = 5.0, delay_s: float = 0.0, rate: float | None = None):
        self.folder = folder
        self.web_port, self.mqtt_port = free_port(), free_port()
        self.video = demo_video(folder / "line.avi")
        self.out = folder / "out"
        self.receiver: Receiver | None = None
        self.broker = Broker(folder / "broker", self.mqtt_port)
        self.delay_s = delay_s
        self.config = folder / "edge.yaml"
        paced = f"  rate: {rate:g}\n" if rate else ""  # None: as fast as the model goes (the benchmark's load)
        self.config.write_text(
            f"bundle: {DEMO / 'bundle'}\nsource:\n  video: {self.video}\n  loop: true\n{paced}"
            f"out: {self.out}\nthreads: 1\n"
            "sinks:\n  stdout: false\n  snapshots: {max_count: 200}\n"
            f'  webhook: {{url: "http://127.0.0.1:{self.web_port}/a", timeout_s: {webhook_timeout_s}, '
            "backoff_s: 0.2, backoff_max_s: 2, close_timeout_s: 30}\n"
            f"  mqtt: {{host: 127.0.0.1, port: {self.mqtt_port}, prefix: fault, station: s1, backoff_s: 0.2, "
            "backoff_max_s: 2, close_timeout_s: 30, connect_timeout_s: 1}\n"
        )

    def start_receivers(self) -> None:
        self.receiver = self.receiver or Receiver(self.web_port, self.delay_s)
        if self.broker.proc is None:
            self.broker.start()
            if not hasattr(self.broker, "client"):
                self.broker.subscribe("fault/s1/default/alerts")

    def edge_run(self, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_cli", "run", "--config", str(self.config), *extra],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "stderr.txt", "a"),  # noqa: SIM115 - the child holds it
        )

    def produced(self) -> list[str]:
        path = self.out / "events.jsonl"
        return [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []

    def report(self, name: str) -> dict:
        produced = self.produced()
        result = {"scenario": name, "produced": len(produced), "jsonl_duplicates": len(produced) - len(set(produced))}
        for sink, ids in (("webhook", self.receiver.ids if self.receiver else []), ("mqtt", self.broker.ids)):
            got = Counter(ids)
            result[sink] = {
                "delivered": len(set(produced) & set(got)),
                "lost": len(set(produced) - set(got)),
                "duplicated": sum(n - 1 for n in got.values()),
            }
        print(json.dumps(result), flush=True)
        return result

    def settle(self, timeout_s: float = 60) -> None:
        """Wait until both receivers have everything produced (or the time is up)."""
        wait_until(
            lambda: set(self.produced()) <= set(self.receiver.ids) and set(self.produced()) <= set(self.broker.ids),
            timeout_s,
            0.2,
        )

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        self.broker.stop()


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(120)


def outage(scene: Scene, which: str, down_s: float, run_s: float) -> dict:
    """Receivers up, the named one goes down (broker stopped / webhook 500) for down_s, then back."""
    scene.start_receivers()
    proc = scene.edge_run()
    time.sleep(run_s / 2)
    if which == "broker":
        scene.broker.stop()
    else:
        scene.receiver.failing = True
    time.sleep(down_s)
    if which == "broker":
        scene.broker.start()
    else:
        scene.receiver.failing = False
    time.sleep(run_s / 2)
    rc = stop(proc)
    scene.settle()
    return {**scene.report(f"{which} down {down_s:g} s"), "exit": rc}


def kill9(scene: Scene, kills: int, every_s: float) -> dict:
    """Both network sinks down; edge run killed with SIGKILL `kills` times; then everything up."""
    for _ in range(kills):
        proc = scene.edge_run()
        time.sleep(every_s)
        proc.kill()
        proc.wait()
    scene.start_receivers()
    rc = stop_after(scene, 5)
    scene.settle()
    return {**scene.report(f"kill -9 x{kills}, both sinks down"), "exit": rc}


def stop_after(scene: Scene, seconds: float) -> int:
    proc = scene.edge_run()
    time.sleep(seconds)
    return stop(proc)


def slow_receiver(scene: Scene, run_s: float, delay_s: float, timeout_s: float) -> dict:
    """The receiver answers every POST after delay_s (> the webhook's timeout_s) for run_s; then it
    answers at once, while the same run goes on, and the backlog drains. Delivered during the slow
    part (the sink learned to wait longer) and in all are both counted."""
    scene.start_receivers()
    proc = scene.edge_run()
    time.sleep(run_s)
    during = len(set(scene.produced()) & set(scene.receiver.ids))
    scene.receiver.delay_s = 0.0  # heals
    started = time.monotonic()
    scene.settle()
    drained_s = time.monotonic() - started
    rc = stop(proc)
    scene.settle(10)
    result = scene.report(f"receiver {delay_s:g} s > timeout {timeout_s:g} s")
    result.update({"delivered_while_slow": during, "drained_s": round(drained_s, 1), "exit": rc})
    print(json.dumps({k: result[k] for k in ("delivered_while_slow", "drained_s", "exit")}), flush=True)
    return result


def full_disk(scene: Scene, disk_mb: int, run_s: float) -> dict:
    """OUT on a small tmpfs (root): snapshots fill it up to the floor, the records keep going."""
    disk = scene.folder / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk_mb}m", "tmpfs", str(disk)], check=True)
    try:
        scene.out = disk / "out"
        text = scene.config.read_text().replace(f"out: {scene.folder / 'out'}", f"out: {scene.out}")
        scene.config.write_text(text.replace("{max_count: 200}", f"{{max_count: null, min_free_mb: {disk_mb / 4:g}}}"))
        scene.start_receivers()
        rc = stop_after(scene, run_s)
        scene.settle()
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize / 1e6
        shots = len(list((scene.out / "snapshots").glob("*.png")))
        return {**scene.report(f"full disk {disk_mb} MB"), "exit": rc, "free_mb": round(free, 1), "pngs": shots}
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def soak(scene: Scene, run_s: float, every_s: float = 60) -> dict:
    """RSS of edge run once a `every_s`; growth from the second sample to the last."""
    scene.start_receivers()
    proc = scene.edge_run()
    rss = []
    for _ in range(int(run_s // every_s)):
        time.sleep(every_s)
        with open(f"/proc/{proc.pid}/status") as f:
            rss.append(next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS")))
    rc = stop(proc)
    scene.settle()
    growth = 100 * (rss[-1] - rss[1]) / rss[1] if len(rss) > 2 else None
    result = {**scene.report(f"soak {run_s:g} s"), "exit": rc, "rss_mb": [round(r, 1) for r in rss]}
    result["growth_after_warmup_pct"] = round(growth, 2) if growth is not None else None
    print(json.dumps({"rss_mb": result["rss_mb"], "growth_after_warmup_pct": result["growth_after_warmup_pct"]}))
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", choices=["broker-down", "webhook-500", "slow-receiver", "kill9", "full-disk", "soak"])
    ap.add_argument("--down-s", type=float, default=60.0, help="outage length")
    ap.add_argument("--run-s", type=float, default=20.0, help="running time around the outage / of the run")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--kill-every-s", type=float, default=4.0)
    ap.add_argument("--delay-s", type=float, default=2.0, help="slow receiver: seconds before each answer")
    ap.add_argument("--timeout-s", type=float, default=0.5, help="slow receiver: the webhook's timeout_s")
    ap.add_argument("--disk-mb", type=int, default=20)
    ap.add_argument("--every-s", type=float, default=60.0, help="soak: RSS sample period")
    ap.add_argument(
        "--rate", type=float, default=None, help="frames per second the looped video is replayed at (default: flat out)"
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-faults-") as tmp:
        folder = Path(tmp)
        slow = args.scenario == "slow-receiver"
        scene = Scene(folder, args.timeout_s if slow else 5.0, args.delay_s if slow else 0.0, args.rate)
        try:
            if args.scenario in ("broker-down", "webhook-500"):
                return outage(scene, "broker" if args.scenario == "broker-down" else "webhook", args.down_s, args.run_s)
            if slow:
                return slow_receiver(scene, args.run_s, args.delay_s, args.timeout_s)
            if args.scenario == "kill9":
                return kill9(scene, args.kills, args.kill_every_s)
            if args.scenario == "full-disk":
                return full_disk(scene, args.disk_mb, args.run_s)
            return soak(scene, args.run_s, args.every_s)
        finally:
            scene.close()


if __name__ == "__main__":
    main()
