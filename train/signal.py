"""`edge train autoencoder --data SIGNAL_FILE`: the tutorials' autoencoder for fixed-length signal windows.

The windows (edge/signal_data.py: UCR text, CSV, or a recording cut into windows) of the normal
class only are normalised as the device will (per window by default) and fed as 1 x length grey
frames, so export, calibration and the device treat the model like an image autoencoder (model
kind "autoencoder", the score the mean squared reconstruction error of the window).

Architectures (`--arch`):
  dense   the tutorials' (ECG5000): Flatten → Dense(units…) ReLU → Dense(latent) ReLU → mirrored
          → Dense(length) sigmoid. Default units 64, latent 32: 140 → 64 → 32 → 64 → 140.
  conv1d  a small 1-D convolutional one: two strided Conv1D (kernel 7) that halve the window each,
          a dense bottleneck, and UpSampling1D + Conv1D back; the window is padded to a multiple
          of 4 inside the model and cropped at the end, so any length works.
Loss MSE (what the score measures), Adam, early stopping on held-back normal windows.

Writes OUT/model.keras, OUT/run.json (with the signal spec: length and normalisation),
OUT/windows.npz (the training and validation windows as the model saw them: export's int8 ranges
and parity need no data file) and OUT/history.json + history.png.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from edge import __version__
from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing, to_unit_float
from edge.scoring import ScoreConfig
from edge.signal_data import SignalSet, SignalSpec, fit_spec, read_signal_file, to_frame
from train.data import split_indices
from train.keras_fit import compile_for_fit
from train.runinfo import HISTORY_FILE, MODEL_FILE, RUN_FILE, write_run

WINDOWS_FILE = "windows.npz"
SIGNAL_ARCHS = {"dense": "signal_dense", "conv1d": "signal_conv1d"}  # --arch → run.json arch
SIGNAL_EXTENSIONS = (".txt", ".csv", ".tsv", ".dat", ".ts")


def is_signal_file(path: str | Path) -> bool:
    """A file (not a folder of images) with a text extension, or whose first line is numbers."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() in SIGNAL_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    first = head.split(b"\n", 1)[0].strip()
    return bool(first) and all(c in b"0123456789+-.eE,;\t " for c in first)


@dataclass
class SignalTrainConfig:
    arch: str = "dense"  # dense or conv1d
    units: tuple[int, ...] = (64,)
    latent: int = 32
    filters: tuple[int, ...] = (16, 32)
    window: Optional[int] = None  # recordings: samples per window
    hop: Optional[int] = None
    label: str = "auto"  # auto, first, none: is the first column a class label
    normal_label: Optional[float] = None  # default: the commonest label
    normalise: str = "minmax"
    epochs: int = 200
    batch_size: int = 32
    val_split: float = 0.1
    patience: int = 20
    seed: int = 0
    learning_rate: float = 1e-3

    def check(self) -> None:
        if self.arch not in SIGNAL_ARCHS:
            raise EdgeError(f"--arch {self.arch!r}: a signal model is dense (the default) or conv1d")
        if self.latent < 1 or not self.units or min(self.units) < 1 or not self.filters or min(self.filters) < 1:
            raise EdgeError("--units, --filters and --latent must be positive whole numbers")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 0:
            raise EdgeError("--epochs and --batch-size must be at least 1, --patience 0 or more")


