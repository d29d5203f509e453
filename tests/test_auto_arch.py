"""`edge train autoencoder --arch auto`: features or memory, chosen by cross-validation on the good images.

Two tiny scenes, 16 px map cells to keep the per-cell Gaussians cheap: aligned tiles at 64 px (a
tile with a notch in one corner and the light falling off across it, always in the same place) must
get the position-aware `features`; parts at random places on a belt at 96 px
(benchmarks/moving/scene.py) must get the position-blind `memory`. Either way the run folder is an
ordinary run of the chosen arch that `edge export` and `edge calibrate` take unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_edge_in_process

cv2 = pytest.importorskip("cv2")

TILE, BELT, STRIDE = 64, 96, 16  # 4 x 4 and 6 x 6 maps
N_GOOD = 24


def _tile(rng: np.random.Generator) -> np.ndarray:
    """An aligned grey tile: same place, same notch, same light fall-off; only the grain varies."""
    yy, xx = np.mgrid[0:TILE, 0:TILE].astype(np.float32) / TILE
    image = np.full((TILE, TILE), 30.0)
    tile = (0.12 < xx) & (xx < 0.88) & (0.12 < yy) & (yy < 0.88)
    image[tile] = 150 + 50 * xx[tile] + rng.normal(0, 6, tile.sum())
    cv2.circle(image, (int(0.2 * TILE), int(0.2 * TILE)), TILE // 12, 30.0, -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:02d}.png"), frame)
    return folder


def _train_auto(data: Path, out: Path, size: int) -> dict:
    result = run_edge_in_process(
        "train", "autoencoder", "--arch", "auto", "--data", data, "--out", out, "--size", size, "--stride", STRIDE
    )
    assert result.returncode == 0, result.stderr
    run = json.loads((out / "run.json").read_text())
    run["stdout"] = result.stdout
    return run


@pytest.fixture(scope="module")
def tiles_run(tmp_path_factory) -> dict:
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("auto_tiles")
    rng = np.random.default_rng(0)
    return _train_auto(_write(root / "good", [_tile(rng) for _ in range(N_GOOD)]), root / "run", TILE)


@pytest.fixture(scope="module")
def belt_run(tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("tensorflow")
    from benchmarks.moving.scene import render

    root = tmp_path_factory.mktemp("auto_belt")
    rng = np.random.default_rng(0)
    run = root / "run"
    return run, _train_auto(_write(root / "good", [render(rng, BELT) for _ in range(N_GOOD)]), run, BELT)


def test_aligned_tiles_get_the_position_aware_model(tiles_run):
    assert tiles_run["arch"] == "padim"
    auto = tiles_run["auto"]
    assert auto["chosen"] == "features"
    assert len(auto["image_auroc_per_fold"]["features"]) == len(auto["image_auroc_per_fold"]["memory"]) == 3
    # aligned: the good images hardly move against each other, so the moved copies are nearly the originals
    assert auto["median_displacement"] < 0.05, auto
    assert "--arch auto chose features" in tiles_run["stdout"]


def test_parts_that_move_get_the_position_blind_model(belt_run):
    _, run = belt_run
    assert run["arch"] == "memory"
    auto = run["auto"]
    assert auto["chosen"] == "memory"
    folds = auto["image_auroc_per_fold"]
    assert min(folds["memory"]) > max(folds["features"]), folds
    assert auto["median_displacement"] > 0.1, auto
    assert "--arch auto chose memory" in run["stdout"] and "every fold" in run["stdout"]


def test_the_chosen_run_exports_calibrates_and_runs_as_any_run_of_its_arch(belt_run):
    from edge.bundle import load_bundle
    from edge.detector import make_detector

    run_dir, _ = belt_run
    root = run_dir.parent
    assert run_edge_in_process("export", run_dir, "--quantize", "float32").returncode == 0
    (model,) = (run_dir / "export").glob("*.tflite")
    result = run_edge_in_process(
        "calibrate",
        model,
        "--normal",
        root / "good",
        "--method",
        "meanstd:3",
        "--out",
        root / "bundle",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    loaded = load_bundle(root / "bundle")
    assert loaded.manifest.model.kind == "anomaly_map"
    assert loaded.manifest.card().extra["arch"] == "memory"
    detection = make_detector(loaded).detect(np.zeros((1, BELT, BELT, 3), np.uint8))
    assert np.isfinite(detection.scores).all()


def test_within_noise_keeps_the_default():
    from train.auto_arch import decide

    arch, reason = decide({"features": [0.80, 0.90, 0.85], "memory": [0.88, 0.86, 0.92]})
    assert arch == "features" and "within noise" in reason
    assert decide({"features": [0.70, 0.75, 0.72], "memory": [0.80, 0.90, 0.85]})[0] == "memory"
    assert decide({"features": [0.95, 0.97, 0.96], "memory": [0.80, 0.90, 0.85]})[0] == "features"
    arch, reason = decide({"features": [1.0, 1.0, 1.0], "memory": [1.0, 1.0, 1.0]})
    assert arch == "features" and reason.startswith("the two scored alike")


def test_displacements_measure_how_far_the_good_images_move():
    from train.auto_arch import displacements, moved

    rng = np.random.default_rng(0)
    base = np.zeros((96, 96, 1), np.uint8)
    cv2.rectangle(base, (20, 30), (50, 60), 200, -1)
    frames = np.stack([np.roll(base, (int(dy), int(dx)), (0, 1)) for dy, dx in rng.integers(-20, 21, (12, 2))])
    shifts = np.hypot(*displacements(frames, rng).T)
    assert np.median(shifts) > 5
    aligned = np.repeat(base[None], 12, 0)
    assert np.abs(displacements(aligned, rng)).max() < 1
    # moved by a measured displacement: the same content elsewhere, the frame's shape kept
    out = moved(frames[:1], np.array([[10.0, 0.0]]), rng)
    assert out.shape == frames[:1].shape and abs(int(out.sum()) - int(frames[0].sum())) < 0.05 * int(frames[0].sum())


def test_too_few_good_images_to_choose_trains_features_and_says_so(tmp_path):
    """auto is the default arch, so a handful of images must still give a model: the position-aware
    one (it needs no bank), with one line saying why nothing was chosen."""
    pytest.importorskip("tensorflow")  # training is desktop-only
    rng = np.random.default_rng(0)
    data = _write(tmp_path / "good", [_tile(rng) for _ in range(5)])
    result = run_edge_in_process("train", "autoencoder", "--data", data, "--out", tmp_path / "r", "--size", TILE)
    assert result.returncode == 0, result.stderr
    assert "--arch auto: 5 good images are too few to cross-validate" in result.stdout + result.stderr
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["arch"] == "padim" and "auto" not in run
