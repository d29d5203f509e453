"""The tutorials' baselines (issue 5): the dense autoencoder and the latent-space k-means score.

Real Keras training on synthetic images (tests/synthetic.py), real int8 export, the real TFLite
interpreter through edge's own detectors; `edge train autoencoder --arch dense --latent-kmeans`
and `edge export` through the CLI as a user runs them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_edge, run_edge_in_process

from edge.anomaly_map import AnomalyMapDetector
from edge.bundle import load_bundle
from edge.detector import AutoencoderDetector, make_detector
from edge.imaging import list_images
from edge.model import TFLiteModel
from edge.preprocess import Preprocessing, Preprocessor
from edge.scoring import ScoreConfig
from train.data import load_images

pytest.importorskip("tensorflow")

REPO = Path(__file__).resolve().parent.parent
DENSE = dict(
    size=32,
    arch="dense",
    units=(64,),
    latent=8,
    epochs=15,
    batch_size=8,
    learning_rate=3e-3,
    patience=0,
    seed=0,
    threads=1,
    progress=False,
    log=lambda _m: None,
)


def _frames(folder: Path, size: int = 32) -> np.ndarray:
    loaded = load_images(list_images(folder), what="test images")
    return Preprocessor(Preprocessing(width=size, height=size, color="grey")).prepare_batch(loaded.images)


@pytest.fixture(scope="module")
def dense_run(synthetic_mvtec, tmp_path_factory) -> Path:
    from train.autoencoder import train_autoencoder

    return train_autoencoder(synthetic_mvtec, tmp_path_factory.mktemp("baselines") / "dense", **DENSE)


@pytest.fixture(scope="module")
def kmeans_run(dense_run, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the dense run with 3 latent centroids, exported int8: (run dir, .tflite)."""
    from export.run import export_run
    from train.latent_kmeans import fit_latent_kmeans

    run = tmp_path_factory.mktemp("baselines") / "kmeans"
    shutil.copytree(dense_run, run)
    fit_latent_kmeans(run, 3, log=lambda _m: None)
    return run, export_run(run, "int8", log=lambda _m: None)


def test_dense_autoencoder_trains_exports_int8_and_scores_defects_higher(dense_run, synthetic_mvtec):
    from export.run import export_run

    run = json.loads((dense_run / "run.json").read_text())
    assert run["kind"] == "autoencoder"
    assert run["architecture"]["arch"] == "dense" and run["architecture"]["units"] == [64]
    assert run["architecture"]["name"] == "dense_autoencoder"
    model = export_run(dense_run, "int8", log=lambda _m: None)
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["kind"] == "autoencoder" and card["quantization"] == "int8"
    assert card["extra"]["parity"]["score_pearson"] > 0.9  # int8 scores follow Keras'
    detector = AutoencoderDetector(TFLiteModel(model, num_threads=1), ScoreConfig())
    good = detector.detect(_frames(synthetic_mvtec / "test" / "good"))
    bad = detector.detect(_frames(synthetic_mvtec / "test" / "defect"))
    assert good.maps.shape == (10, 32, 32)
    assert np.mean(bad.scores) > np.mean(good.scores)


def test_nearest_centroid_distance_is_larger_for_a_far_away_latent():
    from train.latent_kmeans import nearest_distance

    rng = np.random.default_rng(0)
    centroids = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    normal = centroids[rng.integers(0, 2, 50)] + rng.normal(0, 0.5, (50, 2)).astype(np.float32)
    far = np.array([[5.0, 8.0]], np.float32)
    d = nearest_distance(np.r_[normal, far], centroids)
    assert d[-1] > d[:-1].max()
    assert d[-1] == pytest.approx(np.hypot(5.0, 8.0), rel=1e-5)  # to the nearer of two equidistant centroids


