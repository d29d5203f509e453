"""Batch scoring of image files with the exported .tflite, through the device's own code.

Calibrate what you deploy: images are read with edge.imaging, prepared with the device's
Preprocessor, run through edge.model.TFLiteModel and scored by edge.detector / edge.scoring, so
the scores (int8 rounding included) are the numbers `edge run` will compare to the threshold.
Never Keras.

Model kinds plug in through `KINDS`: each maps a ModelCard kind to a factory that turns
(model, card, score config) into a "score a batch" function, uint8 (N, H, W, C) → (N,) float
scores where higher means more anomalous, and to the device detector that the frame-geometry
path (`score_frames`: ROI, mask, tiles) drives through edge.tiling.FrameScorer. The detectors
come from the device's own table, edge.detector.DETECTOR_FACTORIES, never a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.bundle import ModelCard
from edge.detector import DETECTOR_FACTORIES, DetectorFactory
from edge.errors import EdgeError
from edge.imaging import read_image
from edge.model import TFLiteModel
from edge.preprocess import Preprocessor
from edge.scoring import ScoreConfig
from edge.tiling import FrameScorer

BatchScorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class KindSpec:
    """How calibration scores one model kind."""

    make_scorer: Callable[[TFLiteModel, ModelCard, ScoreConfig], BatchScorer]
    score_label: str  # axis label in the report
    # The device's detector for this kind (what edge.pipeline builds from a bundle), for FrameScorer.
    make_detector: DetectorFactory


def _detector_scorer(kind: str) -> Callable[[TFLiteModel, ModelCard, ScoreConfig], BatchScorer]:
    """Scores of a batch as the device's detector of `kind` computes them."""

    def make_scorer(model: TFLiteModel, card: ModelCard, score: ScoreConfig) -> BatchScorer:
        detector = DETECTOR_FACTORIES[kind](model, card, score)
        return lambda batch: detector.detect(batch).scores

    return make_scorer


def _classifier_scorer(model: TFLiteModel, card: ModelCard, score: ScoreConfig) -> BatchScorer:
    from calibration.classifier import make_scorer  # crack probability + CAM head: calibration/classifier.py

    return make_scorer(model, card, score)


_SCORERS: dict[str, tuple[Callable[[TFLiteModel, ModelCard, ScoreConfig], BatchScorer], str]] = {
    "autoencoder": (_detector_scorer("autoencoder"), "anomaly score (reconstruction error)"),
    "classifier": (_classifier_scorer, "positive-class probability (e.g. crack)"),
    "anomaly_map": (_detector_scorer("anomaly_map"), "anomaly score (max of the feature-distance map)"),
}

KINDS: dict[str, KindSpec] = {
    kind: KindSpec(make_scorer, label, DETECTOR_FACTORIES[kind]) for kind, (make_scorer, label) in _SCORERS.items()
}


def kind_spec(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise EdgeError(
            f"calibration does not know model kind {kind!r} (known: {', '.join(sorted(KINDS))}); "
            "upgrade edge-inspect or re-export the model"
        ) from None


@dataclass
class ScoredImages:
    paths: list[Path] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    skipped: list[Path] = field(default_factory=list)


ProgressHook = Callable[[int], None]


def score_files(
    files: list[Path],
    preprocessor: Preprocessor,
    scorer: BatchScorer,
    batch_size: int = 32,
    what: str = "images",
    advance: Optional[ProgressHook] = None,
) -> ScoredImages:
    """Read, prepare and score files in batches; unreadable or truncated files are skipped.

    Only one batch of decoded images is held at a time, so large folders fit in memory.
    Images of any size are fine: the Preprocessor resizes them. Fatal (EdgeError) when no
    file could be read.
    """
    if batch_size < 1:
        raise EdgeError(f"--batch-size must be at least 1, got {batch_size}")
    out = ScoredImages()
    chunks = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        paths, frames = [], []
        for path in chunk:
            image = read_image(path)
            if image is None:
                out.skipped.append(path)
                continue
            paths.append(path)
            frames.append(image)
        if frames:
            scores = np.asarray(scorer(preprocessor.prepare_batch(frames)), np.float64).reshape(-1)
            _check_finite(scores, paths)
            out.paths.extend(paths)
            chunks.append(scores)
        if advance is not None:
            advance(len(chunk))
    _check_some_read(out, files, what)
    out.scores = np.concatenate(chunks)
    return out


def score_frames(
    files: list[Path],
    scorer: FrameScorer,
    what: str = "images",
    advance: Optional[ProgressHook] = None,
) -> ScoredImages:
    """Score files one by one with the device's FrameScorer (ROI, mask, tiles), as `edge run` does.

    Each image is one interpreter call holding all its tiles, so there is no --batch-size here.
    Unreadable or truncated files are skipped; an image the geometry does not fit (ROI outside
    it, mask of another size) is a clear error naming the file.
    """
    out = ScoredImages()
    scores = []
    for path in files:
        image = read_image(path)
        if image is None:
            out.skipped.append(path)
        else:
            try:
                value = scorer.score(image).score
            except EdgeError as exc:
                raise EdgeError(f"{path}: {exc}") from None
            _check_finite(np.array([value]), [path])
            out.paths.append(path)
            scores.append(value)
        if advance is not None:
            advance(1)
    _check_some_read(out, files, what)
    out.scores = np.asarray(scores, np.float64)
    return out


def _check_finite(scores: np.ndarray, paths: list[Path]) -> None:
    if not np.all(np.isfinite(scores)):
        bad = paths[int(np.flatnonzero(~np.isfinite(scores))[0])]
        raise EdgeError(
            f"the model gave a non-finite score (NaN or inf) for {bad}; the model is broken, re-train or re-export it"
        )


def _check_some_read(out: ScoredImages, files: list[Path], what: str) -> None:
    if not out.paths:
        raise EdgeError(
            f"none of the {len(files)} {what} could be read (unreadable or truncated files); "
            "check the files or point to another folder"
        )
