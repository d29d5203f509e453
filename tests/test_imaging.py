from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import EdgeError
from edge.imaging import list_images, read_image
from train.data import check_channels, load_images, resolve_normal_folder


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def test_list_images_sorted_and_filtered(tmp_path):
    _write(tmp_path / "b.png", np.zeros((4, 4), np.uint8))
    _write(tmp_path / "a.jpg", np.zeros((4, 4), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.png"]


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(EdgeError, match="folder not found"):
        list_images(tmp_path / "nope")
    with pytest.raises(EdgeError, match="no images in"):
        list_images(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_are_rejected(tmp_path, suffix):
    good = _write(tmp_path / f"good{suffix}", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    data = good.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    assert read_image(good) is not None
    assert read_image(cut) is None


def test_load_images_skips_unreadable_and_fails_when_none_left(tmp_path):
    _write(tmp_path / "ok.png", np.full((8, 8), 100, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    loaded = load_images(list_images(tmp_path))
    assert [p.name for p in loaded.paths] == ["ok.png"]
    assert [p.name for p in loaded.skipped] == ["broken.png"]
    with pytest.raises(EdgeError, match="could be read"):
        load_images([tmp_path / "broken.png"])


def test_mixed_channel_counts_are_named(tmp_path):
    grey = np.zeros((8, 8), np.uint8)
    colour = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(EdgeError, match="mixed channel counts.*--color"):
        check_channels([grey, colour], [tmp_path / "g.png", tmp_path / "c.png"])
    assert check_channels([grey, grey], [tmp_path / "a", tmp_path / "b"]) == 1


def test_mvtec_root_resolves_to_train_good(tmp_path):
    (tmp_path / "train" / "good").mkdir(parents=True)
    assert resolve_normal_folder(tmp_path) == tmp_path / "train" / "good"
    assert resolve_normal_folder(tmp_path / "train" / "good") == tmp_path / "train" / "good"
