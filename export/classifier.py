"""`edge export` for a classifier run: a .tflite with two outputs and a card carrying the CAM head.

Outputs: the class probabilities (N, K) and the last conv feature map (N, h, w, C). The dense
kernel and bias go into the card's `extra` (then the bundle's), so the device computes the class
activation map itself (edge/cam.py) without a second model. TFLite may reorder outputs; the
device finds them by shape (edge.cam.split_outputs).

Parity is checked on held-back images through edge's own code: Keras vs .tflite accuracy,
largest probability difference, decision agreement and CAM correlation.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from edge.bundle import ModelCard, write_card
from edge.cam import CamHead, cam_maps
from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing, to_unit_float
from edge.scoring import ScoreConfig
from export.convert import convert_keras, export_target
from export.representative import int8_representative
from train.classifier import cam_head, two_output_model
from train.data import frames_from_files
from train.keras_infer import keras_outputs
from train.runinfo import MODEL_FILE, load_keras_run_model, read_run
from train.tfenv import native_output_captured

CARD_KIND = "classifier"  # the device reads the positive-class probability and draws the CAM (edge.cam)
MAX_PARITY = 200


@dataclass
class ClassifierParity:
    images: int
    source: str  # "test", "validation" or "training"
    keras_accuracy: float
    tflite_accuracy: float
    decision_agreement: float  # fraction of images with the same argmax class
    prob_max_abs_diff: float
    cam_pearson_mean: Optional[float]  # mean per-image correlation of the positive-class CAM

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        cam = "n/a" if self.cam_pearson_mean is None else f"{self.cam_pearson_mean:.4f}"
        return (
            f"parity on {self.images} {self.source} images: accuracy Keras {self.keras_accuracy:.4f}, "
            f"TFLite {self.tflite_accuracy:.4f}; same decision on {self.decision_agreement:.1%}; "
            f"max |probability diff| {self.prob_max_abs_diff:.3g}; CAM correlation {cam}"
        )


def tflite_predict(
    model_path: Path, frames_u8: np.ndarray, head: CamHead, batch: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, raw contrast CAMs at feature resolution) from a .tflite through edge's code."""
    from edge.cam import split_outputs
    from edge.model import TFLiteModel

    model = TFLiteModel(model_path, num_threads=1)
    probs, cams = [], []
    for i in range(0, len(frames_u8), batch):
        p, f = split_outputs(model.predict(frames_u8[i : i + batch]), len(head.class_names))
        probs.append(head.probabilities(f) if head.float_head else p)  # as the device's ClassifierDetector
        cams.append(cam_maps(f, head))
    return np.concatenate(probs), np.concatenate(cams)


def parity(
    cam_model, head: CamHead, tflite_path: Path, frames_u8: np.ndarray, labels: np.ndarray, source: str
) -> ClassifierParity:
    keras_probs, keras_feats = keras_outputs(cam_model, to_unit_float(frames_u8))
    keras_cams = cam_maps(np.asarray(keras_feats), head)
    lite_probs, lite_cams = tflite_predict(tflite_path, frames_u8, head)
    corr = []
    for a, b in zip(keras_cams, lite_cams, strict=True):
        if a.std() > 0 and b.std() > 0:
            corr.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
    return ClassifierParity(
        images=len(frames_u8),
        source=source,
        keras_accuracy=float(np.mean(keras_probs.argmax(1) == labels)),
        tflite_accuracy=float(np.mean(lite_probs.argmax(1) == labels)),
        decision_agreement=float(np.mean(keras_probs.argmax(1) == lite_probs.argmax(1))),
        prob_max_abs_diff=float(np.abs(keras_probs - lite_probs).max()),
        cam_pearson_mean=float(np.mean(corr)) if corr else None,
    )


def held_back(run: dict, preprocessing: Preprocessing, limit: int = MAX_PARITY) -> tuple[np.ndarray, np.ndarray, str]:
    """Frames and labels for parity: the run's test files, else validation, else training."""
    for split, files_key, labels_key in (
        ("test", "test_files", "test_labels"),
        ("validation", "val_files", "val_labels"),
        ("training", "train_files", "train_labels"),
    ):
        files = run.get(files_key) or []
        if not files:
            continue
        label_of = dict(zip(map(str, files), run.get(labels_key) or [], strict=False))
        frames, used = frames_from_files(files, preprocessing, limit)
        if len(used):
            return frames, np.array([label_of.get(str(p), -1) for p in used]), split
    return np.empty((0, *preprocessing.input_shape), np.uint8), np.empty(0, int), "none"


