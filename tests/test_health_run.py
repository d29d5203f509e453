"""What a user of `edge run` sees of the health watch (issue 15): on a recorded 5 % view shift, the
event on stdout, in health.jsonl and in the event store, and the alerts marked while the view is moved."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import yaml
from test_health_drift import DEMO, decoded, record, shift_videos
from test_no_tensorflow import run_without_tensorflow

from calibration.health_reference import write_health_reference


def edge_run(*args: str):
    code = f"""
from edge_cli.app import main
sys.argv = ["edge", *{list(args)!r}]
main()
"""
    return run_without_tensorflow(code)


def demo_bundle_with_reference(folder: Path, reference: Path) -> Path:
    bundle = folder / "bundle"
    shutil.copytree(DEMO / "bundle", bundle)
    write_health_reference(bundle, [reference])
    manifest = json.loads((bundle / "bundle.json").read_text())
    # Every frame over the threshold, so alerts come before and after the shift.
    override = {"threshold": -1e9, "model_sha256": manifest["model"]["sha256"], "history": []}
    (folder / "bundle.threshold.json").write_text(json.dumps(override))
    return bundle


def test_edge_run_sends_a_camera_moved_event_and_marks_the_alerts_meanwhile(tmp_path):
    frames, _ = shift_videos(np.random.default_rng(0))["view shift 5 %"]
    video = record(tmp_path / "shift.avi", frames)
    reference = tmp_path / "calibration.png"
    cv2.imwrite(str(reference), decoded(video)[0])
    bundle = demo_bundle_with_reference(tmp_path, reference)
    config = tmp_path / "edge.yaml"
    # Frames come as fast as they decode: no hold, or the 4 s of moved view would last 0.2 s.
    config.write_text(yaml.safe_dump({"health": {"hold_seconds": 0.0}, "sinks": {"snapshots": False}}))
    out = tmp_path / "out"
    result = edge_run("run", "--config", str(config), "--bundle", str(bundle), "--video", str(video), "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    events = [line for line in lines if line.get("type") == "health"]
    alerts = [line for line in lines if "type" not in line]
    assert [e["state"] for e in events] == ["moved"]
    assert "put it back" in events[0]["advice"] and "health: ok -> moved" in result.stderr
    assert all("health" not in a for a in alerts if a["frame_index"] < 20)
    assert {a.get("health") for a in alerts if a["frame_index"] >= 21} == {"moved"}
    assert [json.loads(x)["state"] for x in (out / "health.jsonl").read_text().splitlines()] == ["moved"]
    with sqlite3.connect(out / "events.db") as db:
        assert db.execute("SELECT type, state FROM health_events").fetchall() == [("health", "moved")]
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == len(alerts)
    assert not any(json.loads(x).get("type") for x in (out / "events.jsonl").read_text().splitlines())
