"""Which detector serves which model kind: the one table every caller uses.

`DETECTOR_FACTORIES` maps a model card's `kind` to a factory (model, card, score config) ->
Detector; `make_detector(bundle)` opens a bundle's model and looks its kind up there. The device
(edge.pipeline, edge.second_stage) and calibration (calibration/scoring.py) both build their
detectors through it, so a new kind is one module in edge/ and one line here.
"""

from __future__ import annotations

from typing import Callable, Optional

from edge.anomaly_map import AnomalyMapDetector
from edge.autoencoder import AutoencoderDetector
from edge.bundle import Bundle, ModelCard
from edge.cam import CamHead
from edge.classifier import ClassifierDetector
from edge.detection import Detection, Detector, MapScoringDetector
from edge.errors import EdgeError
from edge.messages import Log
from edge.model import ModelBase
from edge.runtime import RuntimeOptions, model_file_for, open_model, options_for_file
from edge.scoring import ScoreConfig

__all__ = [
    "DETECTOR_FACTORIES",
    "AnomalyMapDetector",
    "AutoencoderDetector",
    "ClassifierDetector",
    "Detection",
    "Detector",
    "DetectorFactory",
    "MapScoringDetector",
    "detector_factory",
    "make_detector",
]

DetectorFactory = Callable[[ModelBase, ModelCard, ScoreConfig], Detector]

DETECTOR_FACTORIES: dict[str, DetectorFactory] = {
    "autoencoder": lambda model, card, score: AutoencoderDetector(model, score),
    "classifier": lambda model, card, score: ClassifierDetector(model, CamHead.from_extra(card.extra)),
    # the model outputs the map itself (export/padim.py, export/draem.py, export/latent_kmeans.py)
    "anomaly_map": lambda model, card, score: AnomalyMapDetector(model, score),
}


def _quiet(_message: str) -> None:
    pass


def detector_factory(kind: str) -> DetectorFactory:
    try:
        return DETECTOR_FACTORIES[kind]
    except KeyError:
        raise EdgeError(f"bundle model kind {kind!r} is not supported by this edge-inspect") from None


def make_detector(
    bundle: Bundle,
    num_threads: Optional[int] = None,
    runtime: Optional[RuntimeOptions] = None,
    log: Log = _quiet,
) -> Detector:
    """The detector of a bundle's model kind, its model opened as `runtime` says and its input shape checked.

    `runtime` (edge.runtime): a delegate, or ONNX Runtime, on the bundle's model file for it (its
    Edge-TPU-compiled or ONNX model when it keeps one); default: the CPU runtime of its model file.
    """
    manifest = bundle.manifest
    factory = detector_factory(manifest.model.kind)
    # Not said: the runtime of the bundle's model file (LiteRT for a .tflite, ONNX Runtime for an .onnx),
    # for callers that take any bundle (edge eval, the second stage); `edge run` always says which.
    runtime = runtime or options_for_file(bundle.model_path)
    model = open_model(model_file_for(bundle, runtime), runtime, num_threads, log, cpu_path=bundle.model_path)
    model.check_frame_shape(manifest.preprocessing.input_shape)
    return factory(model, manifest.card(), manifest.score)
