"""`edge train …`: desktop training commands, one per model kind (`edge train autoencoder`).

TensorFlow is imported inside the command functions only, so the device never loads it. Each
command reads its options and hands them to the kind's trainer from the model-kind table
(export/kinds.py), which imports the training code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.errors import EdgeError
from edge_cli import options
from edge_cli.commands._desktop import require_tensorflow

train_app = typer.Typer(
    name="train",
    help="Train a model on the desktop (needs TensorFlow): `train autoencoder` (by default the feature model) or "
    "`train classifier`. Then `edge export RUN_DIR`.",
    no_args_is_help=True,
)

AUTOENCODER_ARCHS = ("features", "memory", "auto", "conv", "dense", "draem")
# --arch on a signal file: the image archs' default (auto) and features mean the signals' default, dense.
SIGNAL_ARCHS = {"auto": "dense", "features": "dense", "dense": "dense", "conv": "conv1d", "conv1d": "conv1d"}


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")


def _trainer(arch: str):
    """The trainer of a model kind, from the one table of kinds (imported here: it loads the desktop code)."""
    from export.kinds import model_kind

    return model_kind(arch).trainer


def _check_color(color: Optional[str]) -> None:
    if color is not None and color not in ("grey", "rgb"):
        raise EdgeError(f"--color {color!r} must be grey or rgb")


# ---------------------------------------------------------------- the feature model's options

# The feature model's options, shared by `train autoencoder` (prefixed "features: ", as they apply
# to that --arch only) and its alias `train features`: one definition, one help text.
_FEATURE_OPTIONS = {
    "stages": ("3,4,5", "--stages", {}, "EfficientNet-Lite0 stages whose features are used (2-5)."),
    "stride": (
        16,
        "--stride",
        {},
        "pixels per anomaly-map cell (4, 8 or 16; 16 at 256 px = 16x16 cells). 8 with "
        "--neighbourhood 3 --dims 128: sharper maps, fewer parts found at a low false-alarm rate "
        "(benchmarks/results/quality.md).",
    ),
    "neighbourhood": (
        1,
        "--neighbourhood",
        {"min": 1},
        "average each feature over this many cells around each cell (1: off).",
    ),
    "dims": (0, "--dims", {"min": 0}, "principal components kept (0: all channels; fewer = a smaller, faster model)."),
    "trim": (
        0.0,
        "--trim",
        {"min": 0.0, "max": 0.49},
        "fraction of training images to leave out after a first fit, "
        "the most anomalous ones: tolerates a few defective parts among the good (e.g. 0.05).",
    ),
}


def _feature_option(name: str, prefix: str = ""):
    default, flag, limits, text = _FEATURE_OPTIONS[name]
    return typer.Option(default, flag, help=prefix + (text if prefix else text[0].upper() + text[1:]), **limits)


def _parse_stages(stages: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in stages.split(","))
    except ValueError:
        raise EdgeError(f"--stages {stages!r} must be comma-separated numbers, e.g. 3,4,5") from None


def _train_features(
    data: Path,
    out: Path,
    size: int,
    color: Optional[str],
    stages: str,
    stride: int,
    neighbourhood: int,
    dims: int,
    trim: float,
    threads: Optional[int],
) -> None:
    config = _feature_config(size, color, stages, stride, neighbourhood, dims, trim)
    require_tensorflow("train features")
    _trainer("padim")(data, out, config, threads=threads)


def _feature_config(
    size: int, color: Optional[str], stages: str, stride: int, neighbourhood: int, dims: int, trim: float
):
    _check_color(color)
    stage_list = _parse_stages(stages)
    if size % 16:
        raise EdgeError(f"--size {size} must be a multiple of 16 for the feature model (e.g. 256)")
    from train.padim import PadimConfig

    return PadimConfig(
        size=size,
        color=color,
        stages=stage_list,
        grid_stride=stride,  # type: ignore[arg-type]
        neighbourhood=neighbourhood,
        dims=dims,
        trim=trim,
    )


# ---------------------------------------------------------------- edge train autoencoder

_GOOD_DATA = typer.Option(
    ...,
    "--data",
    "-d",
    help="Folder of images of GOOD parts, or an MVTec AD root (its train/good is used). "
    "Sizes may differ: every image is resized to --size the way the device does it.",
)
_RUN_OUT = typer.Option(
    ...,
    "--out",
    "-o",
    help="Run folder to write (created if missing; an earlier run's files in it are replaced).",
)
_ARCH = typer.Option(
    "auto",
    "--arch",
    metavar="auto|features|memory|conv|dense|draem",
    help="auto (default): features or memory, whichever cross-validates better on the good images (below). "
    "features: pretrained EfficientNet-Lite0 features + a Gaussian per map cell, no training "
    "(--stages --stride --neighbourhood --dims --trim); "
    "the best on real defects of aligned parts (benchmarks/results/quality.md). "
    "memory: the same features, compared with a memory of good cells from ANY place (PatchCore-style, --bank): "
    "for parts that move on a belt, where a good part at a new place must not alarm "
    "(benchmarks/results/quality_moving.md). "
    "auto: cross-validates features and memory on the good images (3 folds; held-back images, the same moved by "
    "the displacements the images show, and synthetic defects drawn on them), trains the better and says why; "
    "features when they are within noise or there are fewer than 9 images (docs/models.md). "
    "conv: the tutorials' convolutional autoencoder (--filters --latent). dense: the tutorials' "
    "Flatten-Dense autoencoder (--units). draem: a reconstruction + segmentation network trained on "
    "synthetic defects drawn on the good images (train/draem.py). All export, calibrate and run alike.",
)
_AUTOENCODER_SIZE = typer.Option(
    None,
    "--size",
    min=8,
    help="Model input side in pixels (square). "
    "Default: 256 for features (a multiple of 16), 128 for conv/dense, "
    "draem's own default.",
)
_IMAGE_COLOR = typer.Option(
    None,
    "--color",
    metavar="grey|rgb",
    help="grey or rgb. Default: what the images are; a folder mixing both needs this.",
)
_FILTERS = typer.Option(
    "32,64", "--filters", help="conv/draem: encoder filters per block; each block halves the image."
)
_LATENT = typer.Option(64, "--latent", min=1, help="conv/dense: size of the dense bottleneck vector.")
_UNITS = typer.Option("256,64", "--units", help="dense: hidden layer widths, encoder side.")
_LATENT_KMEANS = typer.Option(
    0,
    "--latent-kmeans",
    min=0,
    metavar="K",
    help="conv/dense: also fit K-means (K clusters) on the training images' latent "
    "vectors; `edge export` then builds a model whose score is the distance to the "
    "nearest centroid (the tutorials' baseline; no defect location).",
)
_EPOCHS = typer.Option(
    50, "--epochs", min=1, help="conv/dense/draem: most epochs to train (early stopping may end sooner)."
)
_BATCH_SIZE = typer.Option(32, "--batch-size", min=1, help="conv/dense/draem: images per training step.")
_VAL_SPLIT = typer.Option(
    0.1,
    "--val-split",
    min=0.0,
    max=0.9,
    help="conv/dense/draem: fraction of images held back for validation and export parity.",
)
_PATIENCE = typer.Option(
    10,
    "--patience",
    min=0,
    help="conv/dense: stop after this many epochs without a better validation loss "
    "(0: never); the best epoch's weights are kept.",
)
_BANK = typer.Option(
    None,
    "--bank",
    help="memory: good cells kept in the memory (default: 10 % of the training cells, at most 4096, "
    "chosen by greedy coreset so they still cover all the others). More: slower frames, a little finer.",
)
_SEED = typer.Option(0, "--seed", help="Random seed (Python, NumPy, Keras and the split): same seed, same model.")
_LEARNING_RATE = typer.Option(1e-3, "--learning-rate", min=0.0, help="conv/dense/draem: Adam learning rate.")
_WINDOW = typer.Option(
    None, "--window", min=2, help="signals: samples per window of a recording (one sample per line)."
)
_HOP = typer.Option(None, "--hop", min=1, help="signals: samples between windows of a recording (default: --window).")
_LABEL_COLUMN = typer.Option(
    "auto",
    "--label-column",
    metavar="auto|first|none",
    help="signals: whether each line starts with a class label (auto: a header says so, or a first column of "
    "a few whole numbers, as in the UCR format).",
)
_NORMAL_LABEL = typer.Option(
    None, "--normal-label", help="signals: the label of normal windows (default: the commonest; ECG5000: 1)."
)
_NORMALISE = typer.Option(
    "minmax",
    "--normalise",
    metavar="minmax|zscore|global",
    help="signals: each window by its own min and max (default), its own mean and std, or the training "
    "windows' range (the tutorials'); recorded in the run and the bundle.",
)
# image autoencoder defaults that mean "the signal model's own" when the data is a signal file
_SIGNAL_DEFAULTS = {"units": ("256,64", (64,)), "latent": (64, 32), "filters": ("32,64", (16, 32))}


@train_app.command("autoencoder")
def autoencoder(
    data: Path = _GOOD_DATA,
    out: Path = _RUN_OUT,
    arch: str = _ARCH,
    size: Optional[int] = _AUTOENCODER_SIZE,
    color: Optional[str] = _IMAGE_COLOR,
    stages: str = _feature_option("stages", "features: "),
    stride: int = _feature_option("stride", "features: "),
    neighbourhood: Optional[int] = typer.Option(
        None,
        "--neighbourhood",
        min=1,
        help="features/memory: average each feature over this many cells around each cell "
        "(default 1, off, for features; 3 for memory, as PatchCore).",
    ),
    dims: int = _feature_option("dims", "features: "),
    trim: float = _feature_option("trim", "features: "),
    bank: Optional[int] = _BANK,
    filters: str = _FILTERS,
    latent: int = _LATENT,
    units: str = _UNITS,
    latent_kmeans: int = _LATENT_KMEANS,
    epochs: int = _EPOCHS,
    batch_size: int = _BATCH_SIZE,
    val_split: float = _VAL_SPLIT,
    patience: int = _PATIENCE,
    seed: int = _SEED,
    learning_rate: float = _LEARNING_RATE,
    threads: Optional[int] = options.tensorflow_threads(),
    window: Optional[int] = _WINDOW,
    hop: Optional[int] = _HOP,
    label_column: str = _LABEL_COLUMN,
    normal_label: Optional[float] = _NORMAL_LABEL,
    normalise: str = _NORMALISE,
) -> None:
    """Learn what GOOD parts look like (pretrained features: --arch auto; or features, memory, conv, dense, draem).

    The default (--arch auto) chooses between two feature models from your good images: it
    cross-validates both (3 folds: held-back images, the same moved by displacements your images
    show, synthetic defects drawn on them), trains the one with the higher image AUROC in every
    fold (features when the folds overlap, or with fewer than 9 images) and prints why; run.json
    records the chosen arch and an "auto" block with the fold figures. Aligned parts get features,
    parts that move on a belt get memory (benchmarks/results/quality_moving.md).

    --arch features needs no training: EfficientNet-Lite0 ImageNet features (weights ship with
    edge-inspect) of the good images, a Gaussian fitted per anomaly-map cell. `edge export` turns
    it into ONE .tflite (full int8 too) whose output is the anomaly map. On magnetic tiles it
    reaches image AUROC ~0.96 where the tutorials' autoencoder scores ~0.57
    (benchmarks/results/quality.md). Writes OUT/padim.npz + OUT/run.json.

    --arch memory: the same features, but each cell is compared with a memory of good cells
    taken from ANY place in the training images (PatchCore-style coreset, --bank): a good part
    at a place it never occupied in training is still good. For parts that move on a belt;
    aligned parts (tiles, fixtures) do better with features. Writes OUT/memory.npz + OUT/run.json.

    --arch conv: strided Conv2D + BatchNorm + LeakyReLU encoder, dense latent vector,
    Conv2DTranspose decoder; MSE loss, Adam, early stopping. Writes OUT/model.keras,
    OUT/run.json, OUT/history.json + history.png, OUT/reconstructions.png. --arch dense and
    --latent-kmeans K are the tutorials' other baselines; --arch draem trains on synthetic
    defects. Images pass through the device's own preprocessing; unreadable or truncated
    files are skipped and counted.

    Example: edge train autoencoder --data datasets/magnetic-tile --out runs/tiles

    A signal file as --data (UCR text, CSV, or a recording; docs/signals.md) trains the tutorials'
    autoencoder for signal windows: --arch dense (the default for signals: 140 → 64 → 32 → 64 → 140;
    --units 64 --latent 32) or conv1d (--filters 16,32). Only the normal label's windows are trained on.

    Example: edge train autoencoder --data ecg_train.txt --out runs/ecg
    """
    from train.signal import is_signal_file

    if is_signal_file(data):
        _train_signal(
            data, out, arch, units, latent, filters, epochs, batch_size, val_split, patience, seed, learning_rate,
            threads, window=window, hop=hop, label=label_column, normal_label=normal_label, normalise=normalise,
        )  # fmt: skip
        return
    _check_color(color)
    _check_autoencoder_arch(arch)
    if arch == "features":
        _train_features(data, out, size or 256, color, stages, stride, neighbourhood or 1, dims, trim, threads)
        return
    if arch == "memory":
        _train_memory(data, out, size or 256, color, stages, stride, neighbourhood or 3, bank, seed, threads)
        return
    if arch == "auto":
        _train_auto(data, out, size or 256, color, stages, stride, neighbourhood, dims, trim, bank, seed, threads)
        return
    require_tensorflow("train autoencoder")
    if arch == "draem":
        _train_draem(data, out, size, color, filters, epochs, batch_size, learning_rate, seed, val_split, threads)
        return
    _trainer(arch)(
        data,
        out,
        size=size or 128,
        color=color,
        filters=filters,
        latent=latent,
        arch=arch,
        units=units,  # type: ignore[arg-type]
        latent_kmeans=latent_kmeans,
        epochs=epochs,
        batch_size=batch_size,
        val_split=val_split,
        patience=patience,
        seed=seed,
        learning_rate=learning_rate,
        threads=threads,
    )


def _train_memory(
    data: Path,
    out: Path,
    size: int,
    color: Optional[str],
    stages: str,
    stride: int,
    neighbourhood: int,
    bank: Optional[int],
    seed: int,
    threads: Optional[int],
) -> None:
    """The position-blind memory model (train/memory.py): the feature grid's options, and its bank."""
    config = _memory_config(size, color, stages, stride, neighbourhood, bank, seed)
    require_tensorflow("train autoencoder --arch memory")
    _trainer("memory")(data, out, config, threads=threads)


