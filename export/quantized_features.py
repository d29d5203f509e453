"""The int8 backbone's features of the training images: what the feature models refit on.

Calibrate what you deploy, inside the model: int8 adds noise to every feature, so a head fitted
on float features (per-cell Gaussians, a memory bank) reads that noise as distance. The feature
part of the model is quantized alone with the same representative frames as the whole model, so it
gets the same integer ranges; the training images' features are computed with it, and the head is
fitted on them (export/padim.py, export/memory.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from edge.errors import EdgeError
from edge.preprocess import Preprocessing
from export.convert import convert_quietly
from export.representative import synthetic_defects
from train.data import frames_from_files


def training_representative(files: list[str], preprocessing: Preprocessing, limit: int, synthetic: int) -> np.ndarray:
    """int8 ranges for a feature model: up to `limit` training frames plus `synthetic` with drawn defects.

    The drawn defects keep a defect's distance from being clipped to the largest normal one.
    """
    frames, _ = frames_from_files(files, preprocessing, limit=limit)
    if len(frames) == 0:
        raise EdgeError("int8 needs the training images to set integer ranges; they are gone")
    return np.concatenate([frames, synthetic_defects(frames, synthetic)]) if synthetic else frames


def quantized_features(
    features_model,
    representative: np.ndarray,
    files: list[str],
    preprocessing: Preprocessing,
    scratch: Path,
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """(N, g, g, C) features of the readable `files`, computed by `features_model` quantized to int8."""
    from edge.model import TFLiteModel

    scratch.write_bytes(convert_quietly(features_model, "int8", representative, log, "int8 ranges (backbone)"))
    try:
        quantized = TFLiteModel(scratch)
        frames, _ = frames_from_files(files, preprocessing)
        if len(frames) < 2:
            raise EdgeError("int8 refit needs the training images; fewer than 2 can still be read")
        return _run_each(quantized, frames, log)
    finally:
        scratch.unlink(missing_ok=True)


def _run_each(quantized, frames: np.ndarray, log: Callable[[str], None]) -> np.ndarray:
    """The int8 backbone's features of every frame, one invoke each (the model has a batch of one)."""
    from edge.messages import Steps

    feats = []
    with Steps("int8 refit (training images)", len(frames), log) as steps:
        for i in range(len(frames)):
            feats.append(quantized.predict(frames[i : i + 1])[0])
            steps.advance()
    return np.concatenate(feats)
