"""`edge train autoencoder`: a convolutional autoencoder trained on images of good parts.

A defect is what the model cannot reconstruct: the device scores the per-pixel reconstruction
error (edge.scoring) against a threshold calibrated later on the exported .tflite.

Default architecture (the tutorials' ConvAutoencoder): an encoder of strided 3x3 Conv2D +
BatchNorm + LeakyReLU blocks (each halves the image), a dense latent vector, and a decoder that
mirrors it with strided Conv2DTranspose blocks, ending in a sigmoid so outputs lie in [0, 1] like
the inputs. Loss MSE, optimiser Adam, early stopping on the validation loss with the best
weights restored.

Baseline option `arch="dense"` (`--arch dense`): the tutorials' first autoencoder, Flatten →
Dense(units) with ReLU → Dense(latent) → mirrored Dense layers → Dense(H*W*C) sigmoid → Reshape.
Same run.json / export / calibration contract (model kind "autoencoder"); it has no spatial
structure, so it suits small centred images (MNIST) more than textured parts.

One change from the tutorials, for int8: they put BatchNorm after the activation. There it
stays a separate multiply-add in the .tflite, and the converter quantizes the activation with
the multiply's wide range, leaving the (small) activations a handful of integer levels. Before
the activation, BatchNorm folds into the convolution. Measured on magnetic-tile at 64x64 (10
epochs, int8 vs Keras on held-back images): score correlation 0.78 → 0.998, mean pixel error
0.038 → 0.008, at about the same validation loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from edge import __version__
from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Color, to_unit_float
from edge.scoring import ScoreConfig, error_maps
from train.data import TrainingImages, load_training_images, split_indices
from train.keras_fit import compile_for_fit
from train.keras_infer import keras_outputs
from train.runinfo import HISTORY_FILE, MODEL_FILE, RUN_FILE, write_run

# Keras' default BatchNorm momentum (0.99) suits data sets of many thousand images; with a few
# hundred good parts (a dozen steps per epoch) the moving statistics used at inference would
# still be near their initial values when early stopping looks at the validation loss, and the
# model would reconstruct flat grey. 0.9 lets them follow the data within an epoch or two.
BN_MOMENTUM = 0.9


ARCHS = ("conv", "dense")


def parse_filters(text: str | Sequence[int]) -> tuple[int, ...]:
    """'32,64' → (32, 64): encoder filters per block, each block halving the image."""
    if not isinstance(text, str):
        values = tuple(int(v) for v in text)
    else:
        try:
            values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
        except ValueError:
            raise EdgeError(f"--filters {text!r} must be comma-separated whole numbers, e.g. 32,64") from None
    if not values or any(v <= 0 for v in values):
        raise EdgeError(f"--filters {text!r} must list at least one positive number, e.g. 32,64")
    return values


def check_architecture(height: int, width: int, filters: Sequence[int], latent: int) -> None:
    """Refuse, before any data is read, a shape the decoder cannot mirror back to the input size."""
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise EdgeError(
            f"image size {width}x{height} is not divisible by {factor} (2 to the number of --filters blocks, "
            f"{len(filters)}); pick a size like {max(factor, (width // factor) * factor)} or fewer filters"
        )
    if latent <= 0:
        raise EdgeError(f"--latent {latent} must be a positive number, e.g. 64")


def build_autoencoder(
    input_shape: tuple[int, int, int],
    filters: Sequence[int] = (32, 64),
    latent: int = 64,
    arch: str = "conv",
    units: Sequence[int] = (256, 64),
):
    """The autoencoder as one Keras model: float [0, 1] (H, W, C) in, same out.

    conv: H and W must be divisible by 2**len(filters) so the decoder lands on the input size.
    dense: hidden widths `units` (filters unused). Both name the bottleneck layer "latent"
    (train/latent_kmeans.py reads it).
    """
    import keras
    from keras import layers

    if arch == "dense":
        return _build_dense(input_shape, units, latent)
    if arch != "conv":
        raise EdgeError(f"--arch {arch!r} must be one of {', '.join(ARCHS)}")
    height, width, channels = input_shape
    check_architecture(height, width, filters, latent)

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", name=f"enc_conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"enc_bn{i}")(x)  # folds into the conv
        x = layers.LeakyReLU(negative_slope=0.2, name=f"enc_act{i}")(x)
    volume = tuple(int(d) for d in x.shape[1:])
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(latent, name="latent")(x)
    x = layers.Dense(int(np.prod(volume)), name="dec_dense")(x)
    x = layers.Reshape(volume, name="dec_reshape")(x)
    for i, f in reversed(list(enumerate(filters))):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", name=f"dec_deconv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dec_bn{i}")(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"dec_act{i}")(x)
    x = layers.Conv2DTranspose(channels, 3, padding="same", name="dec_out")(x)
    outputs = layers.Activation("sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="conv_autoencoder")


def _build_dense(input_shape: tuple[int, int, int], units: Sequence[int], latent: int):
    import keras
    from keras import layers

    if latent <= 0:
        raise EdgeError(f"--latent {latent} must be a positive number, e.g. 32")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for i, u in enumerate(units):
        x = layers.Dense(u, activation="relu", name=f"enc_dense{i}")(x)
    x = layers.Dense(latent, name="latent")(x)
    for i, u in reversed(list(enumerate(units))):
        x = layers.Dense(u, activation="relu", name=f"dec_dense{i}")(x)
    x = layers.Dense(int(np.prod(input_shape)), activation="sigmoid", name="dec_out")(x)
    outputs = layers.Reshape(input_shape, name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="dense_autoencoder")


def train_autoencoder(
    data: str | Path,
    out: str | Path,
    *,
    size: int = 128,
    color: Optional[Color] = None,
    filters: str | Sequence[int] = (32, 64),
    latent: int = 64,
    arch: str = "conv",
    units: str | Sequence[int] = (256, 64),
    latent_kmeans: int = 0,
    epochs: int = 50,
    batch_size: int = 32,
    val_split: float = 0.1,
    patience: int = 10,
    seed: int = 0,
    learning_rate: float = 1e-3,
    threads: Optional[int] = None,
    progress: bool = True,
    log: Log = _stderr,
) -> Path:
    """Train the default autoencoder on the good images in `data`; return the run folder `out`.

    `data` is a folder of images or an MVTec AD root (its train/good is used). Writes in `out`:
    model.keras, run.json (everything export and calibration need to know), history.json,
    history.png and reconstructions.png. `patience=0` turns early stopping off (the best epoch's
    weights are still restored). `seed` fixes Python, NumPy and Keras seeds and the split.
    `arch` "dense" trains the tutorials' dense autoencoder (hidden widths `units`) instead.
    `latent_kmeans` K > 0 also fits K-means on the training images' latent vectors
    (train/latent_kmeans.py): `edge export` then builds the latent-distance model.
    """
    from train.tfenv import import_tensorflow

    filters, units = _checked_options(size, filters, latent, arch, units, latent_kmeans, epochs, batch_size, patience)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgeError(f"--out {out} is a file; pass a folder for the run")
    images = _read_images(data, size, color, log)
    train_idx, val_idx = split_indices(len(images.paths), val_split, seed)
    log(f"{len(train_idx)} for training, {len(val_idx)} held back for validation")

    import_tensorflow(threads)
    import keras

    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow seeds in one call
    model = build_autoencoder(images.preprocessing.input_shape, filters, latent, arch, units)
    compile_for_fit(model, keras.optimizers.Adam(learning_rate), loss="mse")
    fit = _fit(model, images.frames, train_idx, val_idx, epochs, batch_size, patience, progress)
    if fit.epochs_run < epochs:
        log(f"early stopping after epoch {fit.epochs_run}: {fit.monitor} had not improved for {patience} epochs")

    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE)
    (out / HISTORY_FILE).write_text(json.dumps(fit.history, indent=2) + "\n")
    _plot_run(model, images.frames, train_idx, val_idx, fit.history, batch_size, out)
    architecture = {"arch": arch, "filters": filters, "units": units, "latent": latent}
    training = dict(epochs=epochs, batch_size=batch_size, val_split=val_split, patience=patience)
    run = _run_json(data, images, train_idx, val_idx, model, architecture, fit, seed, learning_rate, training)
    write_run(out, run)

    best = run["best_val_loss"] if run["best_val_loss"] is not None else run["best_loss"]
    log(f"best {fit.monitor} {best:.6f} at epoch {fit.best_epoch} of {fit.epochs_run}")
    log(f"model: {out / MODEL_FILE}")
    log(f"run info: {out / RUN_FILE}; curves: {out / 'history.png'}; reconstructions: {out / 'reconstructions.png'}")
    if latent_kmeans:
        from train.latent_kmeans import fit_latent_kmeans

        fit_latent_kmeans(out, latent_kmeans, model=model, frames=images.frames[train_idx], seed=seed, log=log)
    log(f"next: edge export {out} --quantize int8")
    return out


def _checked_options(
    size: int,
    filters: str | Sequence[int],
    latent: int,
    arch: str,
    units: str | Sequence[int],
    latent_kmeans: int,
    epochs: int,
    batch_size: int,
    patience: int,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Refuse bad options before any image is read; return the parsed (filters, units)."""
    filters = parse_filters(filters)
    try:
        units = parse_filters(units)  # same syntax: comma-separated positive widths
    except EdgeError:
        raise EdgeError(f"--units {units!r} must be comma-separated positive whole numbers, e.g. 256,64") from None
    if arch not in ARCHS:
        raise EdgeError(f"--arch {arch!r} must be one of {', '.join(ARCHS)}")
    if latent_kmeans < 0:
        raise EdgeError(f"--latent-kmeans {latent_kmeans} must be 0 (off) or a number of clusters, e.g. 5")
    if epochs < 1:
        raise EdgeError(f"--epochs {epochs} must be at least 1")
    if batch_size < 1:
        raise EdgeError(f"--batch-size {batch_size} must be at least 1")
    if patience < 0:
        raise EdgeError(f"--patience {patience} must be 0 (off) or more")
    if arch == "conv":
        check_architecture(size, size, filters, latent)
    elif latent <= 0:
        raise EdgeError(f"--latent {latent} must be a positive number, e.g. 32")
    return filters, units


