"""The pretrained-feature model: shipped backbone weights, PaDiM fit, one int8 .tflite, device scoring.

Real TensorFlow and the real TFLite interpreter; the EfficientNet-Lite0 weights are read from the
repo (train/weights), nothing is downloaded. Models are tiny (64 px input, 8 x 8 map).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_edge_case, run_edge_in_process
from conftest import built_once

pytest.importorskip("tensorflow")

from edge.anomaly_map import AnomalyMapDetector, upsample_maps  # noqa: E402
from edge.bundle import load_bundle  # noqa: E402
from edge.detector import make_detector  # noqa: E402
from edge.imaging import list_images, read_image  # noqa: E402
from edge.model import TFLiteModel  # noqa: E402
from edge.preprocess import Preprocessing, Preprocessor  # noqa: E402


def _quiet(_msg: str) -> None:
    pass


def test_backbone_matches_the_torch_reference():
    """The Keras rebuild against the PyTorch model's stage outputs stored by the conversion script."""
    from train.backbone import REFERENCE, build_backbone

    with np.load(REFERENCE) as ref:
        images = ref["images"]
        model = build_backbone(images.shape[1:], stages=(1, 2, 3, 4, 5))
        outputs = model(images, training=False)
        for name, out in zip(("s1", "s2", "s3", "s4", "s5"), outputs, strict=True):
            want = ref[name]
            assert out.shape == want.shape
            assert np.abs(np.asarray(out) - want).max() < 1e-3 * np.abs(want).max()


