"""Model + score: a batch of preprocessed frames → scores and anomaly maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from edge.bundle import Bundle
from edge.cam import CamHead, heatmaps, split_outputs
from edge.errors import EdgeError
from edge.model import TFLiteModel
from edge.scoring import ScoreConfig, error_maps, frame_scores


@dataclass
class Detection:
    scores: np.ndarray  # (N,)
    maps: np.ndarray  # (N, H, W) anomaly map at model resolution
    # classifier bundles only: (N, K) class probabilities (scores is the positive class column)
    probabilities: Optional[np.ndarray] = None


class MapScoringDetector:
    """A model whose output becomes an anomaly map, scored with the bundle's ScoreConfig."""

    label = "anomaly"  # what an alert from this detector is called

    def __init__(self, model: TFLiteModel, score: ScoreConfig):
        self.model = model
        self.score = score

    @classmethod
    def from_bundle(cls, bundle: Bundle, num_threads: Optional[int] = None):
        model = TFLiteModel(bundle.model_path, num_threads=num_threads)
        model.check_frame_shape(bundle.manifest.preprocessing.input_shape)
        return cls(model, bundle.manifest.score)


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


class ClassifierDetector:
    """Crack / no crack: score = positive-class probability, map = its class activation map.

    The .tflite gives probabilities and the last conv feature map; the CAM is computed here from
    the feature map and the dense weights in the bundle (edge.cam), so no second model runs.
    """

    def __init__(self, model: TFLiteModel, head: CamHead):
        self.model = model
        self.head = head
        self.label = head.positive_class  # what an alert from this detector is called

    @classmethod
    def from_bundle(cls, bundle: Bundle, num_threads: Optional[int] = None) -> "ClassifierDetector":
        model = TFLiteModel(bundle.model_path, num_threads=num_threads)
        model.check_frame_shape(bundle.manifest.preprocessing.input_shape)
        return cls(model, CamHead.from_extra(bundle.manifest.extra))

    def _run(self, batch_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return split_outputs(self.model.predict(batch_u8), len(self.head.class_names))

    def probabilities(self, batch_u8: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities only (calibration: no maps needed)."""
        return self._run(batch_u8)[0]

    def detect(self, batch_u8: np.ndarray) -> Detection:
        if batch_u8.ndim == 3:
            batch_u8 = batch_u8[None]
        probs, features = self._run(batch_u8)
        maps = heatmaps(features, self.head, batch_u8.shape[1:3])
        return Detection(probs[:, self.head.positive_index].copy(), maps, probs)


def make_detector(bundle: Bundle, num_threads: Optional[int] = None):
    kind = bundle.manifest.model.kind
    if kind == "autoencoder":
        return AutoencoderDetector.from_bundle(bundle, num_threads)
    if kind == "classifier":
        return ClassifierDetector.from_bundle(bundle, num_threads)
    if kind == "anomaly_map":
        from edge.features import AnomalyMapDetector

        return AnomalyMapDetector.from_bundle(bundle, num_threads)
    raise EdgeError(f"bundle model kind {kind!r} is not supported by this edge-inspect")