def _memory_config(
    size: int, color: Optional[str], stages: str, stride: int, neighbourhood: int, bank: Optional[int], seed: int
):
    stage_list = _parse_stages(stages)
    if bank is not None and bank < 1:
        raise EdgeError(f"--bank {bank} must be a positive number of memory entries (or leave it out: 10 % of cells)")
    if size % 16:
        raise EdgeError(f"--size {size} must be a multiple of 16 for the memory model (e.g. 256)")
    from train.memory import MemoryConfig

    return MemoryConfig(
        size=size,
        color=color,  # type: ignore[arg-type]
        stages=stage_list,
        grid_stride=stride,
        neighbourhood=neighbourhood,
        bank=bank,
        seed=seed,
    )


def _train_auto(
    data: Path,
    out: Path,
    size: int,
    color: Optional[str],
    stages: str,
    stride: int,
    neighbourhood: Optional[int],
    dims: int,
    trim: float,
    bank: Optional[int],
    seed: int,
    threads: Optional[int],
) -> None:
    """Cross-validate features and memory on the good images, train the better (train/auto_arch.py)."""
    padim = _feature_config(size, color, stages, stride, neighbourhood or 1, dims, trim)
    memory = _memory_config(size, color, stages, stride, neighbourhood or 3, bank, seed)
    require_tensorflow("train autoencoder --arch auto")
    from train.auto_arch import train_auto

    train_auto(data, out, padim, memory, threads=threads)


