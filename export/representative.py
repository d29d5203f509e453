"""The frames that set a full-int8 model's integer ranges, shared by the exporters.

int8 maps each tensor's float range onto 256 levels; the converter measures those ranges by
running representative frames through the model. Good frames alone set ranges that end at what a
good part produces, so several exporters add frames with drawn defects (`synthetic_defects`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from edge.errors import EdgeError
from edge.imaging import list_images
from edge.messages import Log
from edge.preprocess import Preprocessing, Preprocessor
from train.data import frames_from_files, load_images

MAX_REPRESENTATIVE = 200  # enough to set int8 ranges; more only slows the converter


def representative_frames(
    run: dict, preprocessing: Preprocessing, folder: Optional[str | Path] = None, limit: int = MAX_REPRESENTATIVE
) -> tuple[np.ndarray, str]:
    """uint8 frames for int8 calibration: `folder` if given, else the run's training images."""
    if folder is not None:
        files = list_images(folder)
        if len(files) > limit:
            files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
        loaded = load_images(files, what=f"representative images in {folder}")
        return Preprocessor(preprocessing).prepare_batch(loaded.images), str(folder)
    frames, used = frames_from_files(run.get("train_files", []), preprocessing, limit)
    return frames, f"{len(used)} training images listed in run.json"


def int8_representative(
    run_dir: Path, run: dict, preprocessing: Preprocessing, representative: Optional[str | Path], what: str, log: Log
) -> np.ndarray:
    """The frames that set int8 ranges; refuse when none can be read (int8 without them is guesswork)."""
    rep, rep_source = representative_frames(run, preprocessing, representative)
    if len(rep) == 0:
        raise EdgeError(
            f"--quantize int8 needs representative images to set the integer ranges, but none of the "
            f"training images listed in {run_dir / 'run.json'} can be read (moved or deleted?); "
            f"pass --representative DIR with {what}"
        )
    log(f"int8 ranges from {len(rep)} representative frames ({rep_source})")
    return rep


def synthetic_defects(frames_u8: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Good frames with drawn blemishes (dark/bright blobs, scratches, pasted patches).

    Used only to widen the int8 ranges: calibrated on good frames alone, the quantized output
    would clip every defect to the largest normal distance and flatten the ranking of defects.
    """
    rng = np.random.default_rng(seed)
    return np.stack([_with_drawn_defect(frames_u8, i % 3, rng) for i in range(n)])


def _with_drawn_defect(frames_u8: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of a random frame with a blob (kind 0), a scratch (1) or a rotated patch of another frame (2)."""
    import cv2

    h, w = frames_u8.shape[1:3]
    f = frames_u8[rng.integers(len(frames_u8))].copy()
    cx, cy = int(rng.integers(w // 8, 7 * w // 8)), int(rng.integers(h // 8, 7 * h // 8))
    # moderate contrast: a blemish, not a black hole; extreme values would widen the int8 ranges
    # of the backbone's activations and cost precision on normal texture
    value = int(np.clip(f.mean() + rng.choice([-1, 1]) * rng.uniform(25, 70), 0, 255))
    colour = (value,) * f.shape[2]
    if kind == 0:
        axes = (int(rng.integers(w // 40 + 1, w // 8)), int(rng.integers(h // 40 + 1, h // 8)))
        cv2.ellipse(f, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    elif kind == 1:
        dx, dy = int(rng.integers(-w // 3, w // 3)), int(rng.integers(-h // 3, h // 3))
        cv2.line(f, (cx - dx, cy - dy), (cx + dx, cy + dy), colour, int(rng.integers(1, 4)))
    else:
        src = frames_u8[rng.integers(len(frames_u8))]
        s = int(rng.integers(w // 10, w // 4))
        sx, sy = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        x0, y0 = min(cx, w - s), min(cy, h - s)
        f[y0 : y0 + s, x0 : x0 + s] = np.rot90(src[sy : sy + s, sx : sx + s], int(rng.integers(1, 4)))
    return f
