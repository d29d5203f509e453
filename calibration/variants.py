"""A bundle that carries the ONNX model beside the .tflite (`edge calibrate MODEL --onnx-model M.onnx`).

The two are the same trained model, quantized by two tools: their scores differ, so each gets its own
threshold, set on its own scores of the same images through the device's code (calibrate what you
deploy). The main threshold is the .tflite's (LiteRT); the ONNX model's is
`Manifest.variant_calibration["onnxruntime"]`, its scores in report/scores.onnxruntime.csv
(edge.web.sensitivity.scores_csv). `edge run --runtime onnxruntime` uses it (edge.runtime.for_runtime).

Here: which runtime scores which model, the checks that the .onnx is the .tflite's twin, and the
variant's files and summary lines. calibration.calibrate does the scoring.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from calibration.metrics import false_alarm_rate
from calibration.report import write_scores_csv
from edge.bundle import Bundle, ModelCard, read_card
from edge.errors import EdgeError
from edge.model import ModelBase
from edge.runtime import RuntimeOptions, is_onnx
from edge.web.sensitivity import scores_csv

# What must agree between the two cards: the same input, the same score (quantization may differ).
_SAME = ("kind", "preprocessing", "score", "signal")


def runtimes_for(
    runtime: Optional[RuntimeOptions], onnx_path: Optional[Path]
) -> tuple[Optional[RuntimeOptions], Optional[RuntimeOptions]]:
    """(how the main model runs, how the ONNX model runs). With an ONNX model beside it the main model
    is a .tflite: LiteRT (a delegate if one was asked), the ONNX model ONNX Runtime with the providers asked."""
    if onnx_path is None:
        return runtime, None
    onnx = RuntimeOptions(runtime="onnxruntime", providers=runtime.providers if runtime is not None else None)
    main = runtime if runtime is not None and runtime.runtime == "litert" else None
    return main, onnx


def onnx_only(keep: Optional[Bundle], onnx_path: Optional[Path], runtime: Optional[RuntimeOptions]) -> bool:
    """Recalibrating (`keep`: the parent) with --runtime onnxruntime a bundle that keeps an ONNX model beside
    its .tflite: only the ONNX model is scored again; the .tflite's calibration is kept."""
    asked = runtime is not None and runtime.runtime == "onnxruntime"
    return keep is not None and onnx_path is not None and asked


def check_onnx_card(model_path: Path, card: ModelCard, onnx_path: Path) -> ModelCard:
    """The .onnx's card, when it is an ONNX export of the same run as MODEL (its card agrees); one line if not."""
    if is_onnx(model_path):
        raise EdgeError(
            f"{model_path.name} is itself an ONNX model; --onnx-model goes beside the .tflite of the same run "
            "(`edge calibrate RUN/export/model_int8.tflite --onnx-model RUN/export/model_int8.onnx ...`)"
        )
    if not is_onnx(onnx_path):
        raise EdgeError(
            f"--onnx-model {onnx_path.name} is not an ONNX model (.onnx): give the model_int8.onnx that "
            "`edge export RUN --format onnx` writes"
        )
    if not onnx_path.is_file():
        raise EdgeError(f"ONNX model not found: {onnx_path}")
    theirs = read_card(onnx_path)
    for name in _SAME:
        mine, other = getattr(card, name), getattr(theirs, name)
        if mine != other:
            raise EdgeError(
                f"{onnx_path.name} is not an export of {model_path.name}'s model: its card's {name} is "
                f"{_short(other)}, {model_path.name}'s is {_short(mine)}; export both from the same run"
            )
    return theirs


def check_same_tensors(model: ModelBase, onnx: ModelBase) -> None:
    """The same input frame and output shapes (batch aside); one line if not."""
    mine = (model.input_hwc, [tuple(o.shape[1:]) for o in model.outputs])
    theirs = (onnx.input_hwc, [tuple(o.shape[1:]) for o in onnx.outputs])
    if mine != theirs:
        raise EdgeError(
            f"{onnx.path.name} is not the same model as {model.path.name}: input {theirs[0]} and outputs "
            f"{theirs[1]} against {mine[0]} and {mine[1]}; export both from the same run"
        )


def _short(value) -> str:
    dump = getattr(value, "model_dump", None)
    return str(dump(exclude_defaults=True) if dump is not None else value)


def write_variant_scores(bundle: Bundle, variant: str, scored) -> None:
    """report/scores.<variant>.csv: the variant's calibration scores, which the drift watch and the page read."""
    path = bundle.path / scores_csv(variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    normal, anomalous = scored.normal, scored.anomalous
    write_scores_csv(
        bundle.for_variant(variant).threshold,
        (normal.paths, normal.scores),
        (anomalous.paths, anomalous.scores),
        scored.anomalous_groups,
        path,
    )


def keep_other_scores(parent: Bundle, bundle: Bundle, scored_main: bool) -> None:
    """A recalibration scored one model: the other's calibration scores come along from the parent."""
    relative = scores_csv("onnxruntime" if scored_main else None)
    if (parent.path / relative).is_file() and not (bundle.path / relative).is_file():
        (bundle.path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parent.path / relative, bundle.path / relative)


def log_variant_summary(bundle: Bundle, variant: str, normal_scores: np.ndarray, log: Callable[[str], None]) -> None:
    own = bundle.for_variant(variant)
    t = own.manifest.threshold
    log(
        f"{bundle.manifest.model.variants[variant]} (--runtime {variant}): its own threshold {t.value:.6g} by "  # type: ignore[index]
        f"{t.method}; {false_alarm_rate(normal_scores, t.value):.2%} of normal images over it"
    )
    if own.manifest.metrics:
        k = own.manifest.metrics
        log(
            f"image AUROC {k['image_auroc']:.4f}; at its threshold: precision {k['precision']:.3f}, "
            f"recall {k['recall']:.3f}, F1 {k['f1']:.3f}"
        )
    for line in t.describe_confidence():
        log(line)