def _train_signal(
    data: Path,
    out: Path,
    arch: str,
    units: str,
    latent: int,
    filters: str,
    epochs: int,
    batch_size: int,
    val_split: float,
    patience: int,
    seed: int,
    learning_rate: float,
    threads: Optional[int],
    **signal,
) -> None:
    """The signal autoencoder (train/signal.py) with the image options that apply to it."""
    from train.autoencoder import parse_filters
    from train.signal import SignalTrainConfig

    signal_arch = SIGNAL_ARCHS.get(arch)
    if signal_arch is None:
        raise EdgeError(f"--arch {arch!r}: a signal model is dense (the default) or conv1d")
    given = {"units": units, "latent": latent, "filters": filters}
    chosen = {k: own if given[k] == image else given[k] for k, (image, own) in _SIGNAL_DEFAULTS.items()}
    require_tensorflow("train autoencoder")
    config = SignalTrainConfig(
        arch=signal_arch,
        units=parse_filters(chosen["units"]),
        latent=int(chosen["latent"]),
        filters=parse_filters(chosen["filters"]),
        epochs=epochs,
        batch_size=batch_size,
        val_split=val_split,
        patience=patience,
        seed=seed,
        learning_rate=learning_rate,
        **signal,
    )
    _trainer("signal_" + signal_arch)(data, out, config, threads=threads)


