"""bundle.json from an exported model and its card: the one place a Manifest is built from a card."""

from __future__ import annotations

from typing import Any, Optional

from edge.bundle import Manifest, ModelCard, ModelInfo, TensorSpec, Threshold
from edge.model import ModelBase, TensorInfo
from edge.preprocess import Preprocessing
from edge.scoring import ScoreConfig


def tensor_spec(info: TensorInfo) -> TensorSpec:
    return TensorSpec(**info.to_dict())


def manifest_from_card(
    card: ModelCard,
    model: ModelBase,
    model_file: str,
    threshold: Threshold,
    *,
    preprocessing: Optional[Preprocessing] = None,
    score: Optional[ScoreConfig] = None,
    **fields: Any,
) -> Manifest:
    """The bundle.json of `model` (its file name in the bundle: `model_file`) with a threshold.

    Kind, quantization, preprocessing, score and extra come from the card; the tensors from the
    interpreter. `preprocessing` and `score` replace the card's (calibration's ROI and score
    options); `fields` are the Manifest's other fields (score statistics, metrics, geometry).
    The model's sha256 is left empty: edge.bundle.write_bundle fills it from the copied file.
    """
    return Manifest(
        model=ModelInfo(
            file=model_file,
            sha256="",
            kind=card.kind,
            quantization=card.quantization,
            input=tensor_spec(model.input),
            outputs=[tensor_spec(o) for o in model.outputs],
        ),
        preprocessing=preprocessing if preprocessing is not None else card.preprocessing,
        score=score if score is not None else card.score,
        threshold=threshold,
        extra=dict(card.extra),
        signal=card.signal,
        **fields,
    )
