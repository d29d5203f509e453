"""`edge export` for a DRAEM run (train/draem.py): model.keras (image → anomaly map) → .tflite + card.

The model's output is the anomaly map itself, so the card's kind is "anomaly_map" and the device
scores it with the detector of pretrained-feature models. int8 ranges come from training frames
plus frames with synthetic defects (the map's range must reach what a defect produces).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from edge.bundle import ModelCard, write_card
from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing
from edge.scoring import ScoreConfig
from export.convert import convert_keras, export_target
from train.data import frames_from_files
from train.draem import synthetic_anomalies
from train.runinfo import MODEL_FILE, load_keras_run_model, read_run
from train.tfenv import import_tensorflow, native_output_captured

CARD_KIND = "anomaly_map"  # the model outputs the anomaly map: the device only resizes and scores it


def export_draem(
    run_dir: str | Path,
    quantize: str = "int8",
    out: Optional[str | Path] = None,
    representative: int = 200,
    synthetic: int = 100,
    threads: Optional[int] = None,
    log: Log = _stderr,
) -> Path:
    """RUN_DIR/model.keras → .tflite (+ card, kind anomaly_map).

    int8: full integer, uint8 in/out; ranges from up to `representative` training frames PLUS
    `synthetic` altered ones: calibrated on good frames alone, the map's range (and the layers
    that respond to defects) would clip at what a good part produces.
    """
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    if run.get("arch") != "draem":
        raise EdgeError(f"{run_dir} is not a DRAEM run (run.json arch is {run.get('arch')!r})")
    import_tensorflow(threads)
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    model = load_keras_run_model(run_dir, "edge train autoencoder --arch draem")
    rep = None
    if quantize == "int8":
        rep = _representative_with_defects(run_dir, run, preprocessing, representative, synthetic, log)
    with native_output_captured():
        blob = convert_keras(model, quantize, rep)
    target = export_target(run_dir, quantize, out)
    target.write_bytes(blob)
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,
        preprocessing=preprocessing,  # type: ignore[arg-type]
        score=ScoreConfig(**run["score"]),
        source=str((run_dir / MODEL_FILE).resolve()),
        extra={
            "arch": "draem",
            "map_shape": run.get("map_shape"),
            "params": run.get("params"),
            "run": str(run_dir.resolve()),
        },
    )
    write_card(target, card)
    log(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB, {quantize}) and its card")
    log(f"next: edge calibrate {target} --normal DIR --out BUNDLE")
    return target


def _representative_with_defects(
    run_dir: Path, run: dict, preprocessing: Preprocessing, representative: int, synthetic: int, log: Log
) -> np.ndarray:
    """Up to `representative` training frames plus `synthetic` of them altered by train/draem.py's own defects."""
    frames, _ = frames_from_files(run.get("train_files", []), preprocessing, limit=representative)
    if len(frames) == 0:
        raise EdgeError(
            f"--quantize int8 needs the training images listed in {run_dir / 'run.json'} to set "
            "integer ranges; none can be read (moved or deleted?)"
        )
    rng = np.random.default_rng(0)
    picks = frames[rng.integers(len(frames), size=synthetic)]
    altered, _ = synthetic_anomalies(picks, rng, probability=1.0) if synthetic else (picks[:0], None)
    log(f"int8 ranges from {len(frames)} training frames + {len(altered)} with synthetic defects")
    return np.concatenate([frames, altered])
