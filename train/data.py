"""Folders of images → model-sized uint8 frames, through the device's own preprocessing.

The folder reading only the desktop needs (several files at once, a whole folder's channel
count, the MVTec layout) lives here; edge.imaging keeps what the device reads one file at a time.

Every image goes through `edge.preprocess.Preprocessor.prepare`, the code `edge run` uses on the
device, so the model trains on exactly what it will see. Images of mixed sizes are fine: each is
resized to the model size (INTER_AREA). Unreadable or truncated files are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from edge.errors import EdgeError
from edge.imaging import list_images, read_image
from edge.preprocess import Color, Preprocessing, Preprocessor

# ---------------------------------------------------------------- reading folders of images


def resolve_normal_folder(folder: str | Path) -> Path:
    """A folder of good images: either the folder itself or, for MVTec AD layout, its train/good."""
    folder = Path(folder)
    mvtec = folder / "train" / "good"
    return mvtec if mvtec.is_dir() else folder


def channel_count(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


@dataclass
class LoadedImages:
    paths: list[Path]
    images: list[np.ndarray]
    skipped: list[Path] = field(default_factory=list)


def load_images(files: list[Path], what: str = "images") -> LoadedImages:
    """Decode files, skipping unreadable ones; fatal only when nothing readable is left."""
    loaded = LoadedImages([], [])
    for path in files:
        image = read_image(path)
        if image is None:
            loaded.skipped.append(path)
        else:
            loaded.paths.append(path)
            loaded.images.append(image)
    if not loaded.images:
        raise EdgeError(
            f"none of the {len(files)} {what} could be read (unreadable or truncated files); "
            "check the files or point to another folder"
        )
    return loaded


def check_channels(images: list[np.ndarray], paths: list[Path]) -> int:
    """The common channel count; an error when a folder mixes grey and colour images."""
    counts = {}
    for image, path in zip(images, paths, strict=True):
        counts.setdefault(channel_count(image), path)
    if len(counts) > 1:
        examples = ", ".join(f"{c} channel(s): {p.name}" for c, p in sorted(counts.items()))
        raise EdgeError(
            f"images have mixed channel counts ({examples}); "
            "pass --color grey or --color rgb to convert them all to one"
        )
    return next(iter(counts))


# ---------------------------------------------------------------- training images


@dataclass
class TrainingImages:
    folder: Path  # the folder the images came from (train/good for an MVTec root)
    paths: list[Path]
    frames: np.ndarray  # uint8 (N, H, W, C), as Preprocessor.prepare gives them
    preprocessing: Preprocessing
    skipped: list[Path] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)  # distinct (w, h) of the originals


def load_training_images(data: str | Path, size: int, color: Optional[Color] = None) -> TrainingImages:
    """Read a folder of good images (or an MVTec AD root: its train/good) at `size` x `size`.

    `color=None` infers grey or rgb from the files and refuses a folder that mixes both
    (pass a colour to convert them all).
    """
    if size < 8:
        raise EdgeError(f"--size {size} is too small; use at least 8 (e.g. 64 or 128)")
    folder = resolve_normal_folder(data)
    files = list_images(folder)
    loaded = load_images(files, what=f"images in {folder}")
    if color is None:
        channels = check_channels(loaded.images, loaded.paths)
        color = "grey" if channels == 1 else "rgb"
    preprocessing = Preprocessing(width=size, height=size, color=color)
    frames = Preprocessor(preprocessing).prepare_batch(loaded.images)
    sizes = {(im.shape[1], im.shape[0]) for im in loaded.images}
    return TrainingImages(folder, loaded.paths, frames, preprocessing, loaded.skipped, sizes)


def split_indices(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, validation) index arrays; the same seed gives the same split."""
    if not 0.0 <= val_split < 1.0:
        raise EdgeError(f"--val-split {val_split} must be in [0, 1) (e.g. 0.1 for 10 % held back)")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_split))
    if val_split > 0 and n_val == 0 and n >= 2:
        n_val = 1  # a tiny folder still gets one held-back image for parity checks
    if n - n_val < 1:
        raise EdgeError(f"only {n} readable image(s): too few to hold back {val_split:.0%} for validation")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def frames_from_files(
    paths: list[str | Path], preprocessing: Preprocessing, limit: Optional[int] = None
) -> tuple[np.ndarray, list[Path]]:
    """Re-read listed files (e.g. run.json's file lists) through the preprocessor.

    Files that are gone or unreadable are skipped; returns (frames, paths actually used).
    `limit` picks that many files spread evenly over the list (deterministic).
    """
    paths = [Path(p) for p in paths]
    if limit is not None and len(paths) > limit:
        picks = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in picks]
    prep = Preprocessor(preprocessing)
    frames, used = [], []
    for path in paths:
        image = read_image(path)
        if image is not None:
            frames.append(prep.prepare(image))
            used.append(path)
    if not frames:
        return np.empty((0, *preprocessing.input_shape), np.uint8), []
    return np.stack(frames), used
