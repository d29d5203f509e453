"""`edge export` for the feature model (train/padim.py): backbone + per-cell Gaussians → ONE .tflite + card.

The run has no model.keras: the model is built from RUN_DIR/padim.npz (train.padim.build_model).
Its output is the anomaly map, so the card's kind is "anomaly_map". For int8 the Gaussians are
refitted on the quantized backbone's features (`refit_on_quantized_features`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.bundle import ModelCard, write_card
from edge.preprocess import Preprocessing
from edge.scoring import ScoreConfig
from export.convert import convert_quietly, export_target
from export.quantized_features import quantized_features, training_representative
from train.padim import Gaussians, PadimConfig, Projection, build_feature_model, build_model, fit_gaussians, load_run
from train.runinfo import PADIM_FILE
from train.tfenv import import_tensorflow

CARD_KIND = "anomaly_map"  # the model outputs the anomaly map: the device only resizes and scores it


def refit_on_quantized_features(
    config: PadimConfig,
    gauss: Gaussians,
    projection: Optional[Projection],
    representative: np.ndarray,
    files: list[str],
    preprocessing: Preprocessing,
    scratch: Path,
    log: Callable[[str], None] = print,
) -> Gaussians:
    """Calibrate what you deploy, inside the model: Gaussians fitted on the int8 backbone's features.

    int8 adds noise to every feature, and the Mahalanobis distance weighs most exactly the
    low-variance directions where that noise is largest: Gaussians fitted on float features call
    the noise a defect (magnetic tiles, pixel AUROC: float 0.789, int8 0.767). The backbone part
    is quantized alone with the same representative frames, so it gets the same integer ranges as
    in the full model; the training images' features are computed with it and the Gaussians refitted
    (int8 0.784). benchmarks/results/quality.md has the figures.
    """
    features_model, _ = build_feature_model(config, gauss, projection)
    feats = quantized_features(features_model, representative, files, preprocessing, scratch, log)
    log(f"int8: Gaussians refitted on the quantized backbone's features of {len(feats)} training images")
    return fit_gaussians(feats, config.eps)


def export_padim(
    run_dir: str | Path,
    quantize: str = "int8",
    out: Optional[str | Path] = None,
    representative: int = 200,
    synthetic: int = 60,
    threads: Optional[int] = 2,
    log: Callable[[str], None] = print,
    refit: bool = True,
) -> Path:
    """The whole model (backbone + per-cell Gaussians) → one .tflite and its card.

    int8: full integer, uint8 in/out; ranges from up to `representative` training frames plus
    `synthetic` frames with drawn defects (so defects are not clipped to the normal maximum), and
    the Gaussians refitted on the quantized backbone's features (refit_on_quantized_features).
    """
    config, gauss, projection, run = load_run(run_dir)
    import_tensorflow(threads)
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    run_dir = Path(run_dir)
    target = export_target(run_dir, quantize, out)
    head = None
    rep = None
    if quantize == "int8":
        files = run["train_files"]
        rep = training_representative(files, preprocessing, representative, synthetic)
        if refit:  # refit=False only to measure what the refit gains
            trimmed = set(run.get("trimmed_files", []))
            kept = [f for f in files if f not in trimmed]
            scratch = target.with_name(".features_int8.tflite")
            head = refit_on_quantized_features(config, gauss, projection, rep, kept, preprocessing, scratch, log)
    model = build_model(config, gauss, projection, head)
    blob = convert_quietly(model, quantize, rep, log, "int8 ranges (whole model)")
    target.write_bytes(blob)
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,
        preprocessing=preprocessing,
        score=ScoreConfig(**run["score"]),
        source=str(run_dir / PADIM_FILE),
        extra={"arch": "padim", "grid": run["grid"], "feature_channels": run["feature_channels"]},
    )
    write_card(target, card)
    log(f"exported {target} ({target.stat().st_size / 1e6:.1f} MB, {quantize})")
    return target