def _check_autoencoder_arch(arch: str) -> None:
    if arch not in AUTOENCODER_ARCHS:
        raise EdgeError(
            f"--arch {arch!r} must be auto (the default: features or memory, cross-validated on your good images), "
            "features (aligned parts), memory (parts that move), conv or dense "
            "(pixel autoencoders) or draem (synthetic-defect model)"
        )


def _train_draem(
    data: Path,
    out: Path,
    size: Optional[int],
    color: Optional[str],
    filters: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    val_split: float,
    threads: Optional[int],
) -> None:
    """The synthetic-defect model: its own trainer (train/draem.py) and defaults."""
    from train.autoencoder import parse_filters
    from train.draem import DraemConfig

    draem_filters = parse_filters(filters) if filters != "32,64" else DraemConfig.filters
    config = DraemConfig(
        size=size or DraemConfig.size,
        color=color,  # type: ignore[arg-type]
        filters=draem_filters,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        val_split=val_split,
    )
    _trainer("draem")(data, out, config, threads=threads)


# ---------------------------------------------------------------- edge train features


@train_app.command("features")
def features(
    data: Path = typer.Option(
        ...,
        "--data",
        "-d",
        help="Folder of images of GOOD parts, or an MVTec AD root "
        "(its train/good is used). Sizes may differ: each is resized like on the device.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (padim.npz, run.json)."),
    size: int = typer.Option(256, "--size", min=16, help="Model input side in pixels (square, a multiple of 16)."),
    color: Optional[str] = typer.Option(
        None, "--color", metavar="grey|rgb", help="grey or rgb. Default: what the images are."
    ),
    stages: str = _feature_option("stages"),
    stride: int = _feature_option("stride"),
    neighbourhood: int = _feature_option("neighbourhood"),
    dims: int = _feature_option("dims"),
    trim: float = _feature_option("trim"),
    threads: Optional[int] = options.tensorflow_threads(),
) -> None:
    """The default model of `edge train autoencoder`, by its own name: \
pretrained features + a Gaussian per map cell.

    EfficientNet-Lite0 ImageNet features (weights ship with edge-inspect) of the good images
    are brought onto a 16x16 grid (at 256 px) and a Gaussian is fitted per cell (PaDiM-style). `edge export`
    turns backbone + Gaussians into ONE .tflite (full int8 too) whose output is the anomaly
    map (model kind anomaly_map); calibrate and run it like an autoencoder. On magnetic tiles
    it lifts image AUROC from ~0.57 (autoencoder, whole-image MSE) to ~0.96
    (benchmarks/results/quality.md).

    Example: edge train features --data datasets/magnetic-tile --out runs/features
    """
    _train_features(data, out, size, color, stages, stride, neighbourhood, dims, trim, threads)


