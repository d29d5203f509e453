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


# -- one bundle carrying both models, each with its own threshold (issue 17) ------------------------


@pytest.fixture(scope="module")
def both_bundle(int8_model, onnx_int8, synthetic_mvtec, tmp_path_factory):
    """`edge calibrate model_int8.tflite --onnx-model model_int8.onnx`: (bundle, mixed test images)."""
    base = tmp_path_factory.mktemp("both")
    r = run_edge_in_process(
        "calibrate", int8_model, "--onnx-model", onnx_int8, "--normal", synthetic_mvtec,
        "--method", "f1", "--no-progress", "--out", base / "both",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return base / "both", mixed_images(synthetic_mvtec, base / "mixed")


def _over_threshold(scores_csv) -> set[str]:
    """The mixed folder's names of the calibration images a model's own threshold flags (its report's CSV)."""
    import csv
    from pathlib import Path

    with open(scores_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    kind = {"normal": "good", "anomalous": "defect"}
    return {f"{kind[r['label']]}_{Path(r['file']).name}" for r in rows if r["over_threshold"] == "1"}


def test_a_bundle_with_both_models_runs_each_with_its_own_threshold(both_bundle, synthetic_mvtec, tmp_path):
    from edge.bundle import load_bundle

    bundle, images = both_bundle
    m = load_bundle(bundle).manifest
    own = m.variant_calibration["onnxruntime"].threshold
    assert m.model.variants == {"onnxruntime": "model_int8.onnx"} and "model_int8.onnx" in m.files
    assert m.threshold.runtime.startswith("ai-edge-litert") and own.runtime.startswith("onnxruntime")
    assert own.value != m.threshold.value and own.false_alarm is not None and own.recall is not None
    assert m.variant_calibration["onnxruntime"].quantization == "int8"
    expected = {
        "lite": (m.threshold, _over_threshold(bundle / "report" / "scores.csv"), ()),
        "onnx": (own, _over_threshold(bundle / "report" / "scores.onnxruntime.csv"), ("--runtime", "onnxruntime")),
    }
    for name, (threshold, flagged, flags) in expected.items():
        r = run_edge_in_process("run", "--bundle", bundle, "--images", images, "--out", tmp_path / name, *flags)
        assert r.returncode == 0, r.stderr
        assert f"threshold {threshold.value:.6g} by f1 [calibrated on {threshold.runtime}]" in r.stderr
        alerts = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        # each runtime alerts on exactly the images its own scores put over its own threshold
        assert {a["source"] for a in alerts} == flagged and flagged
        assert {a["threshold"] for a in alerts} == {float(f"{threshold.value:.6g}")}
        # edge eval judges each model by its own threshold too (F1 there: the same images as calibration's f1)
        r = run_edge_in_process("eval", bundle, "--data", synthetic_mvtec, "--bootstrap", "0", *flags)
        assert r.returncode == 0 and f"at threshold {threshold.value:.4g}," in r.stdout, r.stderr
    info = run_edge_in_process("info", bundle)
    assert f"model model_int8.onnx (--runtime onnxruntime): its own threshold {own.value:.6g} by f1" in info.stdout
    assert f"model model_int8.tflite (default runtime): threshold {m.threshold.value:.6g}" in info.stdout


def test_recalibrating_one_runtime_keeps_the_other(both_bundle, synthetic_mvtec, tmp_path):
    from edge.bundle import load_bundle

    bundle, _ = both_bundle
    parent = load_bundle(bundle).manifest
    good = synthetic_mvtec / "train" / "good"  # 60 frames: more than a recalibration needs
    r = run_edge_in_process(
        "calibrate", "--from", bundle, "--normal", good, "--method", "quantile:0.99", "--runtime", "onnxruntime",
        "--no-progress", "--out", tmp_path / "history",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    v2 = load_bundle(tmp_path / "history").manifest
    assert v2.version == 2 and v2.threshold == parent.threshold  # the .tflite's kept as it was
    onnx = v2.variant_calibration["onnxruntime"]
    assert onnx.threshold.method == "quantile:0.99" and onnx.threshold.runtime.startswith("onnxruntime")
    assert onnx.normal_scores.count == 60 and v2.calibration.normal == 60
    assert (tmp_path / "history" / "v2" / "report" / "scores.csv").is_file()  # the kept one's scores came along
    r = run_edge_in_process("calibrate", "--from", tmp_path / "history", "--normal", good, "--no-progress")
    assert r.returncode == 0, r.stderr
    v3 = load_bundle(tmp_path / "history").manifest
    assert v3.version == 3 and v3.variant_calibration == v2.variant_calibration
    assert v3.threshold.method == "quantile:0.999" and v3.threshold.runtime.startswith("ai-edge-litert")
    # a run on ONNX Runtime swaps the new version in with the ONNX model's own threshold and scores
    from edge.app import build_pipeline
    from edge.config import RunConfig
    from edge.sources import SourceConfig
    from edge.swap import BundleSwap, SwapConfig

    config = RunConfig(bundle=bundle, source=SourceConfig(images=str(good)), runtime="onnxruntime")
    pipeline = build_pipeline(config, _quiet)
    assert pipeline.threshold.value == parent.variant_calibration["onnxruntime"].threshold.value
    from edge.web.status import bundle_identity

    page = bundle_identity(pipeline.bundle)  # what the page's status says runs
    assert page["model"] == "model_int8.onnx" and page["threshold"]["runtime"].startswith("onnxruntime")
    swap = BundleSwap(
        pipeline, tmp_path / "history", SwapConfig(), health=config.health, drift=config.drift, geometry=None,
        override=None, threads=1, log=_quiet,
    )  # fmt: skip
    swap._attempt("test", tmp_path / "history")
    assert swap.ready.threshold == onnx.threshold.value and swap.ready.scores.source == "report/scores.onnxruntime.csv"


def test_an_onnx_model_without_its_own_threshold_says_to_recalibrate(both_bundle, tmp_path):
    import shutil

    bundle, images = both_bundle
    old = tmp_path / "old"
    shutil.copytree(bundle, old)
    raw = json.loads((old / "bundle.json").read_text())
    del raw["variant_calibration"]  # as a bundle put together by hand, before it was recorded
    (old / "bundle.json").write_text(json.dumps(raw))
    r = run_edge_in_process("run", "--bundle", old, "--images", images, "--runtime", "onnxruntime")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "no threshold calibrated on it" in lines[0] and "--runtime onnxruntime" in lines[0]
    assert run_edge_in_process("run", "--bundle", old, "--images", images, "--max-frames", "1").returncode == 0


def test_a_wrong_onnx_model_is_one_line(int8_model, onnx_int8, synthetic_mvtec, tmp_path):
    import shutil

    from edge.bundle import card_path

    other = tmp_path / "other.onnx"  # an export of another run: its card says another input size
    shutil.copyfile(onnx_int8, other)
    card = json.loads(card_path(onnx_int8).read_text())
    card["preprocessing"]["width"] *= 2
    card_path(other).write_text(json.dumps(card))
    cases = {
        int8_model: "is not an ONNX model (.onnx)",
        other: "is not an export of model_int8.tflite's model: its card's preprocessing",
        _identity_onnx(tmp_path / "other_shape.onnx", card_path(onnx_int8)): "is not the same model as model_int8",
    }
    for given, expected in cases.items():
        r = run_edge_in_process(
            "calibrate", int8_model, "--onnx-model", given, "--normal", synthetic_mvtec, "--out", tmp_path / "b"
        )
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and expected in lines[0], r.stderr


def _identity_onnx(path, card):
    """A real .onnx with the export's card but 64x64 frames in and out (another run's shape)."""
    import shutil

    import onnx
    from onnx import TensorProto, helper

    from edge.bundle import card_path

    tensors = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 64, 64, 1]) for n in ("frame", "out")]
    graph = helper.make_graph([helper.make_node("Identity", ["frame"], ["out"])], "other", tensors[:1], tensors[1:])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    shutil.copyfile(card, card_path(path))
    return path
