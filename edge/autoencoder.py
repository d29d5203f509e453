"""Device side of model kind "autoencoder": the reconstruction error against the input is the anomaly map."""

from __future__ import annotations

import numpy as np

from edge.detection import Detection, MapScoringDetector
from edge.errors import EdgeError
from edge.scoring import error_maps, frame_scores


class AutoencoderDetector(MapScoringDetector):
    """Reconstruction error against the input, scored as the bundle says."""

    def detect(self, batch_u8: np.ndarray) -> Detection:
        reconstruction = self.model.predict(batch_u8)[0]
        if reconstruction.shape != batch_u8.shape:
            raise EdgeError(
                f"model output {reconstruction.shape[1:]} does not match its input {batch_u8.shape[1:]}: "
                "not an autoencoder bundle"
            )
        maps = error_maps(batch_u8, reconstruction, self.score.error)
        return Detection(frame_scores(maps, self.score), maps)