# ---------------------------------------------------------------- edge train classifier

_CLASS_DATA = typer.Option(
    ...,
    "--data",
    "-d",
    help="Folder with one sub-folder of images per class, e.g. crack/ and no_crack/. Sizes may differ: "
    "every image is resized to --size the way the device does it.",
)
_CLASSIFIER_SIZE = typer.Option(
    128, "--size", min=16, help="Model input side in pixels (square); 128 keeps hairline cracks visible."
)
_CLASSIFIER_COLOR = typer.Option(
    None,
    "--color",
    metavar="grey|rgb",
    help="grey or rgb. Default: what the images are (rgb with a pretrained backbone).",
)
_POSITIVE = typer.Option("crack", "--positive", help="The class folder that raises alerts (the defect).")
_BACKBONE = typer.Option(
    "small",
    "--backbone",
    help="small: a 4-block CNN trained from scratch (works offline, fast on a Pi); mobilenetv2 or vgg16: "
    "Keras applications, pretrained with --weights imagenet (a download) or a local file.",
)
_WEIGHTS = typer.Option(
    "none",
    "--weights",
    help="For mobilenetv2/vgg16: imagenet (downloaded by Keras: needs internet), none (from scratch), "
    "or the path of a no-top weights file. Pretrained backbones are frozen; only the head trains.",
)
_CLASSIFIER_FILTERS = typer.Option(
    "32,64,128,128",
    "--filters",
    help="Small CNN: filters per block; all but the last halve the image (128 px, 4 blocks: a 16x16 CAM).",
)
_CLASSIFIER_EPOCHS = typer.Option(30, "--epochs", min=1, help="Most epochs to train (early stopping may end sooner).")
_CLASSIFIER_BATCH_SIZE = typer.Option(32, "--batch-size", min=1, help="Images per training step.")
_CLASSIFIER_VAL_SPLIT = typer.Option(
    0.2,
    "--val-split",
    min=0.0,
    max=0.9,
    help="Fraction held back for validation (early stopping, metrics, CAM grid).",
)
_TEST_SPLIT = typer.Option(
    0.0,
    "--test-split",
    min=0.0,
    max=0.9,
    help="Fraction held back untouched for a final test (metrics.json 'test', export parity).",
)
_CLASSIFIER_PATIENCE = typer.Option(
    8,
    "--patience",
    min=0,
    help="Stop after this many epochs without a better validation loss; the best weights are kept.",
)
_AUGMENT = typer.Option(
    True,
    "--augment/--no-augment",
    help="Random flips, small rotations, brightness and contrast while training.",
)
_CLASSIFIER_SEED = typer.Option(0, "--seed", help="Random seed for the split and Keras.")
_CLASSIFIER_LEARNING_RATE = typer.Option(2e-3, "--learning-rate", min=0.0, help="Adam learning rate.")


