"""`edge export --format onnx`: a run's Keras model → .onnx (+ its card), for ONNX Runtime on the device.

    Keras model ──tf2onnx──► float .onnx ──onnxruntime.quantization.quantize_static (QDQ)──► int8 .onnx

The model takes float [0, 1] NHWC frames like the TFLite float exports (edge.onnx_model.OnnxModel
scales the uint8 frames); int8 is QDQ: the graph keeps float inputs and outputs, with
quantize/dequantize pairs around int8 weights and uint8 activations whose ranges come from the same
representative frames as the TFLite int8 export (export/representative.py), with drawn defects
added for the feature model as export/padim.py does. Parity against the Keras model is printed as
the TFLite exports print it, scored by edge's own code through the device's runtime seam.

Kinds: conv and dense autoencoders, and the default feature model (padim; its int8 quantizes the
backbone and keeps the per-cell Mahalanobis head in float, where the TFLite export refits the
Gaussians on the quantized features instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from edge.bundle import ModelCard, write_card
from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing, to_unit_float
from edge.scoring import ScoreConfig, frame_scores
from train.keras_infer import keras_outputs
from train.runinfo import read_run_json, run_arch

ONNX_QUANTIZE = ("int8", "float32")
ONNX_ARCHES = ("conv", "dense", "padim")
OPSET = 17  # onnxruntime 1.16+ and JetPack 5's onnxruntime-gpu 1.15+ run it
MAX_PARITY = 64
PADIM_HEAD = "cell_mahalanobis"  # train/padim.py's per-cell Mahalanobis layer: the first node kept float


def onnx_target(run_dir: Path, quantize: str, out: Optional[str | Path]) -> Path:
    """OUT, OUT/model_<quantize>.onnx when OUT is a folder, or RUN_DIR/export/model_<quantize>.onnx."""
    name = f"model_{quantize}.onnx"
    target = run_dir / "export" / name if out is None else Path(out)
    if target.is_dir():
        target = target / name
    if target.suffix.lower() != ".onnx":
        raise EdgeError(f"--out {target}: an ONNX export is a .onnx file (or a folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def keras_to_onnx(model, path: Path) -> None:
    """A Keras model whose input is float NHWC → float .onnx with a free batch."""
    import tensorflow as tf

    from train.tfenv import import_tensorflow

    import_tensorflow()
    try:
        import tf2onnx
    except ImportError:
        raise EdgeError("--format onnx needs tf2onnx and onnx: pip install 'edge-inspect[onnx-export]'") from None
    shape = (None, *tuple(model.inputs[0].shape[1:]))
    spec = (tf.TensorSpec(shape, tf.float32, name="frames"),)
    try:
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=str(path))
    except Exception as exc:  # tf2onnx raises whatever the graph rewrite hit
        raise EdgeError(f"tf2onnx could not convert the model ({type(exc).__name__}: {exc})") from None


class _Frames:
    """onnxruntime's CalibrationDataReader over uint8 frames, fed one by one as [0, 1] floats."""

    def __init__(self, input_name: str, frames_u8: np.ndarray):
        self.input_name = input_name
        self.frames = frames_u8
        self.i = 0

    def get_next(self):
        if self.i >= len(self.frames):
            return None
        self.i += 1
        return {self.input_name: to_unit_float(self.frames[self.i - 1 : self.i])}

    def rewind(self) -> None:
        self.i = 0


def float_tail(path: Path, first: str) -> list[str]:
    """The nodes from the first whose name contains `first` to the end (tf2onnx writes them in order)."""
    import onnx

    names = [n.name for n in onnx.load(str(path)).graph.node]
    start = next((i for i, n in enumerate(names) if first in n), len(names))
    return names[start:]


