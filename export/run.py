"""`edge export`: a training run's model.keras → a .tflite and its model card, with a parity check.

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
from edge.imaging import list_images
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing, Preprocessor, to_unit_float
from edge.scoring import ScoreConfig, error_maps, frame_scores
from export.convert import QUANTIZE_CHOICES, convert_quietly, export_target
from train.data import frames_from_files, load_images
from train.runinfo import MODEL_FILE, read_run

MAX_REPRESENTATIVE = 200  # enough to set int8 ranges; more only slows the converter
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
    """Compare a Keras autoencoder and its .tflite on uint8 frames (N, H, W, C)."""
    from edge.model import TFLiteModel

    keras_rec = np.asarray(keras_model.predict(to_unit_float(frames_u8), verbose=0, batch_size=32), np.float32)
    tflite = TFLiteModel(tflite_path, num_threads=1)
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


def representative_frames(
    run: dict, preprocessing: Preprocessing, folder: Optional[str | Path] = None, limit: int = MAX_REPRESENTATIVE
) -> tuple[np.ndarray, str]:
    """uint8 frames for int8 calibration: `folder` if given, else the run's training images."""
    if folder is not None:
        files = list_images(folder)
        if len(files) > limit:
            files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
        loaded = load_images(files, what=f"representative images in {folder}")
        return Preprocessor(preprocessing).prepare_batch(loaded.images), str(folder)
    frames, used = frames_from_files(run.get("train_files", []), preprocessing, limit)
    return frames, f"{len(used)} training images listed in run.json"


def int8_representative(
    run_dir: Path, run: dict, preprocessing: Preprocessing, representative: Optional[str | Path], what: str, log: Log
) -> np.ndarray:
    """The frames that set int8 ranges; refuse when none can be read (int8 without them is guesswork)."""
    rep, rep_source = representative_frames(run, preprocessing, representative)
    if len(rep) == 0:
        raise EdgeError(
            f"--quantize int8 needs representative images to set the integer ranges, but none of the "
            f"training images listed in {run_dir / 'run.json'} can be read (moved or deleted?); "
            f"pass --representative DIR with {what}"
        )
    log(f"int8 ranges from {len(rep)} representative frames ({rep_source})")
    return rep


def load_keras_run_model(run_dir: Path, retrain: str):
    """RUN_DIR/model.keras, or one clear line naming the file and the command that makes it."""
    from train.tfenv import import_tensorflow, native_output_captured

    import_tensorflow()
    import keras

    try:
        with native_output_captured():
            return keras.models.load_model(run_dir / MODEL_FILE, compile=False)
    except Exception as exc:  # a corrupt or foreign file: say which, not a traceback
        raise EdgeError(
            f"cannot load {run_dir / MODEL_FILE} ({type(exc).__name__}: {exc}); re-run `{retrain}`"
        ) from None


def export_run(
    run_dir: str | Path,
    quantize: str = "int8",
    *,
    representative: Optional[str | Path] = None,
    out: Optional[str | Path] = None,
    check_parity: bool = True,
    log: Log = _stderr,
) -> Path:
    """Convert RUN_DIR/model.keras to TFLite; write the .tflite and its card; return the .tflite path.

    quantize: int8 (full integer, uint8 input and output; needs representative images: the
    run's training images, or `representative`, a folder), float16, dynamic (int8 weights, float
    activations) or float32. The default output is RUN_DIR/export/model_<quantize>.tflite; `out`
    may be a file or an existing folder.
    """
    if quantize not in QUANTIZE_CHOICES:
        raise EdgeError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    run_dir = Path(run_dir)
    if (
        run_dir / "padim.npz"
    ).is_file():  # the default `edge train autoencoder` (features): no model.keras; train/padim.py
        from train.padim import export_padim

        return export_padim(run_dir, quantize, out=out, log=log)
    run = read_run(run_dir)
    if run.get("arch") == "draem":  # `edge train autoencoder --arch draem`: see train/draem.py
        from train.draem import export_draem

        return export_draem(run_dir, quantize, out=out, log=log)
    kind = run["kind"]
    if kind == "classifier":  # two outputs + CAM head in the card: see export/classifier.py
        from export.classifier import export_classifier_run

        return export_classifier_run(
            run_dir, quantize, representative=representative, out=out, check_parity=check_parity, log=log
        )
    if kind == "autoencoder" and run.get("latent_kmeans"):  # `--latent-kmeans K`: see train/latent_kmeans.py
        from train.latent_kmeans import export_latent_kmeans

        return export_latent_kmeans(run_dir, quantize, out=out, representative=representative, log=log)
    if kind != "autoencoder":
        raise EdgeError(
            f"{run_dir} holds a {kind!r} run; this edge-inspect exports autoencoder, classifier and "
            "anomaly_map (edge train autoencoder --arch features|draem) runs"
        )
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
    if check_parity:
        frames, used = frames_from_files(run.get("val_files", []), preprocessing, MAX_PARITY)
        source = "validation"
        if len(used) == 0:
            frames, used = frames_from_files(run.get("train_files", []), preprocessing, MAX_PARITY)
            source = "training"
        if len(used):
            result = parity(model, target, frames, score, source)
            log(result.describe())
            extra["parity"] = result.to_dict()
        else:
            log("parity not checked: none of the run's images can be read any more")
    card = ModelCard(
        kind="autoencoder",
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