@train_app.command("classifier")
def classifier(
    data: Path = _CLASS_DATA,
    out: Path = _RUN_OUT,
    size: int = _CLASSIFIER_SIZE,
    color: Optional[str] = _CLASSIFIER_COLOR,
    positive: str = _POSITIVE,
    backbone: str = _BACKBONE,
    weights: str = _WEIGHTS,
    filters: str = _CLASSIFIER_FILTERS,
    epochs: int = _CLASSIFIER_EPOCHS,
    batch_size: int = _CLASSIFIER_BATCH_SIZE,
    val_split: float = _CLASSIFIER_VAL_SPLIT,
    test_split: float = _TEST_SPLIT,
    patience: int = _CLASSIFIER_PATIENCE,
    augment: bool = _AUGMENT,
    seed: int = _CLASSIFIER_SEED,
    learning_rate: float = _CLASSIFIER_LEARNING_RATE,
    threads: Optional[int] = options.tensorflow_threads(),
) -> None:
    """Train a crack / no-crack CNN whose class activation map (CAM) shows where the crack is.

    The network ends last conv -> global average pooling -> dense softmax with no hidden dense
    layer, so the CAM is exact and the device draws it from the feature map and the dense
    weights (no second model). Classes are weighted against imbalance.

    Writes OUT/model.keras, OUT/run.json (classes, positive class, preprocessing, file lists),
    OUT/metrics.json (accuracy, per-class precision/recall, confusion matrix per split),
    OUT/history.json + history.png and OUT/cam_grid.png (CAM overlays on validation images).
    Then: edge export OUT --quantize int8.
    """
    _check_color(color)
    filter_list = _classifier_filters(filters)
    require_tensorflow("train classifier")
    from train.classifier import ClassifierConfig

    config = ClassifierConfig(
        size=size,
        color=color,  # type: ignore[arg-type]
        backbone=backbone,  # type: ignore[arg-type]
        weights=weights,
        filters=filter_list,
        epochs=epochs,
        batch_size=batch_size,
        val_split=val_split,
        test_split=test_split,
        patience=patience,
        learning_rate=learning_rate,
        augment=augment,
        seed=seed,
        positive=positive,
        threads=threads,
    )
    _trainer("classifier")(data, out, config)


def _classifier_filters(filters: str) -> tuple[int, ...]:
    try:
        filter_list = tuple(int(f) for f in filters.split(",") if f.strip())
    except ValueError:
        raise EdgeError(f"--filters {filters!r} must be comma-separated integers, e.g. 32,64,128,128") from None
    if not filter_list or min(filter_list) < 1:
        raise EdgeError(f"--filters {filters!r} must be positive integers, e.g. 32,64,128,128")
    return filter_list
