"""Small generated data for tests that must pass without ../shared/datasets.

"Good" images are a smooth, slightly noisy surface with a gentle gradient; "defective" ones carry
a dark blob or a bright scratch that an autoencoder trained on the good ones cannot reconstruct.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def good_image(rng: np.random.Generator, size: int = 64, color: bool = False) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    base = 110 + 40 * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.normal(0, 3, (size, size))
    image = np.clip(base, 0, 255).astype(np.uint8)
    if color:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        image[..., 0] = np.clip(image[..., 0].astype(int) + 20, 0, 255)
    return image


def add_defect(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    size = image.shape[0]
    cx, cy = (int(v) for v in rng.integers(size // 5, 4 * size // 5, 2))
    if rng.random() < 0.5:
        radius = int(rng.integers(size // 10, size // 6))
        cv2.circle(out, (cx, cy), radius, (15, 15, 15) if out.ndim == 3 else 15, -1)
    else:
        dx, dy = (int(v) for v in rng.integers(-size // 3, size // 3, 2))
        cv2.line(out, (cx - dx, cy - dy), (cx + dx, cy + dy), (250, 250, 250) if out.ndim == 3 else 250, 3)
    return out


def write_images(
    folder: Path, n: int, seed: int, defective: bool = False, size: int = 64, color: bool = False
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        image = good_image(rng, size, color)
        if defective:
            image = add_defect(image, rng)
        path = folder / f"{'bad' if defective else 'good'}_{i:03d}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def make_mvtec(
    root: Path, n_train: int = 60, n_test_good: int = 10, n_test_bad: int = 10, size: int = 64, seed: int = 0
) -> Path:
    """A tiny data set in MVTec AD layout: train/good, test/good, test/defect, ground_truth/defect."""
    write_images(root / "train" / "good", n_train, seed, size=size)
    write_images(root / "test" / "good", n_test_good, seed + 1, size=size)
    rng = np.random.default_rng(seed + 2)
    (root / "test" / "defect").mkdir(parents=True, exist_ok=True)
    (root / "ground_truth" / "defect").mkdir(parents=True, exist_ok=True)
    for i in range(n_test_bad):
        good = good_image(rng, size)
        bad = add_defect(good, rng)
        mask = (np.abs(bad.astype(int) - good.astype(int)) > 30).astype(np.uint8) * 255
        cv2.imwrite(str(root / "test" / "defect" / f"{i:03d}.png"), bad)
        cv2.imwrite(str(root / "ground_truth" / "defect" / f"{i:03d}_mask.png"), mask)
    return root


def write_video(
    path: Path, n_frames: int, defective_frames: set[int], size: int = 64, fps: float = 10.0, seed: int = 0
) -> Path:
    """An MJPG .avi of good frames, with a defect drawn on the listed frame indices."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size), True)
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    for i in range(n_frames):
        image = good_image(rng, size)
        if i in defective_frames:
            image = add_defect(image, rng)
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def crack_image(rng: np.random.Generator, size: int = 32, crack: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A concrete-like BGR surface; with `crack`, a dark thin kinked line about half the image long.

    Returns (image, the crack's polyline as int (3, 2) x,y points, or None).
    """
    grey = good_image(rng, size)
    grey = np.clip(grey.astype(np.int16) + rng.normal(0, 6, grey.shape).astype(np.int16), 0, 255).astype(np.uint8)
    points = None
    if crack:
        cx, cy = (float(v) for v in rng.uniform(size * 0.3, size * 0.7, 2))
        angle = rng.uniform(0, np.pi)
        half = size / 4
        dx, dy = half * np.cos(angle), half * np.sin(angle)
        kink = rng.uniform(-size / 16, size / 16, 2)
        points = (
            np.array([(cx - dx, cy - dy), (cx + kink[0], cy + kink[1]), (cx + dx, cy + dy)]).round().astype(np.int32)
        )
        cv2.polylines(grey, [points], False, int(rng.integers(20, 50)), thickness=max(2, size // 16))
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), points


def make_crack_classes(root: Path, n_per_class: int = 40, size: int = 32, seed: int = 0) -> Path:
    """A classifier data set: root/crack/*.png (dark thin line) and root/no_crack/*.png (plain surface)."""
    rng = np.random.default_rng(seed)
    for name, crack in (("crack", True), ("no_crack", False)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            image, _ = crack_image(rng, size, crack)
            cv2.imwrite(str(root / name / f"{name}_{i:03d}.png"), image)
    return root
