"""`edge calibrate` end to end: real int8 .tflite (conftest's int8_model), real images, real bundle.

The model is conftest's tiny autoencoder trained on synthetic_mvtec/train/good; calibration uses
its unseen test/ folders and freshly generated images.
"""

from __future__ import annotations

import base64
import csv
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge_case, run_edge_in_process
from synthetic import write_images

from calibration import calibrate
from calibration.scoring import kind_spec
from edge.bundle import load_bundle
from edge.decide import Decider
from edge.detector import make_detector
from edge.errors import EdgeError
from edge.imaging import read_image
from edge.preprocess import Preprocessor


def _quiet(_message: str) -> None:
    pass


def run_cli(*args: str, real_process: bool = False) -> subprocess.CompletedProcess:
    """`edge calibrate ARGS --no-progress`, inside this process (a fresh interpreter per case costs ~1.2
    CPU-s and the assertions read only the exit status and the output); `real_process` for the one case
    that checks what the process itself prints and returns."""
    return run_edge_case("calibrate", *args, "--no-progress", real_process=real_process)


def read_csv(bundle_path: Path) -> list[dict]:
    with open(bundle_path / "report" / "scores.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="session")
def good_folder(tmp_path_factory) -> Path:
    """40 unseen good 64x64 images (a plain folder, not MVTec layout)."""
    folder = tmp_path_factory.mktemp("cal") / "good"
    write_images(folder, 40, seed=101, size=64)
    return folder


@pytest.fixture(scope="session")
def bad_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cal") / "bad"
    write_images(folder, 20, seed=202, defective=True, size=64)
    return folder


@pytest.fixture(scope="session")
def mvtec_bundle(int8_model, synthetic_mvtec, tmp_path_factory):
    """Calibrated with --normal MVTEC_ROOT --method f1 (test/good vs test/defect)."""
    return calibrate(
        int8_model, synthetic_mvtec, None, "f1", tmp_path_factory.mktemp("b") / "mvtec", progress=False, log=_quiet
    )


@pytest.fixture(scope="session")
def quantile_bundle(int8_model, good_folder, tmp_path_factory):
    return calibrate(
        int8_model,
        good_folder,
        None,
        "quantile:0.9",
        tmp_path_factory.mktemp("b") / "q",
        batch_size=7,
        progress=False,
        log=_quiet,
    )


def test_mvtec_root_calibrates_on_test_folders_only(mvtec_bundle, synthetic_mvtec):
    m = mvtec_bundle.manifest
    # 10 test/good and 10 test/defect; the 60 train/good images trained the model and are not used.
    assert m.normal_scores.count == 10
    assert m.anomalous_scores.count == 10
    files = {Path(row["file"]).parent.name for row in read_csv(mvtec_bundle.path)}
    assert files == {"good", "defect"}
    assert all("train" not in Path(row["file"]).parts for row in read_csv(mvtec_bundle.path))


def test_bundle_loads_with_hash_verified_and_describes_the_model(mvtec_bundle, int8_model):
    bundle = load_bundle(mvtec_bundle.path)
    m = bundle.manifest
    assert bundle.model_path.read_bytes() == Path(int8_model).read_bytes()
    assert m.model.file == Path(int8_model).name
    assert m.model.kind == "autoencoder"
    assert m.model.quantization == "int8"
    assert m.model.input.dtype == "uint8" and m.model.input.shape[1:] == [32, 32, 1]
    assert m.model.outputs[0].dtype == "uint8"
    assert (m.preprocessing.width, m.preprocessing.height, m.preprocessing.color) == (32, 32, "grey")
    assert m.threshold.method == "f1"
    assert m.normal_scores.min <= m.normal_scores.quantiles["0.5"] <= m.normal_scores.max


def test_metrics_at_the_threshold_match_the_scores(mvtec_bundle):
    m = mvtec_bundle.manifest
    k = m.metrics
    rows = read_csv(mvtec_bundle.path)
    normal = np.array([float(r["score"]) for r in rows if r["label"] == "normal"])
    anomalous = np.array([float(r["score"]) for r in rows if r["label"] == "anomalous"])
    t = m.threshold.value
    assert (k["tp"], k["fn"]) == (int(np.sum(anomalous > t)), int(np.sum(anomalous <= t)))
    assert (k["fp"], k["tn"]) == (int(np.sum(normal > t)), int(np.sum(normal <= t)))
    assert k["tp"] + k["fn"] == 10 and k["fp"] + k["tn"] == 10
    assert 0.0 <= k["image_auroc"] <= 1.0
    assert k["image_auroc"] > 0.6  # the blobs and scratches are visible to even this tiny model
    assert k["f1"] == pytest.approx(2 * k["tp"] / (2 * k["tp"] + k["fp"] + k["fn"]))
    assert {r["over_threshold"] for r in rows} <= {"0", "1"}


def test_tampered_model_is_refused(mvtec_bundle, tmp_path):
    copy = shutil.copytree(mvtec_bundle.path, tmp_path / "bundle")
    load_bundle(copy)  # the intact copy is fine
    model = copy / mvtec_bundle.manifest.model.file
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(EdgeError, match="hash mismatch"):
        load_bundle(copy)


def test_report_files_exist_and_html_embeds_the_images(mvtec_bundle):
    report = mvtec_bundle.path / "report"
    for name in ("scores.png", "roc.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (report / "index.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(
        (report / n).read_bytes() for n in ("scores.png", "roc.png")
    )
    assert f"{mvtec_bundle.threshold:.6g}" in page
    assert "image_auroc" in page and 'src="http' not in page  # self-contained
    rows = read_csv(mvtec_bundle.path)
    assert len(rows) == 20
    assert {r["label"] for r in rows} == {"normal", "anomalous"}


def test_threshold_matches_scoring_through_the_device_detector(quantile_bundle, good_folder):
    """Calibrate what you deploy: edge run's own detector, frame by frame, gives the same scores."""
    bundle = load_bundle(quantile_bundle.path)
    detector = make_detector(bundle)
    prep = Preprocessor(bundle.manifest.preprocessing)
    files = sorted(good_folder.glob("*.png"))
    device = np.array([float(detector.detect(prep.prepare(read_image(f))[None]).scores[0]) for f in files])
    calibrated = {Path(r["file"]).name: float(r["score"]) for r in read_csv(bundle.path)}
    np.testing.assert_allclose([calibrated[f.name] for f in files], device, rtol=1e-5, atol=1e-9)
    assert bundle.threshold == pytest.approx(float(np.quantile(device, 0.9)), rel=1e-5)
    # The device flags the same 10% of these normal images that calibration expected.
    flagged = sum(Decider(bundle.threshold).update(s) for s in device)
    assert flagged == 4
    assert bundle.manifest.metrics is None and bundle.manifest.anomalous_scores is None
    assert not (bundle.path / "report" / "roc.png").exists()
    assert (bundle.path / "report" / "scores.png").is_file()


def test_batch_size_does_not_change_scores(int8_model, good_folder, quantile_bundle, tmp_path):
    one = calibrate(
        int8_model, good_folder, None, "quantile:0.9", tmp_path / "b1", batch_size=1, progress=False, log=_quiet
    )
    a = [float(r["score"]) for r in read_csv(one.path)]
    b = [float(r["score"]) for r in read_csv(quantile_bundle.path)]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_unreadable_files_are_skipped_and_mixed_sizes_are_fine(int8_model, tmp_path):
    folder = tmp_path / "messy"
    write_images(folder, 12, seed=5, size=64)
    rng = np.random.default_rng(1)
    cv2.imwrite(str(folder / "big.png"), rng.integers(100, 140, (120, 90), dtype=np.uint8))
    cv2.imwrite(str(folder / "colour.jpg"), rng.integers(100, 140, (48, 48, 3), dtype=np.uint8))
    truncated = (folder / "good_000.png").read_bytes()
    (folder / "cut.png").write_bytes(truncated[: len(truncated) // 2])
    (folder / "junk.jpg").write_bytes(b"not an image at all")
    messages = []
    bundle = calibrate(int8_model, folder, None, "meanstd:3", tmp_path / "b", progress=False, log=messages.append)
    assert bundle.manifest.normal_scores.count == 14
    assert any("skipped 2 unreadable or truncated normal file(s)" in m for m in messages)
    assert "skipped (normal, unreadable or truncated)" in (bundle.path / "report" / "index.html").read_text()
    names = {Path(r["file"]).name for r in read_csv(bundle.path)}
    assert {"big.png", "colour.jpg"} <= names and not {"cut.png", "junk.jpg"} & names


def test_nothing_readable_is_fatal(int8_model, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(EdgeError, match="none of the 3 normal images could be read"):
        calibrate(int8_model, folder, None, "quantile:0.9", tmp_path / "b", progress=False, log=_quiet)
    assert not (tmp_path / "b").exists()


def test_score_override_and_recalibrating_into_an_existing_bundle(int8_model, good_folder, bad_folder, tmp_path):
    out = tmp_path / "b"
    first = calibrate(int8_model, good_folder, bad_folder, "fpr:0.05", out, progress=False, log=_quiet)
    assert first.manifest.score.kind == "mean"
    assert first.manifest.metrics["false_positive_rate"] <= 0.05
    second = calibrate(
        int8_model,
        good_folder,
        None,
        "quantile:0.95",
        out,
        score="max_blur",
        blur_sigma=1.5,
        progress=False,
        log=_quiet,
    )
    m = load_bundle(out).manifest
    assert (m.score.kind, m.score.blur_sigma) == ("max_blur", 1.5)
    assert m.threshold.method == "quantile:0.95" and m.metrics is None
    assert not (out / "report" / "roc.png").exists()  # the old report went with the old bundle
    assert second.threshold != first.threshold


def test_ssim_error_is_recorded_and_the_device_scores_with_it(int8_model, good_folder, tmp_path):
    bundle = calibrate(
        int8_model,
        good_folder,
        None,
        "quantile:0.9",
        tmp_path / "b",
        score="max_blur",
        error="ssim",
        progress=False,
        log=_quiet,
    )
    loaded = load_bundle(bundle.path)
    assert loaded.manifest.score.error == "ssim"
    detector = make_detector(loaded)
    prep = Preprocessor(loaded.manifest.preprocessing)
    files = sorted(good_folder.glob("*.png"))
    device = [float(detector.detect(prep.prepare(read_image(f))[None]).scores[0]) for f in files]
    calibrated = {Path(r["file"]).name: float(r["score"]) for r in read_csv(bundle.path)}
    np.testing.assert_allclose([calibrated[f.name] for f in files], device, rtol=1e-5, atol=1e-9)
    squared = calibrate(
        int8_model, good_folder, None, "quantile:0.9", tmp_path / "s", score="max_blur", progress=False, log=_quiet
    )
    assert squared.manifest.score.error == "squared" and squared.threshold != bundle.threshold


def test_out_folder_holding_something_else_is_refused(int8_model, good_folder, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(EdgeError, match="not empty and holds no bundle"):
        calibrate(int8_model, good_folder, None, "quantile:0.9", out, progress=False, log=_quiet)


def test_training_folder_as_normal_draws_a_note(int8_model, synthetic_mvtec, tmp_path):
    messages = []
    calibrate(
        int8_model,
        synthetic_mvtec / "train" / "good",
        None,
        "quantile:0.9",
        tmp_path / "b",
        progress=False,
        log=messages.append,
    )
    assert any("looks like training images" in m for m in messages)


def test_unknown_model_kind_is_a_clear_error():
    with pytest.raises(EdgeError, match="does not know model kind 'hologram'"):
        kind_spec("hologram")


# --- the command line, as a user would run it (in this process; one case in a real subprocess) ----


def test_cli_calibrates_and_prints_the_bundle_path_last(int8_model, good_folder, bad_folder, tmp_path):
    out = tmp_path / "bundle"
    proc = run_cli(
        int8_model,
        "--normal",
        good_folder,
        "--anomalous",
        bad_folder,
        "--method",
        "f1",
        "--out",
        out,
        "--batch-size",
        "16",
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert "Traceback" not in proc.stderr
    bundle = load_bundle(out)
    assert f"threshold {bundle.threshold:.6g} by f1" in proc.stderr
    assert f"image AUROC {bundle.manifest.metrics['image_auroc']:.4f}" in proc.stderr
    assert f"F1 {bundle.manifest.metrics['f1']:.3f}" in proc.stderr
    assert str(out) in proc.stderr


def test_cli_f1_without_anomalous_is_one_line_and_exit_2(int8_model, good_folder, tmp_path):
    # A real `python -m edge_cli` process: its exit status and stderr, not just main()'s.
    proc = run_cli(int8_model, "--normal", good_folder, "--method", "f1", "--out", tmp_path / "b", real_process=True)
    assert_one_line_error(proc, "--method f1 needs anomalous images", "--anomalous DIR")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("method", ["quantile:abc", "median", "fpr:2"])
def test_cli_bad_method_is_one_line_and_exit_2(int8_model, good_folder, tmp_path, method):
    proc = run_cli(int8_model, "--normal", good_folder, "--method", method, "--out", tmp_path / "b")
    assert_one_line_error(proc, "bad --method", "quantile:0.999 | meanstd:3 | fpr:0.001 | f1")


def test_cli_bad_inputs_are_one_line(int8_model, good_folder, tmp_path):
    assert_one_line_error(run_cli(int8_model, "--normal", tmp_path / "nowhere", "--out", tmp_path / "b"), "not found")
    assert_one_line_error(
        run_cli(int8_model, "--normal", good_folder, "--score", "median", "--out", tmp_path / "b"), "unknown --score"
    )
    assert_one_line_error(
        run_cli(int8_model, "--normal", good_folder, "--error", "abs", "--out", tmp_path / "b"), "unknown --error"
    )
    bare = tmp_path / "bare.tflite"
    shutil.copyfile(int8_model, bare)  # no card beside it
    assert_one_line_error(run_cli(bare, "--normal", good_folder, "--out", tmp_path / "b"), "bare.json not found")


def test_cli_help_explains_the_methods(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # read when the help is drawn
    proc = run_edge_in_process("calibrate", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for needle in ("quantile:Q", "meanstd:K", "fpr:R", "f1 = F1-optimal", "test/good", "--batch-size"):
        assert needle in text


def test_a_threshold_flagging_many_normal_images_draws_a_note(int8_model, good_folder, tmp_path):
    messages = []
    bundle = calibrate(
        int8_model, good_folder, None, "quantile:0.5", tmp_path / "b", progress=False, log=messages.append
    )
    rows = read_csv(bundle.path)
    share = np.mean([r["over_threshold"] == "1" for r in rows])
    assert share == 0.5
    assert any(f"{share:.0%} of the normal images score above the threshold" in m for m in messages)
