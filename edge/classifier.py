"""Device side of model kind "classifier" (the crack classifier): score and class activation map.

Used alone (`edge run --bundle CLS`) or as the second stage behind an anomaly model
(edge.second_stage). The CAM math is edge.cam.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from edge.cam import CamHead, heatmaps, split_outputs
from edge.detection import Detection
from edge.model import ModelBase
from edge.scoring import ScoreConfig


class ClassifierDetector:
    """Crack / no crack: score = positive-class probability, map = its class activation map.

    The .tflite gives probabilities and the last conv feature map; the CAM is computed here from
    the feature map and the dense weights in the bundle (edge.cam), so no second model runs.
    """

    # Each tile is scored by its probability; the frame takes the highest (no map score).
    score: Optional[ScoreConfig] = None

    def __init__(self, model: ModelBase, head: CamHead):
        self.model = model
        self.head = head
        self.label = head.positive_class  # what an alert from this detector is called

    def _run(self, batch_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, features = split_outputs(self.model.predict(batch_u8), len(self.head.class_names))
        if self.head.float_head:  # softmax in float from the features (edge.cam.CamHead.float_head)
            probs = self.head.probabilities(features)
        return probs, features

    def probabilities(self, batch_u8: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities only (calibration: no maps needed)."""
        return self._run(batch_u8)[0]

    def detect(self, batch_u8: np.ndarray) -> Detection:
        if batch_u8.ndim == 3:
            batch_u8 = batch_u8[None]
        probs, features = self._run(batch_u8)
        maps = heatmaps(features, self.head, batch_u8.shape[1:3])
        return Detection(probs[:, self.head.positive_index].copy(), maps, probs)
