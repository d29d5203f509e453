"""Model + score: a batch of preprocessed frames → scores and anomaly maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from edge.bundle import Bundle
from edge.errors import EdgeError
from edge.model import TFLiteModel
from edge.scoring import ScoreConfig, error_maps, frame_scores


@dataclass
class Detection:
    scores: np.ndarray  # (N,)
    maps: np.ndarray  # (N, H, W) anomaly map at model resolution


class AutoencoderDetector:
    """Reconstruction error against the input, scored as the bundle says."""

    def __init__(self, model: TFLiteModel, score: ScoreConfig):
        self.model = model
        self.score = score

    @classmethod
    def from_bundle(cls, bundle: Bundle, num_threads: Optional[int] = None) -> "AutoencoderDetector":
        model = TFLiteModel(bundle.model_path, num_threads=num_threads)
        model.check_frame_shape(bundle.manifest.preprocessing.input_shape)
        return cls(model, bundle.manifest.score)

    def detect(self, batch_u8: np.ndarray) -> Detection:
        reconstruction = self.model.predict(batch_u8)[0]
        if reconstruction.shape != batch_u8.shape:
            raise EdgeError(
                f"model output {reconstruction.shape[1:]} does not match its input {batch_u8.shape[1:]}: "
                "not an autoencoder bundle"
            )
        maps = error_maps(batch_u8, reconstruction)
        return Detection(frame_scores(maps, self.score), maps)


def make_detector(bundle: Bundle, num_threads: Optional[int] = None):
    kind = bundle.manifest.model.kind
    if kind == "autoencoder":
        return AutoencoderDetector.from_bundle(bundle, num_threads)
    raise EdgeError(f"bundle model kind {kind!r} is not supported by this edge-inspect")
