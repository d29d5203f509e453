"""Recorded shifts through `edge run` with short settings (issue 15): the right event, and none on a steady line.

The bundle is calibrated on the device (`edge calibrate --from` the demo bundle, on frames of the
steady scene recorded as a camera would give them): its threshold, its normal scores (what the
drift watch compares with) and its health reference come from this camera. Then each recorded
video (tests/test_health_drift.py: 2 s steady, then 4 s of the change) runs through `edge run`:
a brightness ramp raises `exposure`, a 5 % view shift `moved` and a `drift` of the scores (lower:
the parts sit where the model never saw them), growing blur `blur`, a steady video nothing. The
shift's events also reach a real broker (<prefix>/.../health) and a real webhook receiver.
tests/test_health_run.py checks what the user sees of one event (stdout, health.jsonl, the store).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from cli_helpers import run_edge_in_process
from sinks_helpers import Mosquitto, Receiver, Subscriber, require_mosquitto, wait_until
from test_health_drift import DEMO, decoded, noisy, record, scene, shift_videos

# Events as soon as a frame shows the change (hold 0); the drift window is short, so the level is
# higher than the default: PSI over 20 scores in 3 bins wanders more than over 500 in 10.
SHORT = {
    "health": {"hold_seconds": 0.0},
    "drift": {"window": 20, "bins": 3, "level": 0.5, "hold_seconds": 0.0},
    "sinks": {"snapshots": False},
}
EXPECTED = {
    "steady": set(),
    "brightness ramp": {("health", "exposure")},
    "view shift 5 %": {("health", "moved"), ("drift", "drift")},
    "growing blur": {("health", "blur")},
}


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    """The device-calibrated history and the recorded videos."""
    folder = tmp_path_factory.mktemp("shifts")
    good = folder / "collected" / "train" / "good"
    good.mkdir(parents=True)
    rng = np.random.default_rng(5)
    steady = record(folder / "calibration.avi", [noisy(scene(), rng) for _ in range(24)])
    for i, frame in enumerate(decoded(steady)):
        cv2.imwrite(str(good / f"{i:03d}.png"), frame)
    history = folder / "line1"
    calibrated = run_edge_in_process(
        "calibrate", "--from", DEMO / "bundle", "--normal", good, "--method", "quantile:0.99", "--out", history
    )
    assert calibrated.returncode == 0, calibrated.stderr
    videos = {}
    for i, (name, (frames, _)) in enumerate(shift_videos(np.random.default_rng(0)).items()):
        if name in EXPECTED:
            videos[name] = record(folder / f"{i}.avi", frames)
    return folder, history, videos


def run_video(folder: Path, history: Path, video: Path, name: str, sinks: dict | None = None):
    config = folder / f"{name}.yaml"
    settings = json.loads(json.dumps(SHORT))
    settings["sinks"].update(sinks or {})
    config.write_text(yaml.safe_dump(settings))
    out = folder / f"out-{name}"
    result = run_edge_in_process(
        "run", "--config", config, "--bundle", history, "--video", video, "--out", out, "--threads", "1"
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(x) for x in result.stdout.splitlines() if x.startswith('{"type"')]
    return result, events


@pytest.mark.parametrize("name", ["steady", "brightness ramp", "growing blur"])
def test_each_recorded_shift_raises_its_event_through_edge_run_and_a_steady_line_none(line, name):
    folder, history, videos = line
    result, events = run_video(folder, history, videos[name], name.replace(" ", "-"))
    raised = {(e["type"], e["state"]) for e in events if e["state"] != "ok"}
    assert raised == EXPECTED[name], result.stderr
    for event in events:  # what to do is said with it, once on stderr
        assert event["advice"] and f"{event['type']}: {event['previous']} -> {event['state']}" in result.stderr


def test_a_view_shift_raises_moved_and_drift_at_the_broker_and_the_webhook(line, tmp_path):
    folder, history, videos = line
    broker = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    receiver = Receiver()
    try:
        subscriber = Subscriber(broker.port, "shifts/#", client_id="t-shifts", clean=True)
        sinks = {
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "prefix": "shifts"},
            "webhook": {"url": receiver.url, "backoff_s": 0.05},
        }
        result, events = run_video(folder, history, videos["view shift 5 %"], "shift", sinks)
        raised = {(e["type"], e["state"]) for e in events if e["state"] != "ok"}
        assert raised == EXPECTED["view shift 5 %"], result.stderr
        drift = next(e for e in events if e["type"] == "drift")
        # How far, against what, at which threshold: the figures an operator reads.
        assert drift["detail"]["psi"] > drift["detail"]["level"] == 0.5
        calibrated = json.loads((history / "v2" / "bundle.json").read_text())["threshold"]["value"]
        assert drift["detail"]["threshold"] == calibrated
        ids = [e["id"] for e in events]

        def at_broker():
            return [json.loads(p)["id"] for t, p, _ in subscriber.messages if t.endswith("/health")]

        assert wait_until(lambda: at_broker() == ids, 15), (at_broker(), ids)
        assert wait_until(lambda: [i for i in receiver.ids() if i in ids] == ids, 15)
        kinds = {r["body"]["id"]: r["body"].get("type") for r in receiver.requests}
        assert [kinds[i] for i in ids] == [e["type"] for e in events]
        subscriber.close()
    finally:
        receiver.stop()
        broker.stop()
