"""The pieces of the bundle hot swap (edge/swap.py) and the drift watch that follows the threshold in
force (issue 15), in the test process. The swap under load, as an operator does it, is
tests/test_swap_run.py."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge_in_process

from calibration.health_reference import write_health_reference
from edge.app import build_pipeline
from edge.bundle import load_bundle
from edge.bundle_history import add_version, staging_folder, start_history
from edge.config import RunConfig
from edge.decide import LiveThreshold
from edge.drift import DriftConfig, DriftWatch
from edge.errors import EdgeError
from edge.sources import SourceConfig
from edge.swap import BundleSwap, FolderWatch, SwapConfig
from edge.web.sensitivity import calibration_scores
from edge.web.service import set_live_threshold

DEMO = Path(__file__).resolve().parents[1] / "edge" / "demo"


def _quiet(_message: str) -> None:
    pass


def demo_copy(folder: Path, bundle_id: str, version: int, threshold: float, scale: float = 1.0) -> Path:
    """The demo bundle as a new version: its id, version and threshold; its calibration scores times `scale`."""
    shutil.copytree(DEMO / "bundle", folder)
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest.update(id=bundle_id, version=version)
    manifest["threshold"]["value"] = threshold
    (folder / "bundle.json").write_text(json.dumps(manifest))
    scores = folder / "report" / "scores.csv"
    with open(scores, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["score"] = str(float(row["score"]) * scale)
    with open(scores, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


# -- the watched folder ----------------------------------------------------------------------------


def test_a_history_is_offered_once_when_its_current_version_changes(tmp_path):
    history = tmp_path / "line1"
    start_history(DEMO / "bundle", history)
    watch = FolderWatch(history)
    assert watch.poll() is None  # what was there at start is not new
    staged = staging_folder(history)
    shutil.copytree(history / "v1", staged)
    add_version(history, staged, 2)
    assert watch.poll() == history
    assert watch.poll() is None


def test_a_dropped_bundle_is_offered_once_its_files_stop_changing(tmp_path):
    drop = tmp_path / "drop"
    (drop / "old").mkdir(parents=True)
    (drop / "old" / "bundle.json").write_text("{}")
    watch = FolderWatch(drop)
    assert watch.poll() is None
    new = drop / "new"
    new.mkdir()
    (new / "bundle.json").write_text("{}")
    assert watch.poll() is None  # seen once: maybe still being copied
    (new / "model.tflite").write_bytes(b"more")
    assert watch.poll() is None  # it changed since: still settling
    assert watch.poll() == new
    assert watch.poll() is None
    (drop / ".staging").mkdir()  # hidden folders and folders without bundle.json are never offered
    (drop / "notes").mkdir()
    assert watch.poll() is None and watch.poll() is None


def test_a_watched_folder_that_is_not_there_is_one_line(tmp_path):
    with pytest.raises(EdgeError, match="--watch-bundles .*: not a folder"):
        FolderWatch(tmp_path / "nowhere")
    result = run_edge_in_process(
        "run", "--bundle", DEMO / "bundle", "--images", DEMO / "images", "--out", tmp_path / "out",
        "--watch-bundles", tmp_path / "nowhere",
    )  # fmt: skip
    assert result.returncode != 0 and not (tmp_path / "out").exists()
    assert result.stderr.strip().splitlines() == [
        f"error: --watch-bundles {tmp_path / 'nowhere'}: not a folder; give a bundle history or a folder to drop into"
    ]


# -- drift at the threshold in force ------------------------------------------------------------


def test_the_drift_watch_counts_false_alarms_at_the_threshold_in_force():
    calibration = np.linspace(0.0, 1.0, 101)
    live = LiveThreshold(0.92)
    watch = DriftWatch(DriftConfig(window=20), calibration, live)
    recent = np.linspace(0.5, 0.95, 20)
    for score in recent:
        watch.observe(float(score), flagged=score > live.value, now=0.0)
    before = watch.figures()
    live.set(0.62)  # an operator's override, or a swapped bundle's threshold
    after = watch.figures()
    assert (before["threshold"], after["threshold"]) == (0.92, 0.62)
    assert before["false_alarm_rate"] == round(np.mean(recent > 0.92), 4) == 0.1
    assert after["false_alarm_rate"] == round(np.mean(recent > 0.62), 4) == 0.7
    assert before["calibration_false_alarm_rate"] == round(np.mean(calibration > 0.92), 4)
    assert after["calibration_false_alarm_rate"] == round(np.mean(calibration > 0.62), 4)


@pytest.fixture(scope="module")
def pipeline():
    config = RunConfig(bundle=DEMO / "bundle", source=SourceConfig(images=str(DEMO / "images")))
    return build_pipeline(config, _quiet)


def test_a_threshold_moved_on_the_page_is_the_one_drift_counts_at(pipeline):
    scores = calibration_scores(pipeline.bundle)
    calibrated = pipeline.threshold.value
    try:
        set_live_threshold(pipeline, 12.5)
        figures = pipeline.watch.drift.figures()
        assert figures["threshold"] == 12.5
        assert figures["calibration_false_alarm_rate"] == round(scores.rates(12.5)["false_alarm_rate"], 4)
    finally:
        set_live_threshold(pipeline, calibrated)


# -- a swap between two frames ------------------------------------------------------------------


class Collect:
    """A sink that keeps what it is given (alerts and events), as the stdout sink would print them."""

    name = "collect"

    def __init__(self):
        self.alerts, self.events = [], []

    def emit(self, alert):
        self.alerts.append(alert)

    def event(self, event):
        self.events.append(event)

    def close(self):
        pass


def test_after_a_swap_alerts_threshold_and_watch_follow_the_new_bundle(tmp_path):
    config = RunConfig(bundle=DEMO / "bundle", source=SourceConfig(images=str(DEMO / "images")))
    pipeline = build_pipeline(config, _quiet)
    sink = Collect()
    pipeline.attach([sink])
    new = demo_copy(tmp_path / "v2", "line1v2", 2, threshold=-1.0, scale=2.0)
    reference = tmp_path / "first.png"
    shutil.copyfile(sorted(DEMO.glob("images/*.jpg"))[0], reference)
    write_health_reference(new, [reference])
    swap = BundleSwap(
        pipeline, new, SwapConfig(), health=config.health, drift=config.drift, geometry=None, override=None,
        threads=1, log=_quiet,
    )  # fmt: skip
    old_id = pipeline.bundle.id
    prepared = swap.prepare(load_bundle(new), "test")  # the reference view is the smoke frame: no frame seen yet
    assert np.isfinite(prepared.smoke_score)
    swap.ready = prepared
    pipeline.swap = swap
    pipeline.run(_images(tmp_path, 2), max_frames=2)
    assert pipeline.bundle.id == "line1v2" and pipeline.threshold.value == -1.0
    assert [(a.bundle_id, a.bundle_version, a.threshold) for a in sink.alerts] == [("line1v2", 2, -1.0)] * 2
    [event] = sink.events
    assert (event.kind, event.state, event.previous) == ("bundle", "swapped", f"{old_id} v1")
    assert event.detail["new"] == {"id": "line1v2", "version": 2, "path": str(new)}
    # The watch is the new bundle's: its calibration scores, its reference view, the threshold in force.
    drift = pipeline.watch.drift
    rate = calibration_scores(load_bundle(new)).rates(-1.0)["false_alarm_rate"]
    assert drift.threshold == -1.0 and drift.figures()["calibration_false_alarm_rate"] == rate
    assert pipeline.watch.health.checks_off() == []


def _images(tmp_path: Path, count: int):
    from edge.sources import open_source

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, path in enumerate(sorted(DEMO.glob("images/*.jpg"))[:count]):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.imread(str(path)))
    return open_source(config=SourceConfig(images=str(folder)))


def test_a_bundle_whose_model_does_not_take_its_input_is_rejected_in_one_line(tmp_path):
    config = RunConfig(bundle=DEMO / "bundle", source=SourceConfig(images=str(DEMO / "images")))
    pipeline = build_pipeline(config, _quiet)
    sink = Collect()
    pipeline.attach([sink])
    other = demo_copy(tmp_path / "other", "other1", 2, threshold=1.0)
    manifest = json.loads((other / "bundle.json").read_text())
    manifest["preprocessing"].update(width=128, height=128)  # the model still takes 256x256
    (other / "bundle.json").write_text(json.dumps(manifest))
    said = []
    swap = BundleSwap(
        pipeline, other, SwapConfig(), health=config.health, drift=config.drift, geometry=None, override=None,
        threads=1, log=said.append,
    )  # fmt: skip
    running = pipeline.bundle
    swap._attempt("SIGHUP", other)
    assert swap.ready is None and pipeline.bundle is running
    assert said == [
        "bundle swap (SIGHUP) rejected: model model_int8.tflite takes 256x256x1 inputs but preprocessing gives "
        f"128x128x1; the bundle's preprocessing does not fit its model; still running {running.id} v1"
    ]
    [event] = sink.events
    assert (event.kind, event.state) == ("bundle", "rejected")
    assert event.detail["new"] == {"id": "other1", "version": 2, "path": str(other)}


def test_before_the_first_frame_a_bundle_with_a_region_of_interest_waits_for_one(tmp_path):
    from edge.tiling import GeometryConfig

    config = RunConfig(bundle=DEMO / "bundle", source=SourceConfig(images=str(DEMO / "images")))
    pipeline = build_pipeline(config, _quiet)
    new = demo_copy(tmp_path / "v2", "line1v2", 2, threshold=1.0)
    reference = tmp_path / "first.png"
    shutil.copyfile(sorted(DEMO.glob("images/*.jpg"))[0], reference)
    write_health_reference(new, [reference])
    swap = BundleSwap(
        pipeline, new, SwapConfig(), health=config.health, drift=config.drift,
        geometry=GeometryConfig(roi=(0, 0, 200, 200)), override=None, threads=1, log=_quiet,
    )  # fmt: skip
    with pytest.raises(EdgeError, match="no frame seen yet to fit the bundle's region of interest"):
        swap.prepare(load_bundle(new), "SIGHUP")