def _read_images(data: str | Path, size: int, color: Optional[Color], log: Log) -> TrainingImages:
    images = load_training_images(data, size, color)
    log(
        f"read {len(images.paths)} images from {images.folder} ({images.preprocessing.color}, "
        f"resized to {size}x{size} as the device does)"
    )
    if images.skipped:
        names = ", ".join(p.name for p in images.skipped[:5]) + (" …" if len(images.skipped) > 5 else "")
        log(f"skipped {len(images.skipped)} unreadable or truncated file(s): {names}")
    if len(images.sizes) > 1:
        log(f"images come in {len(images.sizes)} different sizes; all were resized to {size}x{size}")
    return images


@dataclass
class _Fit:
    history: dict[str, list[float]]
    monitor: str  # the loss early stopping watched: val_loss, or loss when nothing was held back
    epochs_run: int
    best_epoch: int


def _fit(
    model,
    frames: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    epochs: int,
    batch_size: int,
    patience: int,
    progress: bool,
) -> _Fit:
    """model.fit on the training frames, early stopping on the validation loss; best weights restored."""
    import keras

    x_train = to_unit_float(frames[train_idx])
    x_val = to_unit_float(frames[val_idx]) if len(val_idx) else None
    monitor = "val_loss" if x_val is not None else "loss"
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=patience if patience > 0 else epochs, restore_best_weights=True
        )
    ]
    bar = None
    if progress:
        from train.progress import rich_progress_callback, steps_for

        bar = rich_progress_callback(epochs, steps_for(len(x_train), batch_size))
        callbacks.append(bar)
    try:
        fit = model.fit(
            x_train,
            x_train,
            validation_data=(x_val, x_val) if x_val is not None else None,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
    finally:
        if bar is not None:  # Ctrl-C skips on_train_end: give the terminal back its cursor
            bar.progress.stop()
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    return _Fit(history, monitor, len(history["loss"]), int(np.argmin(history[monitor])) + 1)


def _plot_run(
    model, frames: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, history: dict, batch_size: int, out: Path
) -> None:
    """history.png, and reconstructions.png of up to 8 validation images (training ones when none were held back)."""
    from train.plots import plot_history, plot_reconstructions

    plot_history(history, out / "history.png")
    show = frames[val_idx if len(val_idx) else train_idx][:8]
    reconstructions = keras_outputs(model, to_unit_float(show), batch_size)
    plot_reconstructions(
        show,
        reconstructions,
        error_maps(show, reconstructions),
        out / "reconstructions.png",
        title="validation images" if len(val_idx) else "training images (none held back)",
    )


def _run_json(
    data: str | Path,
    images: TrainingImages,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    model,
    architecture: dict,
    fit: _Fit,
    seed: int,
    learning_rate: float,
    training: dict,
) -> dict:
    """run.json: everything export and calibration need to know, and how the model was trained."""
    import keras
    import tensorflow as tf

    arch = architecture["arch"]
    return {
        "kind": "autoencoder",
        "arch": arch,  # conv or dense: its row in export/kinds.py
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edge_inspect_version": __version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "model": MODEL_FILE,
        "preprocessing": images.preprocessing.model_dump(mode="json"),
        "score": ScoreConfig().model_dump(mode="json"),
        "data": str(Path(data).resolve()),
        "image_folder": str(images.folder.resolve()),
        "train_files": [str(images.paths[i].resolve()) for i in train_idx],
        "val_files": [str(images.paths[i].resolve()) for i in val_idx],
        "skipped_files": [str(p.resolve()) for p in images.skipped],
        "seed": seed,
        "architecture": {
            "name": model.name,
            "arch": arch,
            "input_shape": list(images.preprocessing.input_shape),
            **(
                {"filters": list(architecture["filters"])} if arch == "conv" else {"units": list(architecture["units"])}
            ),
            "latent": architecture["latent"],
            "parameters": int(model.count_params()),
        },
        "epochs": training["epochs"],
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "best_val_loss": min(fit.history["val_loss"]) if "val_loss" in fit.history else None,
        "best_loss": min(fit.history["loss"]),
        "batch_size": training["batch_size"],
        "val_split": training["val_split"],
        "patience": training["patience"],
        "learning_rate": learning_rate,
        "loss": "mse",
        "optimizer": "adam",
    }
