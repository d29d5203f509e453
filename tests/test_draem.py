"""The DRAEM-style synthetic-defect model: the defect generator, train → export int8 → calibrate → detect.

Real TensorFlow, the real TFLite interpreter and the real CLI (subprocesses); tiny models (32 px
input, a few epochs, one TensorFlow thread) on tests/synthetic.py data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_edge_case, run_edge_in_process
from conftest import built_once
from synthetic import good_image

pytest.importorskip("tensorflow")


def _good_frames(n: int, size: int = 64, color: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.stack([good_image(rng, size, color) for _ in range(n)])
    return frames[..., None] if frames.ndim == 3 else frames


@pytest.mark.parametrize("color", [False, True])
def test_masks_cover_exactly_the_altered_pixels_and_half_stay_clean(color):
    from train.draem import synthetic_anomalies

    frames = _good_frames(40, color=color)
    out, masks = synthetic_anomalies(frames, np.random.default_rng(1))
    assert out.shape == frames.shape and out.dtype == np.uint8 and masks.shape == (40, 64, 64)
    assert set(np.unique(masks)) <= {0.0, 1.0}
    changed = (out != frames).any(axis=-1)
    assert not (changed & (masks == 0)).any()  # nothing outside a mask is touched
    altered = masks.reshape(40, -1).max(axis=1) > 0
    assert altered.sum() == 20  # half the samples are altered ...
    assert not changed[~altered].any()  # ... the other half are returned unchanged
    for i in np.flatnonzero(altered):  # and inside each mask the pixels really differ
        assert changed[i][masks[i] > 0].mean() > 0.5


def test_synthetic_anomalies_vary_and_are_reproducible():
    from train.draem import synthetic_anomalies

    frames = _good_frames(30)
    a, ma = synthetic_anomalies(frames, np.random.default_rng(7))
    b, mb = synthetic_anomalies(frames, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    areas = ma.reshape(30, -1).sum(axis=1)
    assert len(np.unique(areas[areas > 0])) > 5  # many shapes and sizes, not one stamp
    assert areas.max() < 0.9 * 64 * 64  # defects, not whole new images
    all_bad, m = synthetic_anomalies(frames, np.random.default_rng(0), probability=1.0)
    assert (m.reshape(30, -1).max(axis=1) > 0).all()


def test_perlin_noise_is_smooth_and_bounded():
    from train.draem import perlin_noise

    noise = perlin_noise((64, 48), (4, 2), np.random.default_rng(0))
    assert noise.shape == (64, 48) and np.abs(noise).max() <= 1.5 and noise.std() > 0.05
    assert np.abs(np.diff(noise, axis=0)).max() < 0.3  # neighbours are close: smooth blobs, not speckle


@pytest.fixture(scope="module")
def draem_bundle(synthetic_mvtec, tmp_path_factory):
    """`edge train autoencoder --arch draem` → `edge export --quantize int8` → `edge calibrate`, all via the CLI
    in this process (a fresh one would import TensorFlow again; `edge calibrate` as a process is
    tests/test_calibration.py's). Built once for the whole run (conftest.built_once): when xdist
    hands some of these tests to a second worker, it reuses the files instead of training again."""
    work = built_once(tmp_path_factory, "draem", lambda folder: _train_export_calibrate(synthetic_mvtec, folder))
    return work / "run", work / "run" / "export" / "model_int8.tflite", work / "bundle"


def _train_export_calibrate(data: Path, work: Path) -> Path:
    run = work / "run"
    proc = run_edge_in_process(
        "train",
        "autoencoder",
        "--arch",
        "draem",
        "--data",
        data,
        "--out",
        run,
        "--size",
        "32",
        "--epochs",
        "20",
        "--batch-size",
        "8",
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    proc = run_edge_in_process("export", run, "--quantize", "int8")
    assert proc.returncode == 0, proc.stderr
    model = Path(proc.stdout.strip().splitlines()[-1])  # export prints the .tflite path last
    assert model == run / "export" / "model_int8.tflite", proc.stdout
    proc = run_edge_in_process("calibrate", model, "--normal", data, "--out", work / "bundle")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip().splitlines()[-1]) == work / "bundle", proc.stdout
    return work


def test_cli_train_export_calibrate_then_detect(draem_bundle, synthetic_mvtec):
    import json

    from edge.anomaly_map import AnomalyMapDetector
    from edge.bundle import load_bundle
    from edge.detector import make_detector
    from edge.imaging import list_images, read_image
    from edge.model import TFLiteModel
    from edge.preprocess import Preprocessor

    run, model, bundle_dir = draem_bundle
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "anomaly_map" and info["arch"] == "draem" and info["train_files"]
    assert (run / "model.keras").is_file() and (run / "samples.png").is_file()

    lite = TFLiteModel(model)
    assert lite.input.dtype == "uint8" and lite.outputs[0].dtype == "uint8"  # full int8
    assert lite.outputs[0].shape[1:] == (16, 16, 1)  # the map at half the 32 px input

    bundle = load_bundle(bundle_dir)
    assert bundle.manifest.model.kind == "anomaly_map"
    detector = make_detector(bundle)
    assert isinstance(detector, AnomalyMapDetector)
    images = [read_image(p) for p in list_images(synthetic_mvtec / "test" / "defect")]
    frames = Preprocessor(bundle.manifest.preprocessing).prepare_batch(images)
    result = detector.detect(frames)
    assert result.maps.shape == (len(frames), 32, 32)  # upsampled to the model input for the heatmap
    assert np.isfinite(result.scores).all() and (result.scores >= 0).all() and (result.scores <= 1).all()


def test_float_and_int8_maps_agree(draem_bundle, synthetic_mvtec):
    """The int8 ranges include synthetic defects, so the int8 map follows the float one.

    The float map is the run's own Keras model (what export_draem converts as it is): a float32
    .tflite of it agrees with Keras to 4e-7 (max over these pixels), and converting one costs 8 s."""
    import keras

    from edge.imaging import list_images, read_image
    from edge.model import TFLiteModel
    from edge.preprocess import Preprocessing, Preprocessor, to_unit_float

    run, int8, _ = draem_bundle
    pre = Preprocessor(Preprocessing(width=32, height=32, color="grey"))
    frames = pre.prepare_batch([read_image(p) for p in list_images(synthetic_mvtec / "test" / "defect")])
    model = keras.models.load_model(run / "model.keras", compile=False)
    a = np.asarray(model.predict(to_unit_float(frames), verbose=0)).ravel().astype(np.float64)
    b = TFLiteModel(int8).predict(frames)[0].ravel().astype(np.float64)
    diff = np.abs(a - b)
    # Not the max over the 2,560 pixels: that tail value moves with the trained weights, which
    # differ in float rounding from one CPU to another. Measured with the locked versions, seeds
    # 0-5 of this very fixture (benchmarks/results/draem_int8_agreement.md): max |diff| 0.021-0.126
    # (0.131 on the machine that filed issue 11), so `< 0.1` was a coin flip; the 99th percentile
    # 0.013-0.064, mean 0.004-0.012, correlation 0.960-0.998. Same figures, to the digit, with
    # ml-dtypes 0.6 and 0.7 and with oneDNN on and off: no package change moved the map.
    assert np.quantile(diff, 0.99) < 0.1
    assert diff.mean() < 0.03
    assert np.corrcoef(a, b)[0, 1] > 0.95


def test_learns_to_find_drawn_defects(draem_bundle, synthetic_mvtec):
    """Trained only on synthetic defects, the int8 bundle ranks the test split's real blobs and scratches
    above its good images, and its map peaks on them."""
    from calibration.evaluate import image_auroc
    from edge.bundle import load_bundle
    from edge.detector import make_detector
    from edge.imaging import list_images, read_image
    from edge.preprocess import Preprocessor

    bundle = load_bundle(draem_bundle[2])
    detector = make_detector(bundle)
    pre = Preprocessor(bundle.manifest.preprocessing)
    good = pre.prepare_batch([read_image(p) for p in list_images(synthetic_mvtec / "test" / "good")])
    bad = pre.prepare_batch([read_image(p) for p in list_images(synthetic_mvtec / "test" / "defect")])
    g, b = detector.detect(good).scores, detector.detect(bad).scores
    assert image_auroc(np.r_[np.zeros(len(g)), np.ones(len(b))], np.r_[g, b]) > 0.9


@pytest.mark.parametrize(
    "args, words",
    [
        (["--size", "36"], "--size 36"),
        (["--arch", "unet"], "--arch"),
        (["--color", "purple"], "--color"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(synthetic_mvtec, tmp_path, args, words):
    base = [
        "train",
        "autoencoder",
        "--data",
        synthetic_mvtec,
        "--out",
        tmp_path / "r",
        "--epochs",
        "1",
        "--threads",
        "1",
    ]
    if "--arch" not in args:
        base += ["--arch", "draem"]
    # the first case as a real process (its exit status and stderr); the others in this one
    proc = run_edge_case(*base, *args, real_process=args[0] == "--size", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_export_refuses_int8_when_the_training_images_are_gone(draem_bundle, tmp_path):
    import json
    import shutil

    from edge.errors import EdgeError
    from export.draem import export_draem

    run = tmp_path / "run"
    shutil.copytree(draem_bundle[0], run)
    info = json.loads((run / "run.json").read_text())
    info["train_files"] = [str(tmp_path / "moved" / Path(f).name) for f in info["train_files"]]
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(EdgeError, match="training images"):
        export_draem(run, "int8", log=lambda m: None)
