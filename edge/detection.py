"""What every detector is and returns: the `Detector` protocol and its `Detection`.

A detector turns a batch of prepared frames (uint8, N x H x W x C, as edge.preprocess makes
them) into one score and one map per frame. The pipeline (edge.pipeline), calibration and the
second stage only ever talk to this protocol; which class serves which model kind is the table
in edge.detector. The model kinds live in their own modules (edge.autoencoder, edge.classifier,
edge.anomaly_map), which import this one and nothing of each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np

from edge.model import ModelBase
from edge.scoring import ScoreConfig


@dataclass
class Detection:
    scores: np.ndarray  # (N,)
    maps: np.ndarray  # (N, H, W) anomaly map at model resolution
    # classifier bundles only: (N, K) class probabilities (scores is the positive class column)
    probabilities: Optional[np.ndarray] = None


class Detector(Protocol):
    """Model + score: a batch of prepared frames -> scores and maps."""

    label: str  # what an alert from this detector is called ("anomaly", "crack")
    # The bundle's score definition, applied by edge.tiling.FrameScorer to the stitched map of a
    # tiled or masked frame. None: the detector's own per-tile score is used (the classifier).
    score: Optional[ScoreConfig]

    def detect(self, batch_u8: np.ndarray) -> Detection: ...


class MapScoringDetector:
    """Base of the kinds whose model output becomes an anomaly map, scored with the bundle's ScoreConfig."""

    label = "anomaly"

    def __init__(self, model: ModelBase, score: ScoreConfig):
        self.model = model
        self.score: Optional[ScoreConfig] = score
