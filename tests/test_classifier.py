"""The crack classifier end to end: train, export int8 with two outputs, CAM on the device,
calibrate a bundle, run it. Synthetic data (tests/synthetic.py: a dark thin line = crack).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge, run_edge_in_process
from conftest import built_once
from synthetic import crack_image, make_crack_classes

from edge.cam import CamHead, cam_maps, heatmaps, peak_location, split_outputs
from edge.errors import EdgeError

SIZE = 32
TINY = dict(size=SIZE, filters=(8, 16, 32), epochs=10, patience=10, batch_size=16, val_split=0.25, seed=0, threads=1)


def _quiet(_message: str) -> None:
    pass


def _edge(*args: str, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    return run_edge(*args, timeout=timeout, env=env)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


# ------------------------------------------------------------------ fixtures (built once per module)


# The data, the run and its int8 export are built once for the whole run (conftest.built_once):
# when xdist hands some of this file's tests to a second worker, it reuses them (they are only read).
@pytest.fixture(scope="module")
def crack_data(tmp_path_factory) -> Path:
    return built_once(
        tmp_path_factory,
        "classifier_crack_data",
        lambda folder: make_crack_classes(folder / "data", n_per_class=64, size=SIZE, seed=0),
    )


@pytest.fixture(scope="module")
def classifier_run(crack_data, tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow")
    from train.classifier import ClassifierConfig, train_classifier

    def train(folder: Path) -> Path:
        return train_classifier(crack_data, folder / "cls", ClassifierConfig(**TINY), progress=False, log=_quiet)

    return built_once(tmp_path_factory, "classifier_run", train)


@pytest.fixture(scope="module")
def classifier_int8(classifier_run, tmp_path_factory) -> Path:
    from export.run import export_run

    return built_once(
        tmp_path_factory, "classifier_int8", lambda _folder: export_run(classifier_run, "int8", log=_quiet)
    )


@pytest.fixture(scope="module")
def classifier_bundle(classifier_int8, crack_data, tmp_path_factory):
    from calibration import calibrate

    return calibrate(
        classifier_int8,
        crack_data / "no_crack",
        crack_data / "crack",
        "f1",
        tmp_path_factory.mktemp("bundles") / "cls",
        progress=False,
        log=_quiet,
    )


# ------------------------------------------------------------------ CAM maths (numpy only)


def _head(rng, channels=6, names=("crack", "no_crack")) -> CamHead:
    return CamHead(
        tuple(names),
        0,
        rng.normal(size=(channels, len(names))).astype(np.float32),
        rng.normal(size=len(names)).astype(np.float32),
    )


def test_cam_mean_plus_bias_is_the_crack_logit():
    """With GAP + dense, the spatial mean of the contrast CAM is exactly the logit behind p(crack)."""
    rng = np.random.default_rng(0)
    head = _head(rng)
    features = rng.random((3, 5, 7, 6)).astype(np.float32)
    logits = features.mean(axis=(1, 2)) @ head.kernel + head.bias
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    _, bias = head.contrast_weights()
    cams = cam_maps(features, head)
    assert cams.shape == (3, 5, 7)
    p_crack = 1.0 / (1.0 + np.exp(-(cams.mean(axis=(1, 2)) + bias)))
    np.testing.assert_allclose(p_crack, probs[:, 0], rtol=1e-5)


def test_heatmap_is_model_sized_nonnegative_and_peaks_where_the_feature_fires():
    head = CamHead(("crack", "no_crack"), 0, np.array([[2.0, -1.0], [0.0, 0.0]], np.float32), np.zeros(2, np.float32))
    features = np.zeros((1, 4, 4, 2), np.float32)
    features[0, 1, 3, 0] = 5.0  # row 1, column 3 of the 4x4 grid
    maps = heatmaps(features, head, (32, 32))
    assert maps.shape == (1, 32, 32) and maps.min() >= 0
    x, y = peak_location(maps[0])
    assert 24 <= x < 32 and 8 <= y < 16  # the cell's area at model resolution


def test_cam_cells_are_placed_on_their_receptive_field_centres():
    """stride 4, offset 3: cell k is centred on pixel 4k + 3, not on the block centre 4k + 1.5."""
    head = CamHead(("crack", "no_crack"), 0, np.array([[1.0, 0.0]], np.float32), np.zeros(2, np.float32), 4.0, 3.0)
    features = np.zeros((1, 8, 8, 1), np.float32)
    features[0, 2, 5, 0] = 1.0
    maps = heatmaps(features, head, (32, 32))
    assert peak_location(maps[0]) == (23, 11)
    plain = heatmaps(features, CamHead(head.class_names, 0, head.kernel, head.bias), (32, 32))
    assert abs(peak_location(plain[0])[0] - 21.5) <= 0.5


def test_cam_alignment_matches_the_receptive_field_of_the_small_cnn():
    tf = pytest.importorskip("tensorflow")
    from train.classifier import build_small_cnn, cam_alignment, two_output_model

    model = build_small_cnn((32, 32, 1), 2, (4, 4, 4))
    for layer in model.layers:  # positive weights: every ReLU passes, so the support is the whole field
        if layer.name.startswith("conv"):
            layer.set_weights([np.ones_like(w) for w in layer.get_weights()])
    stride, offset = cam_alignment(model)
    features = two_output_model(model)
    x = tf.Variable(np.random.default_rng(0).random((1, 32, 32, 1), np.float32))
    with tf.GradientTape() as tape:
        cell = tf.reduce_sum(features(x)[1][0, 3, 5, :])
    ys, xs = np.nonzero(np.abs(tape.gradient(cell, x).numpy()[0, :, :, 0]) > 0)
    # The gradient's support is the receptive field; its centre is where the CAM puts the cell.
    assert (ys.min() + ys.max()) / 2 == stride * 3 + offset
    assert (xs.min() + xs.max()) / 2 == stride * 5 + offset


def test_outputs_are_found_by_shape_not_order():
    probs, feats = np.zeros((2, 2)), np.zeros((2, 4, 4, 8))
    for outputs in ([probs, feats], [feats, probs]):
        p, f = split_outputs(outputs, 2)
        assert p.shape == (2, 2) and f.shape == (2, 4, 4, 8)
    with pytest.raises(EdgeError, match="two outputs"):
        split_outputs([feats], 2)


def test_cam_head_round_trips_through_json_and_refuses_a_bad_one():
    head = _head(np.random.default_rng(1))
    again = CamHead.from_extra(json.loads(json.dumps(head.to_extra())))
    assert again.class_names == head.class_names and again.positive_class == "crack"
    np.testing.assert_allclose(again.kernel, head.kernel, rtol=1e-6)
    with pytest.raises(EdgeError, match="re-export"):
        CamHead.from_extra({"class_names": ["a", "b"], "positive_class": "a"})
    bad = head.to_extra() | {"dense_kernel": [[1.0, 2.0, 3.0]]}
    with pytest.raises(EdgeError, match="shape"):
        CamHead.from_extra(bad)


# ------------------------------------------------------------------ training


def test_training_writes_the_run_folder(classifier_run):
    run = json.loads((classifier_run / "run.json").read_text())
    assert run["kind"] == "classifier"
    assert run["class_names"] == ["crack", "no_crack"] and run["positive_class"] == "crack"
    assert run["preprocessing"]["width"] == SIZE and run["preprocessing"]["color"] == "rgb"
    assert len(run["val_files"]) == 32 and not set(run["val_files"]) & set(run["train_files"])
    metrics = json.loads((classifier_run / "metrics.json").read_text())
    val = metrics["validation"]
    assert val["accuracy"] >= 0.85, val
    assert set(val["per_class"]) == {"crack", "no_crack"}
    assert np.sum(val["confusion_matrix"]["rows_true_cols_predicted"]) == 32
    for name in ("model.keras", "history.json", "history.png", "cam_grid.png"):
        assert (classifier_run / name).stat().st_size > 0
    assert cv2.imread(str(classifier_run / "cam_grid.png")) is not None


# ------------------------------------------------------------------ export


def test_int8_export_has_uint8_input_and_two_outputs(classifier_int8):
    from edge.bundle import read_card
    from edge.model import TFLiteModel

    model = TFLiteModel(classifier_int8)
    assert model.input.dtype == "uint8" and model.input.shape[1:] == (SIZE, SIZE, 3)
    ranks = sorted(len(o.shape) for o in model.outputs)
    assert ranks == [2, 4]
    card = read_card(classifier_int8)
    assert card.kind == "classifier" and card.quantization == "int8"
    head = CamHead.from_extra(card.extra)
    feature_channels = [o.shape[-1] for o in model.outputs if len(o.shape) == 4][0]
    assert head.kernel.shape == (feature_channels, 2)
    parity = card.extra["parity"]
    assert parity["decision_agreement"] >= 0.9
    assert abs(parity["tflite_accuracy"] - parity["keras_accuracy"]) <= 0.1


# ------------------------------------------------------------------ device side


def _fresh_cracks(n: int, seed: int = 123):
    rng = np.random.default_rng(seed)
    images, lines = [], []
    for _ in range(n):
        image, points = crack_image(rng, SIZE, crack=True)
        images.append(image)
        lines.append(points)
    return images, lines


def _distance_to_polyline(x: float, y: float, points: np.ndarray) -> float:
    best = np.inf
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        d = np.array([x1 - x0, y1 - y0], float)
        t = np.clip(np.dot([x - x0, y - y0], d) / max(np.dot(d, d), 1e-9), 0, 1)
        best = min(best, float(np.hypot(x - (x0 + t * d[0]), y - (y0 + t * d[1]))))
    return best


def test_detector_scores_cracks_high_and_its_cam_peaks_on_the_line(classifier_bundle):
    from edge.detector import ClassifierDetector, make_detector
    from edge.preprocess import Preprocessor

    detector = make_detector(classifier_bundle, num_threads=1)
    assert isinstance(detector, ClassifierDetector) and detector.label == "crack"
    prep = Preprocessor(classifier_bundle.manifest.preprocessing)
    cracks, lines = _fresh_cracks(24)
    rng = np.random.default_rng(7)
    plain = [crack_image(rng, SIZE, crack=False)[0] for _ in range(24)]

    det = detector.detect(prep.prepare_batch(cracks + plain))
    assert det.scores.shape == (48,) and det.maps.shape == (48, SIZE, SIZE)
    assert det.maps.min() >= 0
    np.testing.assert_allclose(det.probabilities.sum(axis=1), 1.0, atol=0.02)
    assert det.scores[:24].mean() > det.scores[24:].mean() + 0.5

    # The CAM's peak should lie on (or next to) the drawn crack: within one feature cell (4 px).
    near = [
        _distance_to_polyline(*peak_location(det.maps[i]), lines[i]) <= 4.0
        for i in range(24)
        if det.scores[i] > classifier_bundle.threshold
    ]
    assert len(near) >= 18 and np.mean(near) >= 0.8, near


def test_calibrated_bundle_carries_the_cam_head(classifier_bundle):
    from edge.bundle import load_bundle

    bundle = load_bundle(classifier_bundle.path)
    m = bundle.manifest
    assert m.model.kind == "classifier" and m.threshold.method == "f1"
    assert 0.0 < m.threshold.value < 1.0
    assert m.extra["positive_class"] == "crack" and len(m.extra["dense_bias"]) == 2
    assert m.metrics and m.metrics["image_auroc"] >= 0.9
    assert (bundle.path / "report" / "index.html").is_file()


def test_edge_run_with_a_classifier_bundle_labels_alerts_crack(classifier_bundle, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cracks, _ = _fresh_cracks(4, seed=99)
    rng = np.random.default_rng(5)
    for i, image in enumerate(cracks):
        cv2.imwrite(str(folder / f"a_crack_{i}.png"), image)
    for i in range(4):
        cv2.imwrite(str(folder / f"b_plain_{i}.png"), crack_image(rng, SIZE, crack=False)[0])
    out = tmp_path / "out"
    result = _edge("run", "--bundle", str(classifier_bundle.path), "--images", str(folder), "--out", str(out))
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if line.strip()]
    assert alerts and all(a["label"] == "crack" for a in alerts)
    flagged = {a["source"] for a in alerts}
    assert sum(name.startswith("a_crack") for name in flagged) >= 3
    assert sum(name.startswith("b_plain") for name in flagged) <= 1
    assert all(Path(a["annotated"]).is_file() for a in alerts)


# ------------------------------------------------------------------ CLI: bad input is one line, exit 2


def test_imagenet_weights_offline_is_one_clear_line(crack_data, tmp_path, monkeypatch):
    """In this process (a fresh one spends 12 CPU-s importing TensorFlow again): an empty Keras cache
    and a dead proxy make the download fail the same way with or without internet."""
    pytest.importorskip("tensorflow")  # training is desktop-only
    import urllib.request

    import keras.src.backend.config as keras_config

    # Keras reads KERAS_HOME once, at import: its cache folder is set where get_file looks it up
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras"))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    # urlopen builds its global opener, proxies included, on first use: the one built with the dead
    # proxy here must not outlive the test (it sent every later request of this worker to port 9)
    monkeypatch.setattr(urllib.request, "_opener", None)
    result = run_edge_in_process(
        "train",
        "classifier",
        "--data",
        str(crack_data),
        "--out",
        str(tmp_path / "run"),
        "--backbone",
        "mobilenetv2",
        "--weights",
        "imagenet",
    )
    line = _one_error_line(result)
    assert "ImageNet weights" in line and "--weights none" in line
    assert not (tmp_path / "run" / "model.keras").exists()
    assert not list((tmp_path / "keras").rglob("*.h5"))  # nothing was fetched into the cache


def test_bad_data_folders_are_one_clear_line(crack_data, tmp_path):
    pytest.importorskip("tensorflow")  # training is desktop-only
    one_class = tmp_path / "one"
    (one_class / "crack").mkdir(parents=True)
    for p in (crack_data / "crack").iterdir():
        (one_class / "crack" / p.name).write_bytes(p.read_bytes())
    line = _one_error_line(_edge("train", "classifier", "--data", str(one_class), "--out", str(tmp_path / "r1")))
    assert "two sub-folders" in line
    # the first case as a real process (its exit status and stderr); the others in this one
    line = _one_error_line(
        run_edge_in_process("train", "classifier", "--data", crack_data, "--out", tmp_path / "r2", "--positive", "rust")
    )
    assert "rust" in line and "--positive" in line
    line = _one_error_line(
        run_edge_in_process("train", "classifier", "--data", tmp_path / "missing", "--out", tmp_path / "r3")
    )
    assert "not found" in line


# ------------------------------------------------------------------ two stages: autoencoder, then classifier


@pytest.fixture(scope="module")
def alert_on_everything_ae(int8_model, synthetic_mvtec, tmp_path_factory):
    """The shared tiny autoencoder as a bundle whose threshold (0) flags every frame.

    This isolates the second stage: which label each flagged frame gets.
    """
    from calibration import calibrate
    from edge.bundle import load_bundle, write_bundle

    bundle = calibrate(
        int8_model,
        synthetic_mvtec,
        None,
        "quantile:0.99",
        tmp_path_factory.mktemp("bundles") / "ae",
        progress=False,
        log=_quiet,
    )
    manifest = bundle.manifest.model_copy(deep=True)
    manifest.threshold.value = 0.0
    manifest.threshold.method = "test: every frame"
    write_bundle(bundle.path, manifest, bundle.model_path)
    return load_bundle(bundle.path)


def test_second_stage_names_cracks_and_leaves_other_anomalies_unknown(
    alert_on_everything_ae, classifier_bundle, tmp_path
):
    folder = tmp_path / "frames"
    folder.mkdir()
    cracks, _ = _fresh_cracks(3, seed=31)
    rng = np.random.default_rng(8)
    for i, image in enumerate(cracks):
        cv2.imwrite(str(folder / f"a_crack_{i}.png"), image)
    for i in range(3):
        # A crack-free surface: flagged by the (threshold 0) first stage, not a crack for the second.
        cv2.imwrite(str(folder / f"b_other_{i}.png"), crack_image(rng, SIZE, crack=False)[0])
    out = tmp_path / "out"
    result = _edge(
        "run",
        "--bundle",
        str(alert_on_everything_ae.path),
        "--classifier",
        str(classifier_bundle.path),
        "--images",
        str(folder),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "second stage" in result.stderr
    alerts = {a["source"]: a for a in map(json.loads, (out / "events.jsonl").read_text().splitlines())}
    assert len(alerts) == 6
    labels = {name: a["label"] for name, a in alerts.items()}
    assert sum(labels[f"a_crack_{i}.png"] == "crack" for i in range(3)) >= 2, labels
    assert all(labels[f"b_other_{i}.png"] == "unknown anomaly" for i in range(3)), labels
    for a in alerts.values():
        verdict = a["extra"]["classifier"]
        assert verdict["label"] == a["label"] and 0.0 <= verdict["probability"] <= 1.0
        assert Path(a["annotated"]).is_file()
        assert a["threshold"] == 0.0  # the first stage decided the alert; its threshold is reported


def test_second_stage_refuses_an_autoencoder_bundle(alert_on_everything_ae):
    from edge.second_stage import SecondStage

    with pytest.raises(EdgeError, match="classifier bundle"):
        SecondStage(alert_on_everything_ae)


def test_tile_around_picks_the_tile_under_the_anomaly():
    from edge.second_stage import tile_around

    tiles = [(0, 0, 32, 32), (24, 0, 32, 32), (0, 24, 32, 32), (24, 24, 32, 32)]
    assert tile_around(tiles, None, (45, 44, 4, 4)) == (24, 24, 32, 32)
    assert tile_around(tiles, (100, 50, 56, 56), (105, 52, 2, 2)) == (100, 50, 32, 32)


def test_pretrained_backbone_from_a_local_weights_file_trains_and_exports(crack_data, tmp_path):
    """--backbone mobilenetv2 --weights PATH: loads the file, freezes it, exports two outputs with a CAM head."""
    pytest.importorskip("tensorflow")
    import keras

    from edge.bundle import read_card
    from edge.model import TFLiteModel
    from export.run import export_run
    from train.classifier import ClassifierConfig, train_classifier

    weights = tmp_path / "mobilenetv2_no_top.weights.h5"
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    base.save_weights(weights)
    run = train_classifier(
        crack_data,
        tmp_path / "run",
        ClassifierConfig(
            size=SIZE,
            backbone="mobilenetv2",
            weights=str(weights),
            epochs=1,
            batch_size=32,
            val_split=0.25,
            threads=1,
        ),
        progress=False,
        log=_quiet,
    )
    loaded = keras.models.load_model(run / "model.keras", compile=False)
    np.testing.assert_allclose(loaded.get_layer("cam_features").get_weights()[0], base.get_weights()[0])
    model_path = export_run(run, "float32", log=_quiet)
    model = TFLiteModel(model_path)
    assert sorted(len(o.shape) for o in model.outputs) == [2, 4]
    head = CamHead.from_extra(read_card(model_path).extra)
    assert head.kernel.shape == (1280, 2) and head.stride == 32.0


# ------------------------------------------------------------------ issue 19: scores, eval, hint


def test_int8_probabilities_do_not_tie_and_old_bundles_keep_the_model_output(classifier_bundle):
    from dataclasses import replace

    from edge.classifier import ClassifierDetector
    from edge.detector import make_detector
    from edge.preprocess import Preprocessor

    detector = make_detector(classifier_bundle, num_threads=1)
    assert detector.head.float_head  # exports since issue 19: softmax in float from the features
    cracks, _ = _fresh_cracks(24, seed=5)
    frames = Preprocessor(classifier_bundle.manifest.preprocessing).prepare_batch(cracks)
    scores = detector.probabilities(frames)[:, detector.head.positive_index]
    assert len(np.unique(scores)) == len(scores)  # no two images share a probability
    # A bundle exported before (no float head) reads the model's own uint8-quantized output.
    old = ClassifierDetector(detector.model, replace(detector.head, float_head=False))
    steps = old.probabilities(frames)[:, detector.head.positive_index] * 256
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)


def test_classifier_score_is_named_by_its_class_not_mean(classifier_bundle):
    assert classifier_bundle.manifest.describe_score() == "crack probability"
    html = (classifier_bundle.path / "report" / "index.html").read_text()
    assert "crack probability" in html


def test_calibration_hint_after_export_points_at_the_validation_images(classifier_run, classifier_int8):
    from export.classifier import calibration_hint
    from train.runinfo import read_run

    run = read_run(classifier_run)
    hint = calibration_hint(classifier_int8, classifier_run, run)
    folders = classifier_run / "validation"
    assert f"--normal {folders / 'no_crack'} --anomalous {folders / 'crack'}" in hint
    linked = sorted(p.name for p in folders.glob("*/*"))
    assert linked == sorted(Path(f).name for f in run["val_files"])
    assert not set(linked) & {Path(f).name for f in run["train_files"]}


def test_eval_on_class_folders_prints_accuracy_and_confusion_matrices(classifier_bundle, crack_data):
    from cli_helpers import run_edge_in_process

    proc = run_edge_in_process("eval", classifier_bundle.path, "--data", crack_data, "-B", "200", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "accuracy at argmax:" in out and "accuracy at the threshold (crack probability >" in out
    assert out.count("true \\ predicted") == 2
    matrix = [line.split() for line in out.splitlines() if line.strip().startswith(("crack ", "no_crack "))]
    assert sum(int(v) for row in matrix[:2] for v in row[1:]) == 128  # 64 per class, every image once
    assert "crack AUROC" in out
