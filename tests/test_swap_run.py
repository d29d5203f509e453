"""Hot swap of the bundle in a running `edge run` (issue 15), as an operator does it.

One real run (a subprocess: signals matter) on a looped video, every frame over the threshold so
every frame's decision is an alert, a real mosquitto broker and subscriber on loopback, the page on
loopback. Mid-run: a corrupt version (SIGHUP), a bundle calibrated on frames of another shape (the
page's button), a good version (SIGHUP) and a bundle copied into the watched folder. The bad ones
are one line each and a `rejected` event while the old bundle runs on; the good ones are swapped in
between two frames: no frame without its decision, no alert lost, alerts before and after carry
the old and the new bundle's id and version.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sinks_helpers import Mosquitto, Subscriber, free_port, require_mosquitto, wait_until
from test_health_drift import DEMO, noisy, record, scene

from calibration.health_reference import write_health_reference
from edge.bundle_history import add_version, staging_folder, start_history

REPO = Path(__file__).resolve().parents[1]
TOKEN = "swap-token-7c1e"
PREFIX = "swaptest"

pytest.importorskip("starlette")


def write_version(history: Path, number: int, *, threshold: float, corrupt=False, reference=None) -> str:
    """Version `number` of the demo bundle in `history` (made current), as `edge calibrate --from` lays it out."""
    staged = staging_folder(history)
    shutil.copytree(DEMO / "bundle", staged)
    bundle_id = f"swap{number:04d}"
    edit_manifest(staged, bundle_id, number, threshold)
    if corrupt:  # a byte of the model changed after calibration: its hash no longer matches
        model = staged / "model_int8.tflite"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    if reference is not None:
        write_health_reference(staged, [reference])
    add_version(history, staged, number)
    return bundle_id


def edit_manifest(folder: Path, bundle_id: str, version: int, threshold: float) -> None:
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest.update(id=bundle_id, version=version, parent="swap0001" if version > 1 else None)
    manifest["threshold"]["value"] = threshold  # under every score: each frame is an alert
    (folder / "bundle.json").write_text(json.dumps(manifest, indent=1))


class Run:
    """`edge run` in a subprocess; its stdout lines parsed as they come."""

    def __init__(self, args: list, cwd: Path):
        self.stderr_path = cwd / "run.err"
        self.lines: list[dict] = []
        self._lock = threading.Lock()
        with open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge_cli", "run", *map(str, args)],
                cwd=REPO,
                env={**os.environ, "EDGE_WEB_TOKEN": TOKEN},
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                with self._lock:
                    self.lines.append(json.loads(line))

    @property
    def alerts(self) -> list[dict]:
        with self._lock:
            return [x for x in self.lines if "frame_index" in x]

    def events(self, kind: str = "bundle") -> list[dict]:
        with self._lock:
            return [x for x in self.lines if x.get("type") == kind]

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait(self, what, timeout: float = 90.0) -> None:
        def check():
            if self.process.poll() is not None:
                raise AssertionError(f"edge run ended early:\n{self.stderr()}")
            return what()

        assert wait_until(check, timeout, step=0.05), f"not within {timeout} s: {what.__name__}\n{self.stderr()}"

    def alerts_of(self, version: int) -> int:
        return sum(1 for a in self.alerts if a["bundle_version"] == version)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
        self._reader.join(10)
        return code


def post(url: str, token=None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=b"{}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def swapped_run(tmp_path_factory):
    """The run, its swaps and rejections done; what the run, the broker and the page said."""
    folder = tmp_path_factory.mktemp("swap")
    broker = Mosquitto(require_mosquitto(), folder / "broker").start()
    subscriber = Subscriber(broker.port, f"{PREFIX}/#", client_id="t-swap", clean=True)
    rng = np.random.default_rng(0)
    video = record(folder / "line.avi", [noisy(scene(), rng) for _ in range(30)])  # 320x240, looped
    wide = folder / "wide.png"  # a calibration frame of another camera: 16:9, not 4:3
    cv2.imwrite(str(wide), cv2.resize(scene(), (320, 180)))

    first = folder / "first"
    shutil.copytree(DEMO / "bundle", first)
    edit_manifest(first, "swap0001", 1, -1.0)
    history = folder / "line1"
    start_history(first, history)
    drop = folder / "drop"
    drop.mkdir()
    config = folder / "edge.yaml"
    sinks = {"snapshots": False, "mqtt": {"host": "127.0.0.1", "port": broker.port, "prefix": PREFIX}}
    config.write_text(yaml.safe_dump({"sinks": sinks, "swap": {"poll_seconds": 0.2}}))
    port = free_port()
    page = f"http://127.0.0.1:{port}"
    args = ["--config", config, "--bundle", history, "--video", video, "--loop", "--out", folder / "out"]
    args += ["--threads", "1", "--metrics-every", "0", "--web", f"127.0.0.1:{port}", "--watch-bundles", drop]
    run = Run(args, folder)
    said: dict = {}
    try:
        run.wait(lambda: run.alerts_of(1) >= 8)
        # A corrupt version made current, then SIGHUP: rejected, the old bundle runs on.
        write_version(history, 2, threshold=-5.0, corrupt=True)
        run.process.send_signal(signal.SIGHUP)
        run.wait(lambda: len(run.events()) >= 1)
        # A version calibrated on frames of another shape, swapped from the page: the token first.
        write_version(history, 3, threshold=-5.0, reference=wide)
        said["no token"] = post(f"{page}/api/bundle/swap")
        said["token"] = post(f"{page}/api/bundle/swap", TOKEN)
        run.wait(lambda: len(run.events()) >= 2)
        still = run.alerts_of(1)
        run.wait(lambda: run.alerts_of(1) >= still + 5)  # the old bundle inspects on
        # A good version, SIGHUP: swapped in.
        said["v4 id"] = write_version(history, 4, threshold=-2.0)
        run.process.send_signal(signal.SIGHUP)
        run.wait(lambda: run.alerts_of(4) >= 8)
        # A bundle copied into the watched folder: swapped in once its files stop changing.
        staged = folder / "b5"
        shutil.copytree(DEMO / "bundle", staged)
        edit_manifest(staged, "swap0005", 5, -3.0)
        shutil.copytree(staged, drop / "b5")
        run.wait(lambda: run.alerts_of(5) >= 8)
        said["status"] = get_json(f"{page}/api/status")
    finally:
        code = run.stop()
        broker_alerts = {}

        def all_at_broker():
            got = {json.loads(p)["id"] for t, p, _ in subscriber.messages if t.endswith("/alerts")}
            broker_alerts["ids"] = got
            return got >= {a["id"] for a in run.alerts}

        wait_until(all_at_broker, 30)
        subscriber.close()
        broker.stop()
    said.update(code=code, stderr=run.stderr(), alerts=run.alerts, events=run.events(), broker=broker_alerts["ids"])
    said["broker events"] = [json.loads(p) for t, p, _ in subscriber.messages if t.endswith("/health")]
    return said


def summary_of(stderr: str) -> dict:
    line = next(x for x in stderr.splitlines() if x.startswith("summary "))
    return json.loads(line.removeprefix("summary "))


def test_a_swap_under_load_loses_no_frame_decision_and_no_alert(swapped_run):
    run = swapped_run
    assert run["code"] == 0, run["stderr"]
    summary = summary_of(run["stderr"])
    alerts = run["alerts"]
    # Every frame over the threshold: one alert per frame, none missing around the swaps.
    assert [a["frame_index"] for a in alerts] == list(range(summary["frames"]))
    assert summary["alerts"] == summary["frames"] == len(alerts)
    # Alerts before a swap carry the old bundle, after it the new one; the rejected ones never ran.
    assert [version for version, _ in itertools.groupby(a["bundle_version"] for a in alerts)] == [1, 4, 5]
    ids = {(a["bundle_version"], a["bundle_id"]) for a in alerts}
    assert ids == {(1, "swap0001"), (4, "swap0004"), (5, "swap0005")}
    assert {a["threshold"] for a in alerts if a["bundle_version"] == 4} == {-2.0}
    # Every alert reached the subscriber.
    assert run["broker"] >= {a["id"] for a in alerts}


def test_swaps_are_said_once_and_sent_as_bundle_events(swapped_run):
    run = swapped_run
    states = [(e["state"], e["detail"]["trigger"].split(":")[0], e["detail"]["new"]["version"]) for e in run["events"]]
    assert states == [
        ("rejected", "SIGHUP", None),  # the corrupt one: not even loaded, so no id or version
        ("rejected", "page", 3),
        ("swapped", "SIGHUP", 4),
        ("swapped", "watch", 5),
    ]
    swapped = [e for e in run["events"] if e["state"] == "swapped"]
    assert [(e["detail"]["old"]["id"], e["detail"]["new"]["id"]) for e in swapped] == [
        ("swap0001", "swap0004"),
        ("swap0004", "swap0005"),
    ]
    assert [e["id"] for e in run["broker events"] if e.get("type") == "bundle"] == [e["id"] for e in run["events"]]
    lines = run["stderr"].splitlines()
    assert sum("bundle swapped (" in line for line in lines) == 2
    assert run["status"]["bundle"]["id"] == "swap0005" and run["status"]["swap"]["swaps"] == 2


def test_a_bad_new_bundle_is_one_line_and_the_old_one_runs_on(swapped_run):
    run = swapped_run
    rejected = [line for line in run["stderr"].splitlines() if "rejected" in line]
    assert len(rejected) == 2, rejected
    corrupt, shape = rejected
    assert corrupt.startswith("bundle swap (SIGHUP) rejected: model hash mismatch in ")
    assert corrupt.endswith("still running swap0001 v1")
    assert "calibrated on frames of another shape" in shape and "this camera's 320x240 frames" in shape
    assert shape.endswith("still running swap0001 v1")
    assert "Traceback" not in run["stderr"]
    assert (run["no token"], run["token"]) == (401, 202)
    reasons = [e["detail"]["reason"] for e in run["events"] if e["state"] == "rejected"]
    assert "hash mismatch" in reasons[0] and "another shape" in reasons[1]
