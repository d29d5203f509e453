"""`edge train autoencoder --arch memory`: the position-blind memory model, for parts that move.

A tiny conveyor scene (benchmarks/moving/scene.py at 96 px): in every training frame the parts lie
on the LEFT part of the belt. A good part on the right was never seen there; the memory model must
still call it good (it finds its look elsewhere in its bank) while it flags an orange scrap. The
per-cell Gaussian of the default model, which learns where things usually are, scores that part
higher: the reason the memory model exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_edge_in_process

pytest.importorskip("tensorflow")
cv2 = pytest.importorskip("cv2")

from benchmarks.moving.scene import ORANGE, render  # noqa: E402

SIZE, STRIDE = 96, 8  # a 12 x 12 map
LEFT, RIGHT = (-0.1, 0.45), (0.65, 0.85)  # where parts lie in training; where the moved ones lie


def _with_cap(rng: np.random.Generator) -> np.ndarray:
    """A training-like frame with an orange cap (a foreign object) on a free stretch of belt."""
    image = render(rng, SIZE, x_range=LEFT)
    for _ in range(100):
        x, y = rng.integers(int(0.15 * SIZE), int(0.85 * SIZE), 2)
        if image[y - 12 : y + 12, x - 12 : x + 12].max() < 90:  # belt only: no part under it
            break
    cv2.circle(image, (int(x), int(y)), SIZE // 9, ORANGE, -1, cv2.LINE_AA)
    return image


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("moving")
    rng = np.random.default_rng(0)
    for name, n in (("train", 30), ("calibrate", 10)):
        (root / name).mkdir()
        for i in range(n):
            cv2.imwrite(str(root / name / f"{i:02d}.png"), render(rng, SIZE, x_range=LEFT))
    return {
        "root": root,
        "moved": [render(rng, SIZE, x_range=RIGHT) for _ in range(6)],
        "foreign": [_with_cap(rng) for _ in range(6)],
    }


@pytest.fixture(scope="module")
def bundle(scene) -> Path:
    """The memory model as a user makes it: train, export int8, calibrate, all through the CLI."""
    root = scene["root"]
    run, model, out = root / "run", root / "run" / "export" / "model_int8.tflite", root / "bundle"
    for args in (
        ("train", "autoencoder", "--arch", "memory", "--data", root / "train", "--out", run, "--size", SIZE)
        + ("--stride", STRIDE),
        ("export", run, "--quantize", "int8"),
        ("calibrate", model, "--normal", root / "calibrate", "--method", "meanstd:3", "--out", out, "--no-progress"),
    ):
        result = run_edge_in_process(*args)
        assert result.returncode == 0, result.stderr
    return out


def _scores(detector, preprocessor, frames: list[np.ndarray]) -> np.ndarray:
    return np.array([float(detector.detect(preprocessor.prepare(f)).scores[0]) for f in frames])


def test_one_int8_tflite_that_the_device_detector_runs(bundle):
    from edge.anomaly_map import AnomalyMapDetector
    from edge.bundle import load_bundle
    from edge.detector import make_detector

    loaded = load_bundle(bundle)
    assert loaded.manifest.model.kind == "anomaly_map"
    assert loaded.manifest.card().extra["arch"] == "memory"
    detector = make_detector(loaded)
    assert isinstance(detector, AnomalyMapDetector)
    assert [p.name for p in (bundle.parent / "run" / "export").glob("*.tflite")] == ["model_int8.tflite"]
    (out,) = detector.model.predict(np.zeros((1, SIZE, SIZE, 3), np.uint8))
    assert out.shape == (1, SIZE // STRIDE, SIZE // STRIDE, 1)


def test_flags_a_scrap_but_not_a_good_part_at_a_place_never_seen(bundle, scene):
    from edge.bundle import load_bundle
    from edge.detector import make_detector
    from edge.preprocess import Preprocessor

    loaded = load_bundle(bundle)
    detector, prep = make_detector(loaded), Preprocessor(loaded.manifest.preprocessing)
    threshold = loaded.manifest.threshold.value
    moved, foreign = _scores(detector, prep, scene["moved"]), _scores(detector, prep, scene["foreign"])
    assert (foreign > threshold).all(), (foreign, threshold)
    assert (moved < threshold).all(), (moved, threshold)


def test_the_per_cell_gaussian_scores_the_moved_part_higher(bundle, scene):
    """Same features, a Gaussian per cell (the default model, in float): the moved part stands out."""
    from edge.bundle import load_bundle
    from edge.detector import make_detector
    from edge.imaging import list_images, read_image
    from edge.preprocess import Preprocessor
    from train.padim import PadimConfig, build_extractor, extract, fit_gaussians

    loaded = load_bundle(bundle)
    prep = Preprocessor(loaded.manifest.preprocessing)
    frames = lambda images: np.stack([prep.prepare(i) for i in images])  # noqa: E731
    root = scene["root"]
    train, calib = ([read_image(p) for p in list_images(root / name)] for name in ("train", "calibrate"))
    extractor = build_extractor(PadimConfig(size=SIZE, color="rgb", grid_stride=STRIDE))
    gauss = fit_gaussians(extract(extractor, frames(train)))

    def peak(images):
        return gauss.distances(extract(extractor, frames(images))).reshape(len(images), -1).max(1)

    # relative to the good frames it was calibrated on: the Gaussian's moved part is far out, the memory's is not
    gaussian_ratio = peak(scene["moved"]).min() / peak(calib).max()
    detector = make_detector(loaded)
    memory_ratio = _scores(detector, prep, scene["moved"]).max() / _scores(detector, prep, calib).max()
    assert gaussian_ratio > memory_ratio, (gaussian_ratio, memory_ratio)


def test_coreset_keeps_every_cluster():
    """k-center greedy: with k = number of clusters, one entry from each, however unequal their sizes."""
    from train.memory import coreset

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 50, (5, 232))
    points = np.concatenate(
        [c + rng.normal(0, 1, (n, 232)) for c, n in zip(centres, (500, 200, 50, 10, 1), strict=True)]
    )
    idx, radius = coreset(points, 5)
    cluster = np.repeat(np.arange(5), (500, 200, 50, 10, 1))
    assert sorted(cluster[idx]) == [0, 1, 2, 3, 4]
    assert radius < 0.5 * np.linalg.norm(centres[0] - centres[1])


@pytest.mark.parametrize(
    "extra, images, needle",
    [(["--bank", "0"], 4, "--bank 0 must be a positive number"), ([], 1, "needs at least 2 good images")],
)
def test_bad_input_is_one_line(tmp_path, extra, images, needle):
    data = tmp_path / "good"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(images):
        cv2.imwrite(str(data / f"{i}.png"), render(rng, 64))
    result = run_edge_in_process(
        "train", "autoencoder", "--arch", "memory", "--data", data, "--out", tmp_path / "r", *extra
    )
    assert result.returncode != 0
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "r" / "memory.npz").exists()
