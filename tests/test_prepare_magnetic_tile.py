"""scripts/prepare_magnetic_tile.py on a generated miniature of the published clone's layout.

The clone (github.com/abin24/Magnetic-tile-defect-datasets.) holds MT_<Class>/Imgs/ with
<stem>.jpg images and a <stem>.png mask of the same stem; MT_Free is the defect-free class.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "prepare_magnetic_tile.py"
CLASSES = {"MT_Free": 12, "MT_Blowhole": 3, "MT_Break": 2, "MT_Crack": 2, "MT_Fray": 1, "MT_Uneven": 2}
DEFECTS = ["blowhole", "break", "crack", "fray", "uneven"]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


def _write_pair(folder: Path, stem: str, rng: np.random.Generator, defective: bool) -> None:
    image = rng.integers(80, 160, (24, 32), dtype=np.uint8)
    cv2.imwrite(str(folder / f"{stem}.jpg"), image)
    mask = np.zeros((24, 32), np.uint8)
    if defective:
        # as published: a grey-ish mask, mostly 255 inside, a few low and mid values at the edge
        mask[5:15, 8:20] = 255
        mask[5, 8:20] = 3
        mask[14, 8:20] = 200
        mask[10, 20] = 100
    cv2.imwrite(str(folder / f"{stem}.png"), mask)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clone") / "Magnetic-tile-defect-datasets."
    rng = np.random.default_rng(0)
    for k, (name, n) in enumerate(CLASSES.items()):
        folder = root / name / "Imgs"
        folder.mkdir(parents=True)
        for i in range(n):
            _write_pair(folder, f"exp{i % 3 + 1}_num_{1000 * k + i}", rng, name != "MT_Free")
    (root / "README.md").write_text("not an image folder\n")
    return root


@pytest.fixture(scope="module")
def prepared(clone, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "magnetic-tile"
    proc = run("--src", clone, "--out", out, "--test-good", 4, "--seed", 1)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_writes_the_mvtec_layout_with_the_good_images_split(clone, prepared):
    out, stdout = prepared
    assert names(out) == {"train", "test", "ground_truth"}
    assert names(out / "test") == {"good", *DEFECTS}
    assert names(out / "ground_truth") == set(DEFECTS)
    train, test = names(out / "train" / "good"), names(out / "test" / "good")
    assert (len(train), len(test)) == (8, 4)
    assert not train & test
    assert train | test == {p.name for p in (clone / "MT_Free" / "Imgs").glob("*.jpg")}
    for defect in DEFECTS:
        source = clone / f"MT_{defect.capitalize()}" / "Imgs"
        assert names(out / "test" / defect) == {p.name for p in source.glob("*.jpg")}
    # the summary gives the counts per folder
    for folder, n in [("train/good", 8), ("test/good", 4), ("test/blowhole", 3), ("ground_truth/fray", 1)]:
        assert any(line.split() == [folder, str(n)] for line in stdout.splitlines()), stdout


def test_images_are_the_published_bytes(clone, prepared):
    out, _ = prepared
    for image in (out / "test" / "crack").iterdir():
        assert image.read_bytes() == (clone / "MT_Crack" / "Imgs" / image.name).read_bytes()
    for image in (out / "train" / "good").iterdir():
        assert image.read_bytes() == (clone / "MT_Free" / "Imgs" / image.name).read_bytes()


def test_masks_are_named_after_the_image_and_binary(clone, prepared):
    out, _ = prepared
    for defect in DEFECTS:
        stems = {p.stem for p in (out / "test" / defect).iterdir()}
        assert names(out / "ground_truth" / defect) == {f"{s}_mask.png" for s in stems}
        for stem in stems:
            mask = cv2.imread(str(out / "ground_truth" / defect / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
            source = cv2.imread(str(clone / f"MT_{defect.capitalize()}" / "Imgs" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
            assert set(np.unique(mask)) == {0, 255}
            np.testing.assert_array_equal(mask == 255, source > 127)


def test_same_seed_same_split_and_another_seed_another(clone, prepared, tmp_path):
    out, _ = prepared
    assert run("--src", clone, "--out", tmp_path / "again", "--test-good", 4, "--seed", 1).returncode == 0
    assert run("--src", clone, "--out", tmp_path / "other", "--test-good", 4, "--seed", 2).returncode == 0
    assert names(tmp_path / "again" / "test" / "good") == names(out / "test" / "good")
    assert names(tmp_path / "other" / "test" / "good") != names(out / "test" / "good")


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_folder_without_mt_folders_is_one_clear_error(tmp_path):
    (tmp_path / "src" / "Imgs").mkdir(parents=True)
    proc = run("--src", tmp_path / "src", "--out", tmp_path / "out")
    assert_one_line_error(proc, "MT_", "abin24/Magnetic-tile-defect-datasets")
    assert not (tmp_path / "out").exists()
    assert_one_line_error(run("--src", tmp_path / "missing", "--out", tmp_path / "out"), "not a folder")


def test_bad_options_and_a_used_out_folder_are_one_clear_error(clone, prepared, tmp_path):
    out, _ = prepared
    assert_one_line_error(run("--src", clone, "--out", out, "--test-good", 4), "already holds")
    assert_one_line_error(run("--src", clone, "--out", tmp_path / "o", "--test-good", 12), "--test-good", "12")
    assert_one_line_error(run("--src", clone), "--out")