def export_classifier(
    run_dir: str | Path,
    quantize: str = "int8",
    *,
    representative: Optional[str | Path] = None,
    out: Optional[str | Path] = None,
    check_parity: bool = True,
    log: Log = _stderr,
) -> Path:
    """Convert a classifier RUN_DIR/model.keras to a two-output .tflite plus card; return its path."""
    run_dir = Path(run_dir)
    run = read_classifier_run(run_dir)
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    # Both classes: the ranges must cover crack features too, not only clean surface.
    rep = (
        int8_representative(run_dir, run, preprocessing, representative, "a few dozen images of every class", log)
        if quantize == "int8"
        else None
    )
    model = load_keras_run_model(run_dir, "edge train classifier")
    cam_model = two_output_model(model)
    # float_head: the device takes the probabilities from the feature map in float (edge.cam.CamHead)
    head = replace(cam_head(model, list(run["class_names"]), run["positive_class"]), float_head=True)
    log(f"converting {run_dir / MODEL_FILE} to TFLite ({quantize}) with two outputs: probabilities and feature map …")
    with native_output_captured():
        flatbuffer = convert_keras(cam_model, quantize, rep)  # type: ignore[arg-type]
    target = export_target(run_dir, quantize, out)
    target.write_bytes(flatbuffer)

    extra: dict = {"run": str(run_dir.resolve()), **head.to_extra()}
    if check_parity:
        extra.update(_held_back_parity(cam_model, head, target, run, preprocessing, log))
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,  # type: ignore[arg-type]
        preprocessing=preprocessing,
        score=ScoreConfig(),  # unused by classifiers: the score is the positive-class probability
        source=str((run_dir / MODEL_FILE).resolve()),
        extra=extra,
    )
    card_file = write_card(target, card)
    log(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB) and its card {card_file.name}")
    log(calibration_hint(target, run_dir, run))
    return target


VALIDATION_DIR = "validation"  # RUN_DIR/validation/<class>/: links to the held-back validation images


def validation_folders(run_dir: Path, run: dict) -> Optional[Path]:
    """RUN_DIR/validation/<class>/ holding the run's validation images (symlinks, copies where links fail).

    Calibrating on the training folder would set the threshold on images the model has learnt: its
    probabilities there are more confident than on anything new. run.json lists the held-back images;
    `edge calibrate` reads folders, so they are laid out as one. None when the run held none back.
    """
    files, labels = run.get("val_files") or [], run.get("val_labels") or []
    if not files:
        return None
    root = run_dir / VALIDATION_DIR
    for name in run["class_names"]:
        (root / name).mkdir(parents=True, exist_ok=True)
    for f, label in zip(files, labels, strict=True):
        source, target = Path(f), root / run["class_names"][label] / Path(f).name
        if target.exists() or target.is_symlink() or not source.is_file():
            continue
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)
    return root


def calibration_hint(target: Path, run_dir: Path, run: dict) -> str:
    """The `edge calibrate` line to run next: on the held-back validation images, never the training folder."""
    positive = run["positive_class"]
    other = next(n for n in run["class_names"] if n != positive)
    folders = validation_folders(run_dir, run)
    if folders is None:
        return (
            f"next: edge calibrate {target} --normal HELD_BACK/{other} --anomalous HELD_BACK/{positive} --method f1 "
            "--out BUNDLE, on images the model did not train on (this run held none back: train with --val-split)"
        )
    return (
        f"next: edge calibrate {target} --normal {folders / other} --anomalous {folders / positive} --method f1 "
        f"--out BUNDLE   (the run's {len(run['val_files'])} held-back validation images, listed in run.json)"
    )


def read_classifier_run(run_dir: Path) -> dict:
    """run.json of a classifier run, with the keys the export needs."""
    run = read_run(run_dir)
    if run["kind"] != "classifier":
        raise EdgeError(f"{run_dir} holds a {run['kind']!r} run, not a classifier")
    for key in ("class_names", "positive_class"):
        if key not in run:
            raise EdgeError(f"{run_dir / 'run.json'} lacks {key}; re-run `edge train classifier`")
    return run


def _held_back_parity(cam_model, head: CamHead, target: Path, run: dict, preprocessing: Preprocessing, log: Log):
    """{"parity": …} on the run's held-back images, or {} when none can be read any more."""
    frames, labels, source = held_back(run, preprocessing)
    if not len(frames):
        log("parity not checked: none of the run's images can be read any more")
        return {}
    result = parity(cam_model, head, target, frames, labels, source)
    log(result.describe())
    return {"parity": result.to_dict()}
