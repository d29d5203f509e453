"""The ONNX path: `edge export --format onnx` and `edge run --runtime onnxruntime` (CPU provider).

Real tf2onnx, real onnxruntime quantization (QDQ) and inference, on the session's tiny conv
autoencoder; the same detectors and scores as LiteRT, through edge.runtime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_edge_in_process
from test_runtime_delegates import mixed_images

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def onnx_int8(trained_run, tmp_path_factory):
    from export.onnx import export_onnx

    return export_onnx(trained_run, "int8", out=tmp_path_factory.mktemp("onnx"), log=_quiet)


@pytest.fixture(scope="module")
def two_bundles(int8_model, onnx_int8, synthetic_mvtec, tmp_path_factory):
    """(LiteRT int8 bundle, ONNX int8 bundle, mixed test images), each calibrated through its own runtime."""
    from calibration.calibrate import calibrate

    base = tmp_path_factory.mktemp("onnx_bundles")
    options = dict(method="f1", progress=False, log=_quiet)
    lite = calibrate(int8_model, synthetic_mvtec, out=base / "lite", **options)
    onnx = calibrate(onnx_int8, synthetic_mvtec, out=base / "onnx", **options)
    return lite.path, onnx.path, mixed_images(synthetic_mvtec, base / "mixed")


def test_onnx_export_of_the_conv_autoencoder_has_parity_with_keras(trained_run, onnx_int8, synthetic_mvtec):
    from edge.bundle import read_card
    from edge.runtime import open_model, options_for_file
    from export.autoencoder import parity
    from train.data import frames_from_files
    from train.runinfo import load_keras_run_model

    assert onnx_int8.name == "model_int8.onnx" and onnx_int8.with_name("model_int8.onnx.json").is_file()
    card = read_card(onnx_int8)
    assert card.kind == "autoencoder" and card.quantization == "int8"
    assert card.extra["parity"]["score_pearson"] > 0.9  # 6 validation images, as the TFLite export's line
    model = open_model(onnx_int8, options_for_file(onnx_int8))
    assert model.runtime.endswith("CPUExecutionProvider") and model.input.dtype == "float32"
    # unseen good and defective images: the ranking kept, as tests/test_export.py asks of TFLite int8
    files = sorted((synthetic_mvtec / "test").rglob("*.png"))
    frames, _ = frames_from_files([str(f) for f in files], card.preprocessing)
    result = parity(load_keras_run_model(trained_run, "test"), onnx_int8, frames, card.score, "test")
    assert result.score_pearson > 0.98


def test_onnxruntime_gives_the_same_alerts_as_litert(two_bundles, tmp_path):
    from edge.bundle import load_bundle

    lite, onnx, images = two_bundles
    assert load_bundle(onnx).manifest.threshold.runtime.startswith("onnxruntime")
    runs = {}
    for name, bundle, flags in (("lite", lite, ()), ("onnx", onnx, ("--runtime", "onnxruntime"))):
        r = run_edge_in_process("run", "--bundle", bundle, "--images", images, "--out", tmp_path / name, *flags)
        assert r.returncode == 0, r.stderr
        runs[name] = r
    assert "model model_int8.onnx on onnxruntime" in runs["onnx"].stderr
    assert "CPUExecutionProvider" in runs["onnx"].stderr
    alerted = {
        k: sorted(json.loads(x)["source"] for x in r.stdout.splitlines() if x.startswith("{")) for k, r in runs.items()
    }
    assert alerted["onnx"] == alerted["lite"]
    assert alerted["onnx"] and all(name.startswith("defect_") for name in alerted["onnx"])


def test_onnx_detector_scores_like_litert(two_bundles, synthetic_mvtec):
    from edge.bundle import load_bundle
    from edge.detector import make_detector
    from edge.preprocess import Preprocessor
    from edge.runtime import RuntimeOptions
    from train.data import load_images

    lite, onnx, images = two_bundles
    onnx_detector = make_detector(load_bundle(onnx), 1, RuntimeOptions(runtime="onnxruntime"))
    lite_detector = make_detector(load_bundle(lite), 1)
    loaded = load_images(sorted(images.glob("*.png")), what="test images")
    frames = Preprocessor(load_bundle(lite).manifest.preprocessing).prepare_batch(loaded.images)
    a, b = lite_detector.detect(frames).scores, onnx_detector.detect(frames).scores
    assert np.corrcoef(a, b)[0, 1] > 0.98


@pytest.mark.parametrize(
    "which, flags, expected",
    [
        ("onnx", (), "is an ONNX model: run it with --runtime onnxruntime"),
        ("lite", ("--runtime", "onnxruntime"), "has no ONNX model (model_int8.tflite is TFLite)"),
        ("onnx", ("--runtime", "onnxruntime", "--provider", "cuda"), "'cuda' is not in this onnxruntime"),
        ("onnx", ("--runtime", "onnxruntime", "--delegate", "edgetpu"), "delegates are LiteRT settings"),
        ("lite", ("--provider", "cpu"), "providers are ONNX Runtime settings"),
    ],
)
def test_wrong_runtime_for_the_model_is_one_line(two_bundles, tmp_path, which, flags, expected):
    lite, onnx, images = two_bundles
    bundle = lite if which == "lite" else onnx
    r = run_edge_in_process("run", "--bundle", bundle, "--images", images, "--out", tmp_path / "out", *flags)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], r.stderr


def test_calibrate_an_onnx_model_with_the_litert_runtime_is_one_line(onnx_int8, synthetic_mvtec, tmp_path):
    r = run_edge_in_process(
        "calibrate", onnx_int8, "--normal", synthetic_mvtec, "--out", tmp_path / "b", "--runtime", "litert"
    )
    assert r.returncode != 0 and "is an ONNX model: run it with --runtime onnxruntime" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
