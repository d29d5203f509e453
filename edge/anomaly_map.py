"""Device side of model kind "anomaly_map": the .tflite outputs the anomaly map itself.

The default model of `edge train autoencoder` (train/padim.py: EfficientNet-Lite0 features and a
per-position Gaussian, all inside one int8 .tflite) ends in a coarse map of Mahalanobis distances,
(N, 32, 32, 1) at 256 px; the DRAEM-style model (train/draem.py) ends in a defect-probability map.
Here it is resized to the model's input size (bilinear, so `edge run` draws its heatmap and box
from it like an autoencoder's error map) and scored with the bundle's ScoreConfig (max of the
Gaussian-smoothed map by default), in numpy only.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.detection import Detection, MapScoringDetector
from edge.errors import EdgeError
from edge.scoring import frame_scores


def upsample_maps(coarse: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(N, h, w[, 1]) → (N, H, W) float32, bilinear."""
    if coarse.ndim == 4:
        if coarse.shape[3] != 1:
            raise EdgeError(
                f"an anomaly-map model must output (N, h, w, 1), got {coarse.shape}: not an anomaly_map bundle"
            )
        coarse = coarse[..., 0]
    out = np.empty((coarse.shape[0], *hw), np.float32)
    for i, m in enumerate(coarse):
        cv2.resize(m.astype(np.float32, copy=False), (hw[1], hw[0]), dst=out[i], interpolation=cv2.INTER_LINEAR)
    return out


class AnomalyMapDetector(MapScoringDetector):
    """The model's first output is an anomaly map; the frame score is computed from it here."""

    def detect(self, batch_u8: np.ndarray) -> Detection:
        if batch_u8.ndim == 3:
            batch_u8 = batch_u8[None]
        coarse = self.model.predict(batch_u8)[0]
        maps = upsample_maps(coarse, batch_u8.shape[1:3])
        return Detection(frame_scores(maps, self.score), maps)