def test_grey_backbone_equals_rgb_of_a_grey_image():
    from train.backbone import build_backbone

    rng = np.random.default_rng(0)
    grey = rng.uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
    a = np.asarray(build_backbone((32, 32, 1), stages=(2,))(grey))
    b = np.asarray(build_backbone((32, 32, 3), stages=(2,))(np.repeat(grey, 3, axis=-1)))
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_fit_gaussians_distance_is_mahalanobis():
    from train.padim import fit_gaussians

    rng = np.random.default_rng(1)
    feats = rng.normal(0, 1, (400, 1, 1, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0]
    g = fit_gaussians(feats.astype(np.float32), eps=1e-6)
    # a point one standard deviation off along the second axis is at distance ~1
    probe = np.array([3.0, -1.0 + 2.0, 0.0], np.float32).reshape(1, 1, 1, 3)
    assert g.distances(probe)[0, 0, 0] == pytest.approx(1.0, rel=0.1)
    assert g.distances(np.array([3.0, -1.0, 0.0], np.float32).reshape(1, 1, 1, 3))[0, 0, 0] < 0.2


@pytest.fixture(scope="module")
def padim_run(synthetic_mvtec, tmp_path_factory):
    """Built once for the whole run (conftest.built_once): a second xdist worker reuses the files."""
    from export.padim import export_padim
    from train.padim import PadimConfig, train_padim

    def build(folder: Path) -> Path:
        run = train_padim(
            synthetic_mvtec,
            folder / "run",
            # stage 4 (stride 16) is upsampled onto the stride-8 map; 120 channels -> 16 components
            PadimConfig(size=64, grid_stride=8, stages=(3, 4), neighbourhood=3, dims=16),
            threads=1,
            log=_quiet,
        )
        for quantize in ("float32", "int8"):
            model = export_padim(run, quantize, representative=40, synthetic=12, log=_quiet)
            assert model == run / "export" / f"model_{quantize}.tflite", model
        return run

    run = built_once(tmp_path_factory, "padim_run", build)
    return run, {q: run / "export" / f"model_{q}.tflite" for q in ("float32", "int8")}


def _test_frames(root, size=64):
    pre = Preprocessor(Preprocessing(width=size, height=size, color="grey"))
    good = [read_image(p) for p in list_images(root / "test" / "good")]
    bad = [read_image(p) for p in list_images(root / "test" / "defect")]
    return pre.prepare_batch(good), pre.prepare_batch(bad)


def test_one_tflite_outputs_the_anomaly_map(padim_run, synthetic_mvtec):
    from train.padim import build_extractor, extract, load_run

    run, models = padim_run
    good, bad = _test_frames(synthetic_mvtec)
    int8 = TFLiteModel(models["int8"])
    assert int8.input.dtype == "uint8" and int8.outputs[0].dtype == "uint8"
    assert len(int8.outputs) == 1 and int8.outputs[0].shape[1:] == (8, 8, 1)

    cfg, gauss, projection, _ = load_run(run)
    assert projection is not None and projection.matrix.shape == (40 + 80, 16)
    features = extract(build_extractor(cfg), np.concatenate([good, bad]))
    assert features.shape[1:] == (8, 8, 120)
    want = gauss.distances(projection(features), clip=cfg.clip)
    got = TFLiteModel(models["float32"]).predict(np.concatenate([good, bad]))[0][..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * want.max())
    q = int8.predict(np.concatenate([good, bad]))[0][..., 0]
    assert np.corrcoef(q.ravel(), want.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("quant", ["float32", "int8"])
def test_planted_defects_score_higher(padim_run, synthetic_mvtec, quant):
    from edge.bundle import read_card

    _, models = padim_run
    card = read_card(models[quant])
    assert card.kind == "anomaly_map" and card.score.kind == "max_blur"
    detector = AnomalyMapDetector(TFLiteModel(models[quant]), card.score)
    good, bad = _test_frames(synthetic_mvtec)
    g, b = detector.detect(good), detector.detect(bad)
    assert g.maps.shape == (len(good), 64, 64)  # upsampled to the model input for the heatmap
    assert np.median(b.scores) > g.scores.max()
    from calibration.evaluate import image_auroc

    assert image_auroc(np.r_[np.zeros(len(good)), np.ones(len(bad))], np.r_[g.scores, b.scores]) > 0.9


def test_calibrated_bundle_runs_through_make_detector_and_eval(padim_run, synthetic_mvtec, tmp_path):
    from calibration.calibrate import calibrate
    from calibration.evaluate import evaluate

    _, models = padim_run
    bundle = calibrate(
        models["int8"],
        synthetic_mvtec,
        None,
        "quantile:0.99",
        tmp_path / "bundle",
        threads=1,
        progress=False,
        log=_quiet,
    )
    loaded = load_bundle(bundle.path)
    assert loaded.manifest.model.kind == "anomaly_map"
    assert isinstance(make_detector(loaded), AnomalyMapDetector)
    from edge.errors import EdgeError

    with pytest.raises(EdgeError, match="--error ssim applies to autoencoders"):
        calibrate(
            models["int8"],
            synthetic_mvtec,
            None,
            "quantile:0.99",
            tmp_path / "b2",
            error="ssim",
            threads=1,
            progress=False,
            log=_quiet,
        )
    results, report = evaluate([bundle.path], synthetic_mvtec, tmp_path / "eval", threads=1, progress=False, log=_quiet)
    assert results[0].image_auroc > 0.9 and results[0].pixel_auroc > 0.8
    assert "anomaly_map" in report.read_text()


def test_upsample_maps_refuses_a_non_map_output():
    from edge.errors import EdgeError

    assert upsample_maps(np.ones((2, 4, 4, 1), np.float32), (16, 16)).shape == (2, 16, 16)
    with pytest.raises(EdgeError, match="anomaly_map"):
        upsample_maps(np.ones((2, 4, 4, 3), np.float32), (16, 16))


def test_synthetic_defects_change_the_frames():
    from export.representative import synthetic_defects

    frames = np.random.default_rng(0).integers(100, 150, (4, 64, 64, 1)).astype(np.uint8)
    out = synthetic_defects(frames, 6, seed=0)
    assert out.shape == (6, 64, 64, 1)
    # every frame differs from all the originals (blob, scratch or a pasted, rotated patch)
    assert all(min(np.abs(o.astype(int) - f).sum() for f in frames) > 0 for o in out)


def test_cli_feature_model_trains_and_exports_int8_with_progress(synthetic_mvtec, tmp_path):
    """`edge train autoencoder --arch features` + `edge export`, the same export as every model. (The
    default, --arch auto, chooses between this and the memory model: tests/test_auto_arch.py.)"""
    from pathlib import Path

    run = tmp_path / "run"
    proc = run_edge_in_process(  # in this process: no second TensorFlow import
        "train",
        "autoencoder",
        "--arch",
        "features",
        "--data",
        str(synthetic_mvtec),
        "--out",
        str(run),
        "--size",
        "64",
        "--stages",
        "2,3",
        "--stride",
        "16",
        "--dims",
        "8",
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert (run / "padim.npz").is_file() and (run / "run.json").is_file()
    assert json.loads((run / "run.json").read_text())["config"]["dims"] == 8
    proc = run_edge_in_process("export", str(run), "--quantize", "int8")
    assert proc.returncode == 0, proc.stderr
    model = Path(proc.stdout.strip().splitlines()[-1])  # export prints the .tflite path last
    assert model.is_file() and model.with_suffix(".json").is_file()
    assert proc.stdout.splitlines() == [str(model)]  # stdout holds the path alone, for scripts
    assert TFLiteModel(model).outputs[0].shape[1:] == (4, 4, 1)  # 64 px / stride 16
    # Progress over the slow int8 passes (issue 11: minutes of silence on real data). stderr is a
    # pipe here, so plain "what: done/total" lines, each pass counted from 0 to its total.
    for what in ("int8 ranges (backbone)", "int8 refit (training images)", "int8 ranges (whole model)"):
        totals = re.findall(rf"{re.escape(what)}: 0/(\d+)", proc.stderr)
        assert totals and f"{what}: {totals[0]}/{totals[0]}" in proc.stderr, proc.stderr
    assert re.search(r"int8 refit \(training images\): 60/60", proc.stderr)  # every training image
    assert "Traceback" not in proc.stderr and "Saved artifact" not in proc.stderr


@pytest.mark.parametrize(
    "command,bad,needle",
    [
        ("features", ["--stages", "3,x"], "--stages"),
        ("autoencoder", ["--stages", "3,9"], "stage 9"),
        ("autoencoder", ["--stride", "5"], "map stride 5"),
        ("autoencoder", ["--size", "72"], "--size 72"),
    ],
)
def test_cli_train_features_bad_options_are_one_line(synthetic_mvtec, tmp_path, command, bad, needle):

    # The first case as a real process (what it prints and returns), the others in this one.
    args = ("train", command, "--data", str(synthetic_mvtec), "--out", str(tmp_path / "r"), *bad)
    proc = run_edge_case(*args, real_process=bad == ["--stages", "3,x"], timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr
    assert not (tmp_path / "r" / "padim.npz").exists()


def test_trim_drops_planted_defects_from_the_fit():
    """A few outliers among the training images are found by a first fit and left out of the second."""
    from train.padim import fit_robust

    rng = np.random.default_rng(2)
    feats = rng.normal(0, 1, (100, 2, 2, 4)).astype(np.float32)
    # three "defective" training images, each with its own defect somewhere else
    feats[0, 0, 0, 0] += 8.0
    feats[1, 1, 1, 2] -= 8.0
    feats[2, 0, 1, 3] += 8.0
    _, keep = fit_robust(feats, eps=0.01, trim=0.03)
    assert not keep[:3].any() and keep[3:].all()
    _, keep_all = fit_robust(feats, eps=0.01, trim=0.0)
    assert keep_all.all()


def test_crossfit_peaks_rank_planted_defects_first_and_robust_z_flags_them():
    from train.padim import SUSPECT_Z, crossfit_peaks, robust_z

    rng = np.random.default_rng(3)
    feats = rng.normal(0, 1, (120, 3, 3, 6)).astype(np.float32)
    for i, (y, x, c) in enumerate([(0, 0, 1), (2, 1, 4), (1, 2, 0)]):
        feats[10 * i + 5, y, x, c] += 9.0  # three defects, each somewhere else
    peaks = crossfit_peaks(feats, eps=0.01)
    z = robust_z(peaks)
    assert set(np.argsort(-z)[:3]) == {5, 15, 25}
    assert (z[[5, 15, 25]] > SUSPECT_Z).all() and (z > SUSPECT_Z).sum() <= 6
    assert robust_z(np.r_[np.zeros(50), 1e6])[-1] > 1e3  # a single outlier does not inflate the scale


def test_train_lists_defective_training_images_for_review(synthetic_mvtec, tmp_path):
    """Defective parts filed among the good ones are named, most suspect first, with a contact sheet."""
    import json
    import shutil
    from pathlib import Path

    import cv2

    from train.padim import PadimConfig, train_padim

    folder = tmp_path / "good"
    shutil.copytree(synthetic_mvtec / "train" / "good", folder)
    defective = sorted((synthetic_mvtec / "test" / "defect").iterdir())[:3]
    for p in defective:
        shutil.copy(p, folder / f"planted_{p.name}")
    logs = []
    run = train_padim(
        folder,
        tmp_path / "run",
        PadimConfig(size=64, grid_stride=8, stages=(3, 4), dims=16),
        threads=1,
        log=logs.append,
    )
    suspects = json.loads((run / "run.json").read_text())["suspects"]
    assert [Path(s["file"]).name.startswith("planted_") for s in suspects[:3]] == [True, True, True]
    assert suspects == sorted(suspects, key=lambda s: -s["z"])
    sheet = cv2.imread(str(run / "suspects.png"))
    assert sheet is not None and sheet.shape[0] >= 200
    assert any("look least like the rest" in m and "planted_" in m for m in logs)


def test_int8_gaussians_are_fitted_on_the_quantized_features(padim_run):
    """Calibrate what you deploy: the int8 model's Gaussians describe ITS OWN (quantized) features.

    Over the images a Gaussian was fitted on, the mean squared Mahalanobis distance is about the
    number of dimensions; for the int8 model that holds only if its head was refitted on the int8
    backbone's features (quantization noise would otherwise read as distance).
    """
    from train.data import frames_from_files
    from train.padim import load_run

    run, models = padim_run
    cfg, _, _, info = load_run(run)
    frames, _ = frames_from_files(info["train_files"], Preprocessing.model_validate(info["preprocessing"]))
    for quant in ("float32", "int8"):
        d = TFLiteModel(models[quant]).predict(frames)[0]
        assert (d**2).mean() == pytest.approx(cfg.dims, rel=0.25), quant