def quantize_qdq(
    float_path: Path,
    target: Path,
    representative: np.ndarray,
    log: Log,
    keep_float: Optional[list[str]] = None,
    per_channel: bool = True,
) -> None:
    """uint8 weights and activations, QDQ, ranges by min/max over `representative`; the nodes named
    in `keep_float` stay float. `per_channel`: one weight range per output channel (the feature
    model's depthwise convolutions need it) or one per tensor (the autoencoders: as close to Keras,
    and onnxruntime fuses it into integer kernels: 3.0 ms against 5.1 ms per channel and 7.2 ms
    float, benchmarks/results/onnx.md)."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    reader_cls = type("FramesReader", (_Frames, CalibrationDataReader), {})
    name = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    log(
        f"int8 (QDQ) ranges from {len(representative)} representative frames"
        + (f"; {len(keep_float)} head nodes kept float" if keep_float else "")
        + " …"
    )
    quantize_static(
        str(float_path),
        str(target),
        reader_cls(name, representative),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,
        # uint8 (asymmetric) weights: symmetric int8 ones lost the ranking (score correlation with the
        # float model: conv autoencoder 0.84 against 0.997, feature model 0.43), benchmarks/results/onnx.md
        weight_type=QuantType.QUInt8,
        nodes_to_exclude=keep_float or [],
    )


def _autoencoder(run_dir: Path, representative: Optional[str | Path], quantize: str, log: Log):
    from export.autoencoder import CARD_KIND
    from export.representative import int8_representative
    from train.runinfo import MODEL_FILE, load_keras_run_model, read_run

    run = read_run(run_dir)
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    score = ScoreConfig.model_validate(run.get("score", {}))
    rep = (
        int8_representative(run_dir, run, preprocessing, representative, "a few dozen good images", log)
        if quantize == "int8"
        else None
    )
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,  # type: ignore[arg-type]
        preprocessing=preprocessing,
        score=score,
        source=str((run_dir / MODEL_FILE).resolve()),
        extra={"run": str(run_dir.resolve()), "format": "onnx"},
    )
    return load_keras_run_model(run_dir, "edge train"), card, rep, run


def _padim(run_dir: Path, quantize: str, log: Log):
    from export.padim import CARD_KIND
    from export.representative import synthetic_defects
    from train.data import frames_from_files
    from train.padim import build_model, load_run
    from train.runinfo import PADIM_FILE

    config, gauss, projection, run = load_run(run_dir)
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    rep = None
    if quantize == "int8":
        frames, _ = frames_from_files(run["train_files"], preprocessing, limit=200)
        if len(frames) == 0:
            raise EdgeError("int8 needs the training images to set integer ranges; they are gone")
        rep = np.concatenate([frames, synthetic_defects(frames, 60)])
    head = _refit_on_qdq_features(run_dir, config, gauss, projection, run, rep, log) if rep is not None else None
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,  # type: ignore[arg-type]
        preprocessing=preprocessing,
        score=ScoreConfig(**run["score"]),
        source=str(run_dir / PADIM_FILE),
        extra={"arch": "padim", "grid": run["grid"], "feature_channels": run["feature_channels"], "format": "onnx"},
    )
    return build_model(config, gauss, projection, head), card, rep, run


def _refit_on_qdq_features(run_dir: Path, config, gauss, projection, run: dict, rep: np.ndarray, log: Log):
    """The Gaussians fitted on the QDQ backbone's features of the training images, as export/padim.py
    does for TFLite (its docstring says why): the backbone alone is quantized with the same frames,
    so it gets the ranges it has inside the whole model."""
    from edge.messages import Steps
    from edge.onnx_model import OnnxModel
    from train.data import frames_from_files
    from train.padim import build_feature_model, fit_gaussians

    features_model, _ = build_feature_model(config, gauss, projection)
    scratch = run_dir / "export" / ".features.float.onnx"
    quantized = scratch.with_name(".features.int8.onnx")
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        keras_to_onnx(features_model, scratch)
        quantize_qdq(scratch, quantized, rep, log)
        trimmed = set(run.get("trimmed_files", []))
        kept = [f for f in run["train_files"] if f not in trimmed]
        frames, _ = frames_from_files(kept, Preprocessing.model_validate(run["preprocessing"]))
        if len(frames) < 2:
            raise EdgeError("int8 refit needs the training images; fewer than 2 can still be read")
        model = OnnxModel(quantized, num_threads=2)
        feats = []
        with Steps("int8 refit (training images)", len(frames), log) as steps:
            for i in range(0, len(frames), 16):
                feats.append(model.predict(frames[i : i + 16])[0])
                steps.advance(len(frames[i : i + 16]))
    finally:
        scratch.unlink(missing_ok=True)
        quantized.unlink(missing_ok=True)
    log(f"int8: Gaussians refitted on the QDQ backbone's features of {len(frames)} training images")
    return fit_gaussians(np.concatenate(feats), config.eps)


def export_onnx(
    run_dir: str | Path,
    quantize: str = "int8",
    *,
    representative: Optional[str | Path] = None,
    out: Optional[str | Path] = None,
    check_parity: bool = True,
    log: Log = _stderr,
) -> Path:
    """RUN_DIR's model → .onnx (float32, or int8 as QDQ) and its card (<model>.onnx.json); returns its path."""
    if quantize not in ONNX_QUANTIZE:
        raise EdgeError(f"--format onnx takes --quantize {' or '.join(ONNX_QUANTIZE)}, not {quantize!r}")
    run_dir = Path(run_dir)
    arch = run_arch(read_run_json(run_dir))
    if arch not in ONNX_ARCHES:
        raise EdgeError(f"--format onnx exports {', '.join(ONNX_ARCHES)} runs; this run is {arch}: export it to TFLite")
    from train.tfenv import import_tensorflow

    import_tensorflow()
    if arch == "padim":
        model, card, rep, run = _padim(run_dir, quantize, log)
    else:
        model, card, rep, run = _autoencoder(run_dir, representative, quantize, log)
    target = onnx_target(run_dir, quantize, out)
    log(f"converting {run_dir.name} ({arch}) to ONNX ({quantize}) …")
    if quantize == "float32":
        keras_to_onnx(model, target)
    else:
        scratch = target.with_name(f".{target.stem}.float.onnx")
        try:
            keras_to_onnx(model, scratch)
            # The feature model's head stays float: int8 noise on the features is weighed most in the
            # low-variance directions the Mahalanobis distance whitens (export/padim.py refits the
            # Gaussians on quantized features for TFLite; ONNX can simply keep the head in float).
            keep = float_tail(scratch, PADIM_HEAD) if arch == "padim" else None
            # type: ignore below: int8 always has representative frames
            quantize_qdq(scratch, target, rep, log, keep, per_channel=arch == "padim")  # type: ignore[arg-type]
        finally:
            scratch.unlink(missing_ok=True)
    if check_parity:
        result = _parity(model, target, card, run, log)
        if result is not None:
            card.extra["parity"] = result
    card_file = write_card(target, card)
    log(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB) and its card {card_file.name}")
    log(f"next: edge calibrate {target} --normal DIR --out BUNDLE   (runs with edge run --runtime onnxruntime)")
    return target


