"""Bundle versions on the device (edge/bundle_history.py) and `edge bundles` (issue 15).

Histories are made by hand here (a pretend model file, hand-written manifests: nothing is scored);
tests/test_device_calibration.py makes them with `edge calibrate --from`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_edge, run_edge_in_process

from edge import bundle_history
from edge.alert import Alert
from edge.bundle import Calibration, Manifest, ModelInfo, TensorSpec, Threshold, load_bundle, write_bundle
from edge.errors import EdgeError
from edge.preprocess import Preprocessing
from edge.scoring import ScoreConfig


def _manifest(version: int, parent: str | None, threshold: float) -> Manifest:
    spec = TensorSpec(shape=[1, 8, 8, 1], dtype="uint8", scale=1 / 255, zero_point=0)
    return Manifest(
        model=ModelInfo(file="model.tflite", sha256="", quantization="int8", input=spec, outputs=[spec]),
        preprocessing=Preprocessing(width=8, height=8),
        score=ScoreConfig(kind="max_blur"),
        threshold=Threshold(value=threshold, method="quantile:0.99"),
        id=f"id{version}" if parent else None,
        version=version if parent else None,
        parent=parent,
        calibration=Calibration(method="quantile:0.99", data="frames", normal=30 + version) if parent else None,
    )


@pytest.fixture
def history(tmp_path) -> Path:
    """line1/ with v1 (a plain, pre-version bundle), v2 and v3; v3 current."""
    model = tmp_path / "model.tflite"
    model.write_bytes(b"pretend flatbuffer")
    plain = write_bundle(tmp_path / "plain", _manifest(1, None, 0.10), model)
    root = tmp_path / "line1"
    bundle_history.start_history(plain.path, root)
    for number, parent in ((2, plain.id), (3, "id2")):
        staged = bundle_history.staging_folder(root)
        write_bundle(staged, _manifest(number, parent, number / 10), model)
        bundle_history.add_version(root, staged, number)
    return root


def test_a_history_loads_as_its_current_version(history):
    bundle = load_bundle(history)
    assert bundle.path == history / "v3" and bundle.version == 3 and bundle.id == "id3"
    assert bundle.threshold == pytest.approx(0.3)


def test_old_bundles_without_lineage_load_as_version_1(history):
    plain = load_bundle(history / "v1")
    assert plain.version == 1 and plain.manifest.parent is None
    assert len(plain.id) == 12  # derived from its bundle.json


def test_edge_bundles_lists_the_lineage(history):
    proc = run_edge("bundles", history)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["v1", "v2", "*"]
    assert "id id3  parent id2" in lines[2] and "threshold 0.3 (quantile:0.99)" in lines[2]
    assert "33 normal, 0 skipped, frames" in lines[2] and "(first calibration)" in lines[0]
    rows = [json.loads(line) for line in run_edge_in_process("bundles", history, "--json").stdout.splitlines()]
    assert [(r["version"], r["current"], r["parent"]) for r in rows] == [
        (1, False, None),
        (2, False, rows[0]["id"]),
        (3, True, "id2"),
    ]


def test_rollback_makes_the_previous_version_current(history):
    proc = run_edge_in_process("bundles", history, "--rollback")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"rolled back: v2 (id2) is current in {history}"
    assert load_bundle(history).version == 2
    run_edge_in_process("bundles", history, "--rollback")
    assert load_bundle(history).version == 1
    proc = run_edge_in_process("bundles", history, "--rollback")
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: no version before v1 in {history}: nothing to roll back to"
    assert (history / "current").read_text().strip() == "v1"


def test_rollback_without_a_history_is_one_line(tmp_path):
    proc = run_edge_in_process("bundles", tmp_path, "--rollback")
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "no bundle versions" in line


def test_a_corrupt_version_is_listed_and_never_rolled_back_to(history):
    (history / "v2" / "model.tflite").write_bytes(b"damaged on the card")
    proc = run_edge_in_process("bundles", history)
    assert proc.returncode == 0
    assert "v2  BROKEN: model hash mismatch" in proc.stdout
    proc = run_edge_in_process("bundles", history, "--rollback")
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: cannot roll back to v2: model hash mismatch")
    assert (history / "current").read_text().strip() == "v3"


def test_a_current_pointer_to_nothing_is_one_line(history):
    (history / "current").write_text("v9\n")
    with pytest.raises(EdgeError, match="names 'v9', which is not a version folder"):
        load_bundle(history)
    proc = run_edge_in_process("bundles", history)
    assert proc.returncode != 0 and proc.stderr.startswith("error: ")


def test_only_the_last_versions_are_kept(history, tmp_path):
    for number in range(4, 4 + bundle_history.KEEP):
        staged = bundle_history.staging_folder(history)
        write_bundle(staged, _manifest(number, f"id{number - 1}", 0.5), tmp_path / "model.tflite")
        bundle_history.add_version(history, staged, number)
    kept = [n for n, _ in bundle_history.version_folders(history)]
    assert kept == list(range(4, 4 + bundle_history.KEEP))
    assert not (history / ".staging").exists()


def test_alerts_carry_the_bundle_that_raised_them():
    alert = Alert(source="cam", frame_index=1, score=0.5, threshold=0.4, bundle_id="id3", bundle_version=3)
    d = alert.to_dict()
    assert (d["bundle_id"], d["bundle_version"]) == ("id3", 3)
    assert Alert.from_dict(d).bundle_version == 3
    assert "bundle_id" not in Alert(source="cam", frame_index=1, score=0.5, threshold=0.4).to_dict()
