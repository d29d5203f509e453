"""Calibrating a classifier: the decision threshold on the positive-class (crack) probability.

The classifier plugs into calibration's kind registry (calibration.scoring.KINDS): its "score a
batch" function is the crack probability from the exported .tflite, run through the device's own
ClassifierDetector, so int8 rounding is calibrated in. Everything else is shared with the
autoencoder: `--normal` is the folder of the other class (no_crack), `--anomalous` the positive
class (crack), and the methods are the same strings: `f1` (F1-optimal on both folders) or
`fpr:0.01` (at most 1 % of no-crack images flagged), `quantile:Q`, `meanstd:K`.
The device alerts when probability > threshold. The CAM head (class names, dense weights) comes
from the model card's `extra` and is copied into bundle.json's `extra` by calibrate().
"""

from __future__ import annotations

from edge.bundle import ModelCard
from edge.cam import CamHead
from edge.detector import ClassifierDetector
from edge.errors import EdgeError
from edge.model import TFLiteModel
from edge.scoring import ScoreConfig


def make_scorer(model: TFLiteModel, card: ModelCard, score: ScoreConfig):
    """uint8 (N, H, W, C) frames -> (N,) positive-class probabilities. `score` does not apply."""
    if card.kind != "classifier":
        raise EdgeError(f"model card says kind {card.kind!r}, not classifier")
    detector = ClassifierDetector(model, CamHead.from_extra(card.extra))
    return lambda batch: detector.probabilities(batch)[:, detector.head.positive_index]