def build_signal_autoencoder(length: int, config: SignalTrainConfig):
    """The Keras model: (1, length, 1) in [0, 1] → the same shape, sigmoid."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(1, length, 1), name="window")
    if config.arch == "dense":
        x = layers.Flatten(name="flatten")(inputs)
        for i, u in enumerate(config.units):
            x = layers.Dense(u, activation="relu", name=f"enc_dense{i}")(x)
        x = layers.Dense(config.latent, activation="relu", name="latent")(x)
        for i, u in reversed(list(enumerate(config.units))):
            x = layers.Dense(u, activation="relu", name=f"dec_dense{i}")(x)
        x = layers.Dense(length, activation="sigmoid", name="dec_out")(x)
    else:
        pad = (-length) % 4
        x = layers.Reshape((length, 1), name="as_1d")(inputs)
        x = layers.ZeroPadding1D((0, pad), name="pad")(x)
        f1, f2 = config.filters[0], config.filters[-1]
        x = layers.Conv1D(f1, 7, strides=2, padding="same", activation="relu", name="enc_conv0")(x)
        x = layers.Conv1D(f2, 7, strides=2, padding="same", activation="relu", name="enc_conv1")(x)
        steps = (length + pad) // 4
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(config.latent, activation="relu", name="latent")(x)
        x = layers.Dense(steps * f2, activation="relu", name="dec_dense")(x)
        x = layers.Reshape((steps, f2), name="dec_reshape")(x)
        x = layers.UpSampling1D(2, name="dec_up0")(x)
        x = layers.Conv1D(f2, 7, padding="same", activation="relu", name="dec_conv0")(x)
        x = layers.UpSampling1D(2, name="dec_up1")(x)
        x = layers.Conv1D(f1, 7, padding="same", activation="relu", name="dec_conv1")(x)
        x = layers.Conv1D(1, 7, padding="same", activation="sigmoid", name="dec_out")(x)
        x = layers.Cropping1D((0, pad), name="crop")(x)
    outputs = layers.Reshape((1, length, 1), name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=f"signal_{config.arch}_autoencoder")


def normal_windows(data: SignalSet, config: SignalTrainConfig, log: Log) -> np.ndarray:
    """The windows of the normal class (all of them in an unlabelled file), said in one line."""
    normal, anomalous = data.split(config.normal_label)
    label = data.normal_label(config.normal_label)
    if label is None:
        log(f"read {len(data.windows)} windows of {data.windows.shape[1]} samples from {data.path} (no labels)")
    else:
        log(
            f"read {len(data.windows)} windows of {data.windows.shape[1]} samples from {data.path}; "
            f"label {label:g} is normal ({int(normal.sum())}); the other {int(anomalous.sum())} are not trained on"
        )
    if normal.sum() < 2:
        raise EdgeError(f"{data.path.name} has {int(normal.sum())} normal window(s): too few to train on")
    return data.windows[normal]


def train_signal(
    data: str | Path,
    out: str | Path,
    config: SignalTrainConfig,
    *,
    threads: Optional[int] = None,
    progress: bool = True,
    log: Log = _stderr,
) -> Path:
    """Train a signal autoencoder on the normal windows of `data`; return the run folder `out`."""
    from train.tfenv import import_tensorflow

    config.check()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgeError(f"--out {out} is a file; pass a folder for the run")
    signal_set = read_signal_file(data, config.window, config.hop, config.label)
    windows = normal_windows(signal_set, config, log)
    normal_label = signal_set.normal_label(config.normal_label)
    spec = fit_spec(windows, config.normalise, config.hop if signal_set.recording else None, normal_label)
    frames = to_frame(windows, spec)  # uint8 (N, 1, L, 1): exactly what the device feeds the model
    train_idx, val_idx = split_indices(len(frames), config.val_split, config.seed)
    log(f"{len(train_idx)} for training, {len(val_idx)} held back for validation ({spec.describe()})")

    import_tensorflow(threads)
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_signal_autoencoder(spec.length, config)
    compile_for_fit(model, keras.optimizers.Adam(config.learning_rate), loss="mse")
    history, epochs_run, monitor = _fit(model, frames, train_idx, val_idx, config, progress)

    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE)
    np.savez_compressed(out / WINDOWS_FILE, train=frames[train_idx], val=frames[val_idx])
    (out / HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n")
    _plot(history, out)
    write_run(out, _run_json(data, signal_set, spec, config, model, history, epochs_run, len(train_idx), len(val_idx)))
    log(f"best {monitor} {min(history[monitor]):.6f} at epoch {int(np.argmin(history[monitor])) + 1} of {epochs_run}")
    log(f"model: {out / MODEL_FILE}; run info: {out / RUN_FILE}")
    log(f"next: edge export {out} --quantize int8")
    return out


def _fit(model, frames: np.ndarray, train_idx, val_idx, config: SignalTrainConfig, progress: bool):
    import keras

    x_train = to_unit_float(frames[train_idx])
    x_val = to_unit_float(frames[val_idx]) if len(val_idx) else None
    monitor = "val_loss" if x_val is not None else "loss"
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.patience or config.epochs, restore_best_weights=True
        )
    ]
    bar = None
    if progress:
        from train.progress import rich_progress_callback, steps_for

        bar = rich_progress_callback(config.epochs, steps_for(len(x_train), config.batch_size))
        callbacks.append(bar)
    try:
        fit = model.fit(
            x_train,
            x_train,
            validation_data=(x_val, x_val) if x_val is not None else None,
            epochs=config.epochs,
            batch_size=config.batch_size,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
    finally:
        if bar is not None:
            bar.progress.stop()
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    return history, len(history["loss"]), monitor


def _plot(history: dict, out: Path) -> None:
    try:
        from train.plots import plot_history
    except ImportError:  # pragma: no cover - matplotlib is a desktop dependency
        return
    plot_history(history, out / "history.png")


def _run_json(
    data, signal_set: SignalSet, spec: SignalSpec, config: SignalTrainConfig, model, history, epochs_run, n_train, n_val
) -> dict:
    import keras
    import tensorflow as tf

    monitor = "val_loss" if "val_loss" in history else "loss"
    return {
        "kind": "autoencoder",
        "arch": SIGNAL_ARCHS[config.arch],  # its row in export/kinds.py
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edge_inspect_version": __version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "model": MODEL_FILE,
        # a window is a 1 x length grey frame to the interpreter and the detector
        "preprocessing": Preprocessing(width=spec.length, height=1, color="grey").model_dump(mode="json"),
        "score": ScoreConfig(kind="mean").model_dump(mode="json"),
        "signal": spec.model_dump(mode="json"),
        "data": str(Path(data).resolve()),
        "windows_file": WINDOWS_FILE,
        "normal_label": signal_set.normal_label(config.normal_label),
        "train_windows": n_train,
        "val_windows": n_val,
        "seed": config.seed,
        "architecture": {
            "name": model.name,
            **{k: v for k, v in asdict(config).items() if k in ("arch", "units", "latent", "filters")},
            "input_shape": [1, spec.length, 1],
            "parameters": int(model.count_params()),
        },
        "epochs": config.epochs,
        "epochs_run": epochs_run,
        "best_epoch": int(np.argmin(history[monitor])) + 1,
        "best_val_loss": min(history["val_loss"]) if "val_loss" in history else None,
        "best_loss": min(history["loss"]),
        "batch_size": config.batch_size,
        "val_split": config.val_split,
        "patience": config.patience,
        "learning_rate": config.learning_rate,
        "loss": "mse",
        "optimizer": "adam",
    }
