"""The whole loop: train → int8 TFLite → calibrate → bundle → `edge run` → alerts.

Real TensorFlow for training and export, the real TFLite interpreter for calibration and the
device run, real OpenCV video decoding; the device run happens in a subprocess with TensorFlow
made unimportable, as on a Raspberry Pi.
"""

from __future__ import annotations

import json
import shutil

import cv2
import pytest
from synthetic import write_video
from test_no_tensorflow import run_without_tensorflow

DEFECTIVE_FRAMES = {7, 19, 20}


@pytest.fixture(scope="module")
def bundle(int8_model, synthetic_mvtec, tmp_path_factory):
    from calibration.calibrate import calibrate

    out = tmp_path_factory.mktemp("e2e") / "bundle"
    return calibrate(
        int8_model, synthetic_mvtec, method="f1", score="max_blur", out=out, progress=False, log=lambda m: None
    )


def edge_run(*args: str):
    """`edge run ...` in a fresh process that cannot import TensorFlow."""
    code = f"""
from edge_cli.app import main
sys.argv = ["edge", *{list(args)!r}]
main()
assert "tensorflow" not in sys.modules
"""
    return run_without_tensorflow(code)


def alerts_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_calibrated_bundle_is_int8_and_separates_the_test_split(bundle):
    m = bundle.manifest
    assert m.model.quantization == "int8"
    assert m.model.input.dtype == "uint8" and m.model.outputs[0].dtype == "uint8"
    assert m.threshold.method == "f1"
    assert m.metrics["image_auroc"] >= 0.9


def test_run_over_video_alerts_on_the_defective_frames_only(bundle, tmp_path):
    video = write_video(tmp_path / "line.avi", n_frames=30, defective_frames=DEFECTIVE_FRAMES, size=64, seed=5)
    out = tmp_path / "out"
    result = edge_run("run", "--bundle", str(bundle.path), "--video", str(video), "--out", str(out))
    assert result.returncode == 0, result.stderr
    alerts = alerts_of(result.stdout)
    assert {a["frame_index"] for a in alerts} == DEFECTIVE_FRAMES
    for alert in alerts:
        assert alert["score"] > alert["threshold"] == pytest.approx(bundle.threshold, rel=1e-5)
        assert alert["source"] == "line.avi"
        assert cv2.imread(alert["snapshot"]) is not None
        annotated = cv2.imread(alert["annotated"])
        assert annotated is not None and annotated.shape[:2] == (64, 64)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["id"] for e in events] == [a["id"] for a in alerts]
    assert "30 frames" in result.stderr and "3 alerts" in result.stderr


def test_run_over_image_folder_names_the_defective_files(bundle, synthetic_mvtec, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in sorted((synthetic_mvtec / "test" / "good").glob("*.png"))[:6]:
        shutil.copy(path, folder / f"a_good_{path.name}")
    defects = sorted((synthetic_mvtec / "test" / "defect").glob("*.png"))[:4]
    for path in defects:
        shutil.copy(path, folder / f"b_defect_{path.name}")
    (folder / "c_truncated.png").write_bytes(defects[0].read_bytes()[:100])
    result = edge_run("run", "--bundle", str(bundle.path), "--images", str(folder), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    flagged = {a["source"] for a in alerts_of(result.stdout)}
    assert flagged == {f"b_defect_{p.name}" for p in defects}
    assert "1 unreadable skipped" in result.stderr


def test_model_that_does_not_fit_the_frames_is_one_clear_line(bundle, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(bundle.path, broken)
    manifest = json.loads((broken / "bundle.json").read_text())
    manifest["preprocessing"]["width"] = 48
    (broken / "bundle.json").write_text(json.dumps(manifest))
    result = edge_run("run", "--bundle", str(broken), "--images", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "does not fit" in result.stderr or "takes 32x32" in result.stderr


@pytest.mark.parametrize(
    "source_args, message",
    [
        (["--video", "/nonexistent/line.mp4"], "video not found"),
        (["--camera", "97", "--fail-fast"], "cannot open camera 97"),  # without it, the run waits for it
    ],
)
def test_sources_that_do_not_open_are_one_clear_line(bundle, tmp_path, source_args, message):
    result = edge_run("run", "--bundle", str(bundle.path), *source_args, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr


def test_tampered_bundle_is_refused_before_any_frame(bundle, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(bundle.path, broken)
    model = broken / bundle.manifest.model.file
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    result = edge_run("run", "--bundle", str(broken), "--images", str(tmp_path))
    assert result.returncode == 2
    assert "hash mismatch" in result.stderr and "Traceback" not in result.stderr