def test_latent_kmeans_run_exports_one_distance_model_with_device_parity(kmeans_run, synthetic_mvtec):
    from train.latent_kmeans import latent_vectors, nearest_distance
    from train.runinfo import load_keras_run_model

    run_dir, model = kmeans_run
    run = json.loads((run_dir / "run.json").read_text())
    assert run["latent_kmeans"]["k"] == 3 and run["latent_kmeans"]["latent_dim"] == 8
    assert model.name == "latent_kmeans_int8.tflite"
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["kind"] == "anomaly_map" and card["score"]["kind"] == "mean"

    # device parity: the int8 .tflite's score (through edge.anomaly_map) vs float numpy on Keras latents
    frames = np.concatenate([_frames(synthetic_mvtec / "test" / "good"), _frames(synthetic_mvtec / "test" / "defect")])
    lite = AnomalyMapDetector(TFLiteModel(model, num_threads=1), ScoreConfig(kind="mean"))
    device = lite.detect(frames).scores
    with np.load(run_dir / "latent_kmeans.npz") as npz:
        centroids = npz["centroids"]
    reference = nearest_distance(latent_vectors(load_keras_run_model(run_dir, "test"), frames), centroids)
    # int8 quantizes the squared distance in steps of max²/255 (max: the widest representative
    # frame's distance), so this tiny model's small distances come out coarse: measured corr 0.96,
    # max error 21 % of the largest distance (MNIST, 16-dim latents: corr >= 0.995)
    assert np.corrcoef(device, reference)[0, 1] > 0.9
    assert np.abs(device - reference).max() < 0.3 * reference.max()


def test_latent_kmeans_bundle_calibrates_and_runs_through_make_detector(kmeans_run, synthetic_mvtec, tmp_path):
    from calibration.calibrate import calibrate

    _, model = kmeans_run
    bundle = calibrate(
        model,
        synthetic_mvtec,
        None,
        "quantile:0.99",
        tmp_path / "bundle",
        threads=1,
        progress=False,
        log=lambda _m: None,
    )
    loaded = load_bundle(bundle.path)
    detector = make_detector(loaded)
    assert isinstance(detector, AnomalyMapDetector)
    frames = _frames(synthetic_mvtec / "test" / "good")
    result = detector.detect(frames)
    raw = TFLiteModel(model, num_threads=1).predict(frames)[0].ravel()
    np.testing.assert_allclose(result.scores, raw, rtol=1e-5)  # the score IS the model's distance output
    assert 0 < loaded.manifest.threshold.value < raw.max() * 2  # a distance, on the scale of the outputs

    from calibration.evaluate import evaluate  # `edge eval` takes it like any anomaly_map bundle

    results, report = evaluate(
        [bundle.path], synthetic_mvtec, tmp_path / "eval", threads=1, progress=False, log=lambda _m: None
    )
    assert 0.0 <= results[0].image_auroc <= 1.0 and "anomaly_map" in report.read_text()


def _edge(*args: str) -> subprocess.CompletedProcess:
    return run_edge(*args)


def test_cli_dense_latent_kmeans_train_then_export(synthetic_mvtec, tmp_path):
    run = tmp_path / "run"
    result = run_edge_in_process(  # in this process: no second TensorFlow import
        "train",
        "autoencoder",
        "--data",
        str(synthetic_mvtec),
        "--out",
        str(run),
        "--arch",
        "dense",
        "--units",
        "16",
        "--latent",
        "4",
        "--latent-kmeans",
        "2",
        "--size",
        "16",
        "--epochs",
        "1",
        "--threads",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "latent k-means: 2 centroids" in result.stderr
    result = run_edge_in_process("export", str(run), "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    card = json.loads((run / "export" / "latent_kmeans_int8.json").read_text())
    assert card["kind"] == "anomaly_map" and card["extra"]["k"] == 2


def test_cli_refuses_an_unknown_arch_in_one_line(synthetic_mvtec, tmp_path):
    result = _edge(
        "train", "autoencoder", "--data", str(synthetic_mvtec), "--out", str(tmp_path / "r"), "--arch", "lstm"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--arch 'lstm' must be auto" in lines[0] and "Traceback" not in result.stderr
