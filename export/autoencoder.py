"""`edge export` for a pixel autoencoder run (--arch conv or dense): model.keras → .tflite + card.

The parity check scores held-back (validation) images both ways through edge's own code
(edge.preprocess, edge.scoring; the .tflite through edge.model.TFLiteModel as on the device;
Keras via model.predict on the same uint8 frames / 255), so a quantization that shifts the scores
shows up before calibration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edge.bundle import ModelCard, write_card
from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing, to_unit_float
from edge.scoring import ScoreConfig, error_maps, frame_scores
from export.convert import QUANTIZE_CHOICES, convert_quietly, export_target
from export.representative import int8_representative
from train.data import frames_from_files
from train.keras_infer import keras_outputs
from train.runinfo import MODEL_FILE, load_keras_run_model, read_run

CARD_KIND = "autoencoder"  # the device scores its reconstruction error (edge.detector)
MAX_PARITY = 64


@dataclass
class Parity:
    """Keras vs .tflite on the same frames, both scored by edge.scoring."""

    images: int
    source: str  # "validation" or "training" (when no image was held back)
    score_pearson: Optional[float]  # None when scores are constant (correlation undefined)
    score_max_abs_diff: float
    score_max_rel_diff: float  # max |Δscore| / mean Keras score
    pixel_max_abs_diff: float  # reconstructions, in [0, 1] units

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        r = "n/a" if self.score_pearson is None else f"{self.score_pearson:.4f}"
        return (
            f"parity on {self.images} {self.source} images: score correlation (Pearson) {r}, "
            f"max |score diff| {self.score_max_abs_diff:.3g} ({self.score_max_rel_diff:.1%} of the mean score), "
            f"max |pixel diff| {self.pixel_max_abs_diff:.3g}"
        )


def parity(
    keras_model, tflite_path: Path, frames_u8: np.ndarray, score: ScoreConfig, source: str = "validation"
) -> Parity:
    """Compare a Keras autoencoder and its .tflite (or .onnx, through ONNX Runtime) on uint8 frames (N, H, W, C)."""
    from edge.runtime import open_model, options_for_file

    keras_rec = np.asarray(keras_outputs(keras_model, to_unit_float(frames_u8)), np.float32)
    tflite = open_model(tflite_path, options_for_file(tflite_path), num_threads=1)
    lite_rec = np.concatenate([tflite.predict(frames_u8[i : i + 32])[0] for i in range(0, len(frames_u8), 32)])
    keras_scores = frame_scores(error_maps(frames_u8, keras_rec, score.error), score)
    lite_scores = frame_scores(error_maps(frames_u8, lite_rec, score.error), score)
    pearson = None
    if len(frames_u8) >= 2 and np.std(keras_scores) > 0 and np.std(lite_scores) > 0:
        pearson = float(np.corrcoef(keras_scores, lite_scores)[0, 1])
    diff = np.abs(keras_scores - lite_scores)
    mean = float(np.mean(keras_scores))
    return Parity(
        images=len(frames_u8),
        source=source,
        score_pearson=pearson,
        score_max_abs_diff=float(diff.max()),
        score_max_rel_diff=float(diff.max() / mean) if mean > 0 else 0.0,
        pixel_max_abs_diff=float(np.abs(keras_rec - lite_rec).max()),
    )


def held_back_parity(model, target: Path, run: dict, preprocessing: Preprocessing, score: ScoreConfig, log: Log):
    """Parity on the run's validation images (its training images when none were held back), or None."""
    frames, used = frames_from_files(run.get("val_files", []), preprocessing, MAX_PARITY)
    source = "validation"
    if len(used) == 0:
        frames, used = frames_from_files(run.get("train_files", []), preprocessing, MAX_PARITY)
        source = "training"
    if len(used) == 0:
        log("parity not checked: none of the run's images can be read any more")
        return None
    result = parity(model, target, frames, score, source)
    log(result.describe())
    return result


def export_autoencoder(
    run_dir: str | Path,
    quantize: str = "int8",
    *,
    representative: Optional[str | Path] = None,
    out: Optional[str | Path] = None,
    check_parity: bool = True,
    log: Log = _stderr,
) -> Path:
    """Convert an autoencoder RUN_DIR/model.keras to TFLite; write the .tflite and its card; return its path.

    quantize: int8 (full integer, uint8 input and output; needs representative images: the
    run's training images, or `representative`, a folder), float16, dynamic (int8 weights, float
    activations) or float32. The default output is RUN_DIR/export/model_<quantize>.tflite; `out`
    may be a file or an existing folder.
    """
    if quantize not in QUANTIZE_CHOICES:
        raise EdgeError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    score = ScoreConfig.model_validate(run.get("score", {}))
    rep = (
        int8_representative(run_dir, run, preprocessing, representative, "a few dozen good images", log)
        if quantize == "int8"
        else None
    )
    model = load_keras_run_model(run_dir, "edge train")
    log(f"converting {run_dir / MODEL_FILE} to TFLite ({quantize}) …")
    flatbuffer = convert_quietly(model, quantize, rep, log)
    target = export_target(run_dir, quantize, out)
    target.write_bytes(flatbuffer)

    extra: dict = {"run": str(run_dir.resolve())}
    result = held_back_parity(model, target, run, preprocessing, score, log) if check_parity else None
    if result is not None:
        extra["parity"] = result.to_dict()
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,  # type: ignore[arg-type]
        preprocessing=preprocessing,
        score=score,
        source=str((run_dir / MODEL_FILE).resolve()),
        extra=extra,
    )
    card_file = write_card(target, card)
    log(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB) and its card {card_file.name}")
    log(f"next: edge calibrate {target} --normal DIR --out BUNDLE")
    return target
