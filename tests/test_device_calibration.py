"""`edge calibrate` on a device install: no scikit-learn, no matplotlib, no TensorFlow (issue 15).

The CLI runs as a subprocess with those packages made unimportable (a meta-path blocker, as
tests/test_no_tensorflow.py blocks TensorFlow), on the tiny int8 model and normal frames laid out
as `edge collect` writes them (OUT/train/good). Its bundle must equal the desktop calibration's on
the same frames; the numpy metrics (calibration.binary_metrics) must equal scikit-learn's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import REPO, run_edge_in_process
from synthetic import write_images

from calibration import binary_metrics
from calibration.calibrate import calibrate
from calibration.metrics import detection_metrics
from calibration.thresholds import f1_threshold

BLOCK_DESKTOP = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = ("sklearn", "matplotlib", "scipy", "tensorflow", "keras", "tf_keras")

    class _DeviceInstall(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: a device install does not have it")
            return None

    sys.meta_path.insert(0, _DeviceInstall())
    from edge_cli.app import main
    main(sys.argv[1:])
    """
)
METHOD = "quantile:0.95"


def edge_on_device(*args) -> subprocess.CompletedProcess:
    """`edge ARGS…` in a fresh interpreter where the desktop packages cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK_DESKTOP, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """Normal frames where `edge collect --out OUT` puts them: OUT/train/good."""
    good = tmp_path_factory.mktemp("collected") / "train" / "good"
    write_images(good, 24, seed=7)
    return good


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "bundle.json").read_text())


def test_device_calibration_equals_the_desktop_one(int8_model, collected, tmp_path):
    proc = edge_on_device(
        "calibrate", int8_model, "--normal", collected, "--method", METHOD, "--out", tmp_path / "dev", "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr
    assert "report skipped: matplotlib is not installed" in proc.stderr
    assert "pip install 'edge-inspect[desktop]'" in proc.stderr
    assert not (tmp_path / "dev" / "report").exists()

    desktop = calibrate(int8_model, collected, None, METHOD, tmp_path / "desk", progress=False, log=lambda _: None)
    device = _manifest(tmp_path / "dev")
    assert device["threshold"] == desktop.manifest.threshold.model_dump()
    assert device["normal_scores"] == desktop.manifest.normal_scores.model_dump()
    assert device["model"]["sha256"] == desktop.manifest.model.sha256
    assert (tmp_path / "desk" / "report" / "index.html").is_file()  # the desktop still gets its report


def test_a_new_version_from_a_bundle_on_the_device(int8_model, collected, tmp_path):
    parent = calibrate(int8_model, collected, None, "quantile:0.999", tmp_path / "b", progress=False, log=lambda _: 0)
    history = tmp_path / "line1"
    proc = edge_on_device(
        "calibrate", "--from", parent.path, "--normal", collected, "--method", METHOD, "--out", history, "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(history / "v2")
    assert (history / "current").read_text().strip() == "v2"
    first, second = _manifest(history / "v1"), _manifest(history / "v2")
    assert second["version"] == 2 and second["parent"] == parent.id and second["id"] != parent.id
    assert second["calibration"] == {
        "method": METHOD,
        "data": str(collected),
        "normal": 24,
        "skipped": 0,
        "on": "device",
    }
    assert second["model"]["sha256"] == first["model"]["sha256"] == parent.manifest.model.sha256
    # the same threshold a desktop calibration sets on the same frames
    desktop = calibrate(int8_model, collected, None, METHOD, tmp_path / "desk", progress=False, log=lambda _: 0)
    assert second["threshold"] == desktop.manifest.threshold.model_dump()
    assert second["normal_scores"] == desktop.manifest.normal_scores.model_dump()

    # `edge run` on the history runs the current version; its alerts name it
    defects = tmp_path / "defects"
    write_images(defects, 3, seed=5, defective=True)
    run = run_edge_in_process("run", "--bundle", history, "--images", defects, "--out", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    alerts = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    alerts = [a for a in alerts if "frame_index" in a]
    assert alerts and {(a["bundle_id"], a["bundle_version"]) for a in alerts} == {(second["id"], 2)}


def test_too_few_frames_is_one_line_and_writes_nothing(int8_model, collected, tmp_path):
    parent = calibrate(int8_model, collected, None, METHOD, tmp_path / "b", progress=False, log=lambda _: 0)
    few = tmp_path / "few"
    write_images(few, 5, seed=3)
    proc = run_edge_in_process("calibrate", "--from", parent.path, "--normal", few, "--out", tmp_path / "h")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"error: only 5 normal frame(s) in {few}; a new bundle version needs at least 20 "
        "(gather more with `edge collect`)"
    ]
    assert not (tmp_path / "h").exists()


def test_a_bundle_for_another_model_is_refused(int8_model, collected, tmp_path):
    parent = calibrate(int8_model, collected, None, METHOD, tmp_path / "b", progress=False, log=lambda _: 0)
    other = tmp_path / "other.tflite"
    other.write_bytes(int8_model.read_bytes() + b"\0")
    proc = run_edge_in_process(
        "calibrate", other, "--from", parent.path, "--normal", collected, "--out", tmp_path / "h"
    )
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "another model" in line
    assert not (tmp_path / "h").exists()


def test_a_plain_bundle_needs_out(int8_model, collected, tmp_path):
    parent = calibrate(int8_model, collected, None, METHOD, tmp_path / "b", progress=False, log=lambda _: 0)
    proc = run_edge_in_process("calibrate", "--from", parent.path, "--normal", collected)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("error: ") and "--out HISTORY" in proc.stderr


def _random_cases(n: int):
    rng = np.random.default_rng(0)
    for _ in range(n):
        n0, n1 = (int(v) for v in rng.integers(1, 30, 2))
        levels = int(rng.choice([3, 10, 1000]))  # few levels: many ties, as int8 scores have
        normal = rng.integers(0, levels, n0) / levels
        anomalous = (rng.integers(0, levels, n1) + rng.integers(0, 3)) / levels
        yield normal, anomalous


def test_numpy_metrics_equal_scikit_learn_to_the_last_bit():
    metrics = pytest.importorskip("sklearn.metrics")
    for normal, anomalous in _random_cases(150):
        labels = np.r_[np.zeros(normal.size, int), np.ones(anomalous.size, int)]
        scores = np.r_[normal, anomalous]
        assert binary_metrics.roc_auc(labels, scores) == metrics.roc_auc_score(labels, scores)
        ours = [*binary_metrics.roc_curve(labels, scores), *binary_metrics.precision_recall_curve(labels, scores)]
        theirs = [*metrics.roc_curve(labels, scores)[:2], *metrics.precision_recall_curve(labels, scores)]
        for mine, sklearn_s in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(mine, sklearn_s)
        threshold = f1_threshold(normal, anomalous)
        found = detection_metrics(normal, anomalous, threshold)
        predicted = (scores > threshold).astype(int)
        p, r, f, _ = metrics.precision_recall_fscore_support(labels, predicted, average="binary", zero_division=0)
        assert (found["precision"], found["recall"], found["f1"]) == (p, r, f)
