"""`edge export` for a signal autoencoder run (--arch dense or conv1d on a signal file): model.keras → .tflite + card.

Like the image autoencoders (export/autoencoder.py): full int8 with uint8 input and output, its
ranges set by the run's own training windows (RUN_DIR/windows.npz, so the data file may have
moved), and the parity of Keras and the .tflite scored by edge's own code on the held-back
windows. The card carries the signal spec (window length, normalisation) into the bundle.
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
from edge.signal_data import SignalSpec, read_signal_file, to_frame
from export.autoencoder import parity
from export.convert import QUANTIZE_CHOICES, convert_quietly, export_target
from export.representative import MAX_REPRESENTATIVE
from train.runinfo import MODEL_FILE, load_keras_run_model, read_run
from train.signal import WINDOWS_FILE

CARD_KIND = "autoencoder"  # the device scores the window's reconstruction error (edge.autoencoder)


def run_windows(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) uint8 windows (N, 1, L, 1) the run saved."""
    path = run_dir / WINDOWS_FILE
    try:
        with np.load(path) as saved:
            return saved["train"], saved["val"]
    except (OSError, KeyError, ValueError) as exc:
        raise EdgeError(f"cannot read {path} ({exc}); re-run `edge train autoencoder --data FILE`") from None


def _representative(run_dir: Path, spec: SignalSpec, folder: Optional[Path], train: np.ndarray, log: Log) -> np.ndarray:
    if folder is not None:  # --representative: a signal file of normal windows
        rep, source = to_frame(read_signal_file(folder, spec.length, spec.hop).windows, spec), str(folder)
    else:
        rep, source = train, f"the run's {len(train)} training windows"
    if len(rep) > MAX_REPRESENTATIVE:
        rep = rep[np.linspace(0, len(rep) - 1, MAX_REPRESENTATIVE).round().astype(int)]
    log(f"int8 ranges from {len(rep)} windows ({source})")
    return rep


def export_signal(
    run_dir: str | Path,
    quantize: str = "int8",
    *,
    representative: Optional[str | Path] = None,
    out: Optional[str | Path] = None,
    check_parity: bool = True,
    log: Log = _stderr,
) -> Path:
    """Convert a signal run's model.keras to TFLite; write the .tflite and its card; return its path."""
    if quantize not in QUANTIZE_CHOICES:
        raise EdgeError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    spec = SignalSpec.model_validate(run["signal"])
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    score = ScoreConfig.model_validate(run.get("score", {}))
    train, val = run_windows(run_dir)
    rep = (
        _representative(run_dir, spec, Path(representative) if representative else None, train, log)
        if quantize == "int8"
        else None
    )
    model = load_keras_run_model(run_dir, "edge train autoencoder --data FILE")
    log(f"converting {run_dir / MODEL_FILE} to TFLite ({quantize}) …")
    flatbuffer = convert_quietly(model, quantize, rep, log, what="int8 ranges (windows)")
    target = export_target(run_dir, quantize, out)
    target.write_bytes(flatbuffer)

    extra: dict = {"run": str(run_dir.resolve())}
    if check_parity:
        held, source = (val, "validation") if len(val) else (train, "training")
        result = parity(model, target, held[:256], score, source)
        log(result.describe().replace(" images", " windows"))
        extra["parity"] = result.to_dict()
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,  # type: ignore[arg-type]
        preprocessing=preprocessing,
        score=score,
        source=str((run_dir / MODEL_FILE).resolve()),
        extra=extra,
        signal=spec,
    )
    card_file = write_card(target, card)
    log(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB) and its card {card_file.name}")
    log(f"next: edge calibrate {target} --normal LABELLED_FILE --method meanstd:1 --out BUNDLE")
    return target
