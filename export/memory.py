"""`edge export` for the memory model (train/memory.py): backbone + nearest-entry search → ONE .tflite + card.

The run has no model.keras: the model is built from RUN_DIR/memory.npz (train.memory.build_model).
Its output is the anomaly map, so the card's kind is "anomaly_map". For int8 the bank is rebuilt
from the quantized backbone's features of the training images (export/quantized_features.py), as
the feature model refits its Gaussians: a good cell must find its nearest entry in the same
(quantized) space it is computed in, or rounding noise reads as distance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from edge.bundle import ModelCard, write_card
from edge.preprocess import Preprocessing
from edge.scoring import ScoreConfig
from export.convert import convert_quietly, export_target
from export.quantized_features import quantized_features, training_representative
from train.memory import build_bank, build_feature_model, build_model, load_run
from train.runinfo import MEMORY_FILE
from train.tfenv import import_tensorflow

CARD_KIND = "anomaly_map"  # the model outputs the anomaly map: the device only resizes and scores it


def export_memory(
    run_dir: str | Path,
    quantize: str = "int8",
    out: Optional[str | Path] = None,
    representative: int = 200,
    synthetic: int = 60,
    threads: Optional[int] = 2,
    log: Callable[[str], None] = print,
    rebuild: bool = True,
) -> Path:
    """The whole model (backbone + memory bank) → one .tflite and its card.

    int8: full integer, uint8 in/out; ranges from up to `representative` training frames plus
    `synthetic` frames with drawn defects (so a defect's distance is not clipped to the normal
    maximum), and the bank rebuilt on the quantized backbone's features (`rebuild=False` only to
    measure what that gains).
    """
    config, memory, run = load_run(run_dir)
    import_tensorflow(threads)
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    run_dir = Path(run_dir)
    target = export_target(run_dir, quantize, out)
    bank = None
    rep = None
    if quantize == "int8":
        files = run["train_files"]
        rep = training_representative(files, preprocessing, representative, synthetic)
        if rebuild:
            scratch = target.with_name(".features_int8.tflite")
            feats = quantized_features(build_feature_model(config, memory), rep, files, preprocessing, scratch, log)
            bank, _ = build_bank(feats, config)
            log(
                f"int8: memory of {len(bank)} entries rebuilt on the quantized backbone's features "
                f"of {len(feats)} images"
            )
    model = build_model(config, memory, bank)
    blob = convert_quietly(model, quantize, rep, log, "int8 ranges (whole model)")
    target.write_bytes(blob)
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,
        preprocessing=preprocessing,
        score=ScoreConfig(**run["score"]),
        source=str(run_dir / MEMORY_FILE),
        extra={"arch": "memory", "grid": run["grid"], "feature_channels": run["feature_channels"], "bank": run["bank"]},
    )
    write_card(target, card)
    log(f"exported {target} ({target.stat().st_size / 1e6:.1f} MB, {quantize})")
    return target