def _parity(model, target: Path, card: ModelCard, run: dict, log: Log) -> Optional[dict]:
    """Keras vs the .onnx on held-back frames (training frames when none), through the device's seam."""
    from train.data import frames_from_files

    frames, used = frames_from_files(run.get("val_files", []), card.preprocessing, MAX_PARITY)
    source = "validation"
    if len(used) == 0:
        frames, used = frames_from_files(run.get("train_files", []), card.preprocessing, MAX_PARITY)
        source = "training"
    if len(used) == 0:
        log("parity not checked: none of the run's images can be read any more")
        return None
    if card.kind == "autoencoder":
        from export.autoencoder import parity

        result = parity(model, target, frames, card.score, source)
        log(result.describe())
        return result.to_dict()
    return _map_parity(model, target, frames, card.score, source, log)


def _map_parity(model, target: Path, frames: np.ndarray, score: ScoreConfig, source: str, log: Log) -> dict:
    """A model that outputs the anomaly map: maps and frame scores, Keras against ONNX Runtime."""
    from edge.runtime import open_model, options_for_file

    keras_maps = np.asarray(keras_outputs(model, to_unit_float(frames), batch_size=16), np.float32)[..., 0]
    onnx = open_model(target, options_for_file(target), num_threads=1)
    onnx_maps = np.concatenate([onnx.predict(frames[i : i + 16])[0] for i in range(0, len(frames), 16)])[..., 0]
    a, b = frame_scores(keras_maps, score), frame_scores(onnx_maps, score)
    pearson = float(np.corrcoef(a, b)[0, 1]) if len(a) >= 2 and np.std(a) > 0 and np.std(b) > 0 else None
    diff = np.abs(a - b)
    mean = float(np.mean(a))
    result = {
        "images": len(frames),
        "source": source,
        "score_pearson": pearson,
        "score_max_abs_diff": float(diff.max()),
        "score_max_rel_diff": float(diff.max() / mean) if mean > 0 else 0.0,
        "map_max_abs_diff": float(np.abs(keras_maps - onnx_maps).max()),
    }
    r = "n/a" if pearson is None else f"{pearson:.4f}"
    log(
        f"parity on {len(frames)} {source} images: score correlation (Pearson) {r}, max |score diff| "
        f"{result['score_max_abs_diff']:.3g} ({result['score_max_rel_diff']:.1%} of the mean score), "
        f"max |map diff| {result['map_max_abs_diff']:.3g}"
    )
    return result
