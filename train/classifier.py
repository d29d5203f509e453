"""`edge train classifier`: a crack / no-crack CNN whose class activation map shows the crack.

The network ends  last conv -> GlobalAveragePooling2D -> Dense softmax  with no hidden dense layer,
so each class logit is exactly the spatial mean of a map (the CAM) plus a bias, and the device can
draw that map from the model's feature-map output and the dense weights (edge/cam.py).

Data: one sub-folder per class (e.g. crack/ and no_crack/). Every image goes through the device's
own Preprocessor. Augmentation (flips, small rotations, brightness, contrast) runs as Keras
preprocessing layers in the *training* model only; model.keras holds the inference model.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np

from edge import __version__
from edge.cam import CamHead, heatmaps
from edge.errors import EdgeError
from edge.imaging import IMAGE_EXTENSIONS, list_images
from edge.preprocess import Color, Preprocessing, Preprocessor
from train.data import check_channels, load_images
from train.keras_fit import compile_for_fit
from train.keras_infer import keras_outputs
from train.tfenv import import_tensorflow, native_output_captured

Backbone = Literal["small", "mobilenetv2", "vgg16"]
BACKBONES = ("small", "mobilenetv2", "vgg16")
FEATURE_LAYER = "cam_features"  # the small CNN's last conv activation, what GAP averages
# The last conv activation of each pretrained backbone (VGG16: before its last pooling, 2x finer).
BACKBONE_FEATURES = {"mobilenetv2": "out_relu", "vgg16": "block5_conv3"}
HEAD_LAYER = "classifier"


@dataclass
class ClassifierConfig:
    size: int = 128
    color: Optional[Color] = None  # None: inferred from the images
    backbone: Backbone = "small"
    weights: str = "none"  # none | imagenet | path to a weights file (pretrained backbones only)
    filters: tuple[int, ...] = (32, 64, 128, 128)
    epochs: int = 30
    batch_size: int = 32
    val_split: float = 0.2
    test_split: float = 0.0
    patience: int = 8
    learning_rate: float = 2e-3
    augment: bool = True
    seed: int = 0
    positive: str = "crack"
    threads: Optional[int] = None


@dataclass
class ClassImages:
    class_names: list[str]
    paths: list[Path]
    labels: np.ndarray  # (N,) int class index
    frames: np.ndarray  # uint8 (N, H, W, C) through the device's Preprocessor
    preprocessing: Preprocessing
    skipped: list[Path] = field(default_factory=list)


def class_folders(data: str | Path) -> list[Path]:
    """Sub-folders of `data` that hold images, sorted by name: one per class."""
    data = Path(data)
    if not data.is_dir():
        raise EdgeError(
            f"data folder not found: {data} (expected one sub-folder of images per class, e.g. crack/ no_crack/)"
        )
    folders = sorted(
        d
        for d in data.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in d.iterdir() if p.is_file())
    )
    if len(folders) < 2:
        found = ", ".join(d.name for d in folders) or "none"
        raise EdgeError(
            f"{data} needs at least two sub-folders of images, one per class (e.g. crack/ and no_crack/); found {found}"
        )
    return folders


def load_class_images(data: str | Path, size: int, color: Optional[Color] = None) -> ClassImages:
    if size < 16:
        raise EdgeError(f"--size {size} is too small for a classifier; use at least 16 (e.g. 96 or 128)")
    folders = class_folders(data)
    paths, images, labels, skipped = [], [], [], []
    for index, folder in enumerate(folders):
        loaded = load_images(list_images(folder), what=f"images in {folder}")
        paths += loaded.paths
        images += loaded.images
        labels += [index] * len(loaded.images)
        skipped += loaded.skipped
    if color is None:
        color = "grey" if check_channels(images, paths) == 1 else "rgb"
    preprocessing = Preprocessing(width=size, height=size, color=color)
    frames = Preprocessor(preprocessing).prepare_batch(images)
    return ClassImages([f.name for f in folders], paths, np.asarray(labels), frames, preprocessing, skipped)


def stratified_split(
    labels: np.ndarray, val_split: float, test_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) indices, each class split in the same proportions; fixed by seed."""
    from sklearn.model_selection import train_test_split

    for name, frac in (("--val-split", val_split), ("--test-split", test_split)):
        if not 0.0 <= frac < 1.0:
            raise EdgeError(f"{name} {frac} must be in [0, 1) (e.g. 0.2 for 20 % held back)")
    if val_split + test_split >= 0.9:
        raise EdgeError(f"--val-split + --test-split = {val_split + test_split:.2f} leaves too little to train on")
    counts = np.bincount(labels)
    if counts.min() < 3:
        raise EdgeError(f"every class needs at least 3 readable images to split; class sizes are {counts.tolist()}")
    index = np.arange(len(labels))
    test = np.array([], int)
    if test_split > 0:
        index, test = train_test_split(index, test_size=test_split, stratify=labels[index], random_state=seed)
    val = np.array([], int)
    if val_split > 0:
        index, val = train_test_split(
            index, test_size=val_split / (1.0 - test_split), stratify=labels[index], random_state=seed + 1
        )
    return np.sort(index), np.sort(val), np.sort(test)


# ---------------------------------------------------------------- models


def build_small_cnn(input_shape: tuple[int, int, int], n_classes: int, filters: tuple[int, ...]):
    """Strided conv blocks (Conv3x3 + BN + ReLU), a stride-1 last block, GAP, Dense softmax.

    All blocks but the last halve the resolution, so 128 px and four blocks give a 16x16 CAM.
    """
    import keras
    from keras import layers

    if not filters:
        raise EdgeError("--filters needs at least one number, e.g. 16,32,64,64")
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        last = i == len(filters) - 1
        x = layers.Conv2D(f, 3, strides=1 if last else 2, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        # Moving variance starts at 0, not 1: conv outputs of low-contrast surfaces have variances
        # ~1e-3, and a start of 1 would take hundreds of steps to forget (inference then lags
        # training by epochs on a small data set). Momentum 0.9 settles within a few epochs.
        x = layers.BatchNormalization(momentum=0.9, moving_variance_initializer="zeros", name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=FEATURE_LAYER if last else f"relu{i + 1}")(x)
    return _head(inputs, x, n_classes, "crack_cnn")


def _head(inputs, features, n_classes: int, name: str):
    import keras
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="gap")(features)
    x = layers.Dropout(0.2, name="dropout")(x)  # identity at inference: the CAM stays exact
    outputs = layers.Dense(n_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(inputs, outputs, name=name)


def _caffe_bgr_layer():
    """[0, 1] RGB -> VGG16's input (BGR, 0..255, ImageNet mean removed) as one fixed 1x1 conv."""
    import keras

    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
        kernel[0, 0, rgb, bgr] = 255.0
    bias = -np.array([103.939, 116.779, 123.68], np.float32)
    layer = keras.layers.Conv2D(3, 1, name="vgg_preprocess", trainable=False)
    return layer, [kernel, bias]


def build_backbone(input_shape: tuple[int, int, int], n_classes: int, backbone: str, weights: str):
    """MobileNetV2 or VGG16 (optionally with ImageNet or local weights), GAP, Dense softmax.

    Pretrained backbones are frozen (only the head trains); `--weights none` trains everything.
    """
    import keras

    if input_shape[2] != 3:
        raise EdgeError(f"--backbone {backbone} takes colour images; pass --color rgb")
    if weights not in ("none", "imagenet") and not Path(weights).is_file():
        raise EdgeError(
            f"--weights {weights}: no such file; pass --weights imagenet, --weights none, "
            "or the path of a local no-top weights file (.h5 / .weights.h5)"
        )
    if backbone == "mobilenetv2":
        pre, pre_weights = keras.layers.Rescaling(2.0, offset=-1.0, name="mobilenet_preprocess"), None
        factory, kwargs = keras.applications.MobileNetV2, {"alpha": 1.0}
    else:
        (pre, pre_weights), factory, kwargs = _caffe_bgr_layer(), keras.applications.VGG16, {}
    keras_weights = None if weights == "none" else weights
    failure = None
    # Built on its own input, exactly as Keras ships it, so ImageNet or local weights load by topology.
    # The failure is caught inside the capture, so Keras' download chatter is not replayed after it.
    with native_output_captured():
        try:
            base = factory(include_top=False, weights=keras_weights, input_shape=input_shape, **kwargs)
        except Exception as exc:  # noqa: BLE001 - download / file errors come as many types
            failure = exc
    if failure is not None:
        text = str(failure).strip()
        reason = text.split(" -- ", 1)[-1].splitlines()[0][:120] if text else type(failure).__name__
        if weights == "imagenet":
            raise EdgeError(
                f"could not download the ImageNet weights for {backbone} ({reason}); without internet, "
                "pass --weights none to train from scratch or --weights PATH to a local no-top weights file"
            )
        raise EdgeError(
            f"could not load --weights {weights} into {backbone} ({reason}); is it a no-top {backbone} weights file?"
        )
    features = keras.Model(base.inputs, base.get_layer(BACKBONE_FEATURES[backbone]).output, name=FEATURE_LAYER)
    if keras_weights is not None:
        features.trainable = False
    inputs = keras.Input(input_shape, name="image")
    x = pre(inputs)
    if pre_weights is not None:
        pre.set_weights(pre_weights)
    return _head(inputs, features(x), n_classes, f"crack_{backbone}")


def augmentation(seed: int):
    """Training-only: flips, rotations up to ~18 degrees, brightness and contrast +-15 %."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal_and_vertical", seed=seed),
            layers.RandomRotation(0.05, fill_mode="reflect", seed=seed + 1),
            layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed + 2),
            layers.RandomContrast(0.15, seed=seed + 3),
        ],
        name="augmentation",
    )


def feature_layer_name(model) -> str:
    names = {layer.name for layer in model.layers}
    for name in (FEATURE_LAYER, *BACKBONE_FEATURES.values()):
        if name in names:
            return name
    raise EdgeError(
        f"{model.name} has no CAM feature layer ({FEATURE_LAYER}); it is not a classifier from `edge train classifier`"
    )


def two_output_model(model):
    """Keras model with outputs [class probabilities, last conv feature map] (what export converts)."""
    import keras

    feature_layer_name(model)  # a clear error for a model that is not ours
    # GAP's input is the feature map in this graph (a nested backbone's .output would be its own).
    features = model.get_layer("gap").input
    return keras.Model(model.inputs, [model.outputs[0], features], name=f"{model.name}_cam")


def cam_alignment(model) -> tuple[float, float]:
    """(stride, offset): feature cell k is centred on input pixel stride * k + offset.

    Walks the layers from the input to the CAM feature layer composing each conv / pool /
    zero-padding step. A 3x3 stride-2 'same' conv on an even size pads only after the image,
    so its cells sit half a pixel right of the block centres; four such blocks shift a plain
    resize by several pixels. Stride-1 'same' layers and element-wise layers change nothing
    (residual branches of MobileNetV2 are aligned with their trunk).
    """
    import keras
    from keras import layers

    target = feature_layer_name(model)
    state = {"size": float(model.inputs[0].shape[1]), "stride": 1.0, "offset": 0.0}

    def walk(layer_list) -> bool:
        for layer in layer_list:
            if isinstance(layer, keras.Model):  # a backbone nested as one layer: walk inside it
                if walk(layer.layers) or layer.name == target:
                    return True
                continue
            if isinstance(layer, layers.ZeroPadding2D):
                (top, bottom), _ = layer.padding
                state["offset"] -= state["stride"] * top
                state["size"] += top + bottom
            elif isinstance(
                layer,
                (
                    layers.Conv2D,
                    layers.DepthwiseConv2D,
                    layers.SeparableConv2D,
                    layers.MaxPooling2D,
                    layers.AveragePooling2D,
                ),
            ):
                k = layer.kernel_size[0] if hasattr(layer, "kernel_size") else layer.pool_size[0]
                s, size = layer.strides[0], state["size"]
                if layer.padding == "same":
                    out = -(-size // s)
                    pad_before = max((out - 1) * s + k - size, 0) // 2
                else:
                    out = (size - k) // s + 1
                    pad_before = 0
                state["offset"] += state["stride"] * ((k - 1) / 2 - pad_before)
                state["stride"] *= s
                state["size"] = out
            if layer.name == target:
                return True
        return False

    if not walk(model.layers):
        raise EdgeError(f"CAM feature layer {target} not found while walking {model.name}")
    return state["stride"], state["offset"]


def cam_head(model, class_names: list[str], positive: str) -> CamHead:
    kernel, bias = model.get_layer(HEAD_LAYER).get_weights()
    stride, offset = cam_alignment(model)
    return CamHead(
        tuple(class_names),
        class_names.index(positive),
        kernel.astype(np.float32),
        bias.astype(np.float32),
        stride,
        offset,
    )


# ---------------------------------------------------------------- metrics


def classification_metrics(labels: np.ndarray, probs: np.ndarray, class_names: list[str], positive_index: int) -> dict:
    """Accuracy, per-class precision/recall/F1, confusion matrix (argmax decision), positive-class AUROC."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

    pred = probs.argmax(axis=1)
    k = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=k, zero_division=0)
    out = {
        "count": int(len(labels)),
        "accuracy": float(accuracy_score(labels, pred)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": {
            "labels": list(class_names),
            "rows_true_cols_predicted": confusion_matrix(labels, pred, labels=k).tolist(),
        },
    }
    positive = (labels == positive_index).astype(int)
    if 0 < positive.sum() < len(positive):
        out["positive_auroc"] = float(roc_auc_score(positive, probs[:, positive_index]))
    return out


# ---------------------------------------------------------------- training


def _log(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr)


def train_classifier(
    data: str | Path,
    out: str | Path,
    config: Optional[ClassifierConfig] = None,
    progress: bool = True,
    log: Callable[[str], None] = _log,
) -> Path:
    """Train, evaluate and write RUN_DIR (model.keras, run.json, metrics.json, history, CAM grid)."""
    cfg = config or ClassifierConfig()
    _check_config(cfg)
    out = Path(out)
    images = _read_class_images(data, cfg, log)
    split = stratified_split(images.labels, cfg.val_split, cfg.test_split, cfg.seed)
    splits = dict(zip(("train", "validation", "test"), split, strict=True))

    import_tensorflow(cfg.threads)
    import keras

    keras.utils.set_random_seed(cfg.seed)
    model = _build_model(cfg, images.preprocessing.input_shape, len(images.class_names))
    fit = _fit(model, images, splits["train"], splits["validation"], cfg, progress)

    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    metrics = _split_metrics(model, images, splits, cfg.positive)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "history.json").write_text(json.dumps(fit.history, indent=2) + "\n")
    run = _run_json(data, images, splits, model, cfg, fit)
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    _plot_run(model, images, splits, cfg.positive, fit.history, out)

    held = "validation" if "validation" in metrics else "train"
    log(
        f"trained {run['epochs_run']} epoch(s) in {fit.seconds:.0f} s; {held} accuracy {metrics[held]['accuracy']:.4f}"
        + (f", test accuracy {metrics['test']['accuracy']:.4f}" if "test" in metrics else "")
    )
    log(f"wrote {out / 'model.keras'}, run.json, metrics.json, history.png, cam_grid.png in {out}")
    return out


def _check_config(cfg: ClassifierConfig) -> None:
    if cfg.backbone not in BACKBONES:
        raise EdgeError(f"unknown --backbone {cfg.backbone!r}; choose one of {', '.join(BACKBONES)}")
    if cfg.weights != "none" and cfg.backbone == "small":
        raise EdgeError("--weights applies to --backbone mobilenetv2 or vgg16; the small CNN trains from scratch")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise EdgeError("--epochs and --batch-size must be at least 1")


def _read_class_images(data: str | Path, cfg: ClassifierConfig, log: Callable[[str], None]) -> ClassImages:
    """The class folders' images (colour by default with a pretrained backbone), checked and counted."""
    color = cfg.color or ("rgb" if cfg.backbone != "small" else None)
    images = load_class_images(data, cfg.size, color)
    names = images.class_names
    if cfg.positive not in names:
        raise EdgeError(
            f"positive class {cfg.positive!r} is not one of the class folders ({', '.join(names)}); "
            "pass --positive with the folder name of the defect class"
        )
    if images.skipped:
        log(f"skipped {len(images.skipped)} unreadable or truncated image(s), e.g. {images.skipped[0]}")
    counts = np.bincount(images.labels, minlength=len(names))
    log(
        f"{len(images.paths)} images, classes: "
        + ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True))
        + f"; {cfg.size}x{cfg.size} {images.preprocessing.color}"
    )
    return images


def _build_model(cfg: ClassifierConfig, shape: tuple[int, int, int], n_classes: int):
    if cfg.backbone == "small":
        return build_small_cnn(shape, n_classes, tuple(cfg.filters))
    return build_backbone(shape, n_classes, cfg.backbone, cfg.weights)


def _unit(images: ClassImages, idx: np.ndarray) -> np.ndarray:
    return images.frames[idx].astype(np.float32) / np.float32(255.0)


@dataclass
class _Fit:
    history: dict[str, list[float]]
    monitor: str  # the loss early stopping watched: val_loss, or loss when nothing was held back
    class_weight: dict[int, float]
    seconds: float


def _fit(
    model, images: ClassImages, train_idx: np.ndarray, val_idx: np.ndarray, cfg: ClassifierConfig, progress: bool
) -> _Fit:
    """Fit `model` inside a training model that augments its input (model.keras stays the inference model)."""
    import keras
    from sklearn.utils.class_weight import compute_class_weight

    inputs = keras.Input(images.preprocessing.input_shape, name="image")
    x = augmentation(cfg.seed)(inputs) if cfg.augment else inputs
    trainer = keras.Model(inputs, model(x), name="trainer")
    steps = int(np.ceil(len(train_idx) / cfg.batch_size))
    # Cosine decay to 1 % of the rate: large early steps, quiet last epochs (BN statistics settle).
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=cfg.epochs * steps, alpha=0.01)
    compile_for_fit(
        trainer, keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    x_train, y_train = _unit(images, train_idx), images.labels[train_idx]
    # 'balanced' weights: each class counts as much as the others whatever its image count.
    present = np.unique(y_train)
    weights = compute_class_weight("balanced", classes=present, y=y_train)
    class_weight = {int(c): float(w) for c, w in zip(present, weights, strict=True)}
    validation = (_unit(images, val_idx), images.labels[val_idx]) if len(val_idx) else None
    monitor = "val_loss" if validation else "loss"
    callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, patience=cfg.patience, restore_best_weights=True)]
    if progress:
        from train.progress import rich_progress_callback

        callbacks.append(rich_progress_callback(cfg.epochs, steps))
    started = time.perf_counter()
    history = trainer.fit(
        x_train,
        y_train,
        batch_size=cfg.batch_size,
        epochs=cfg.epochs,
        validation_data=validation,
        class_weight=class_weight,
        callbacks=callbacks,
        verbose=0,
        shuffle=True,
    )
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return _Fit(hist, monitor, class_weight, time.perf_counter() - started)


def _split_metrics(model, images: ClassImages, splits: dict[str, np.ndarray], positive: str) -> dict:
    """metrics.json: classification metrics per split (train, validation, test; empty ones left out).

    One predict over all the splits' images: each model.predict call traces the graph anew.
    """
    names = images.class_names
    metrics: dict = {"decision": "argmax (positive probability > 0.5 with two classes)", "positive_class": positive}
    used = {split: idx for split, idx in splits.items() if len(idx)}
    everything = np.concatenate(list(used.values()))
    probs = keras_outputs(model, _unit(images, everything), batch_size=64)
    start = 0
    for split, idx in used.items():
        split_probs, start = probs[start : start + len(idx)], start + len(idx)
        metrics[split] = classification_metrics(images.labels[idx], split_probs, names, names.index(positive))
    return metrics


def _run_json(
    data: str | Path, images: ClassImages, splits: dict[str, np.ndarray], model, cfg: ClassifierConfig, fit: _Fit
) -> dict:
    names = images.class_names
    files = lambda idx: [str(images.paths[i]) for i in idx]  # noqa: E731
    config = asdict(cfg)
    config["filters"] = list(cfg.filters)
    return {
        "kind": "classifier",
        "arch": "classifier",  # its row in export/kinds.py (every backbone exports alike)
        "edge_inspect_version": __version__,
        "data": str(Path(data).resolve()),
        "class_names": names,
        "positive_class": cfg.positive,
        "positive_index": names.index(cfg.positive),
        "preprocessing": images.preprocessing.model_dump(),
        "feature_layer": feature_layer_name(model),
        "config": config,
        "class_weight": {names[c]: w for c, w in fit.class_weight.items()},
        "epochs_run": len(fit.history.get("loss", [])),
        "best_epoch": int(np.argmin(fit.history[fit.monitor])) + 1,
        "best_" + fit.monitor: float(np.min(fit.history[fit.monitor])),
        "train_seconds": round(fit.seconds, 1),
        "train_files": files(splits["train"]),
        "train_labels": images.labels[splits["train"]].tolist(),
        "val_files": files(splits["validation"]),
        "val_labels": images.labels[splits["validation"]].tolist(),
        "test_files": files(splits["test"]),
        "test_labels": images.labels[splits["test"]].tolist(),
        "skipped": [str(p) for p in images.skipped],
    }


def _plot_run(
    model, images: ClassImages, splits: dict[str, np.ndarray], positive: str, history: dict, out: Path
) -> None:
    """history.png, and cam_grid.png: CAM overlays on validation images (test or training ones when none)."""
    from train.cam_plots import plot_cam_grid, plot_history

    plot_history(history, out / "history.png")
    names = images.class_names
    positive_index = names.index(positive)
    show = next((idx for idx in (splits["validation"], splits["test"]) if len(idx)), splits["train"])
    show = _pick_for_grid(images.labels[show], show, positive_index, per_row=6)
    probs, feats = keras_outputs(two_output_model(model), _unit(images, show), batch_size=64)
    cams = heatmaps(feats, cam_head(model, names, positive), images.preprocessing.input_shape[:2])
    plot_cam_grid(images.frames[show], cams, images.labels[show], probs, names, positive_index, out / "cam_grid.png")


def _pick_for_grid(labels: np.ndarray, idx: np.ndarray, positive_index: int, per_row: int) -> np.ndarray:
    """Up to `per_row` positives then `per_row` others, spread over the split (deterministic)."""
    picks = []
    for mask in (labels == positive_index, labels != positive_index):
        chosen = idx[mask]
        if len(chosen) > per_row:
            chosen = chosen[np.linspace(0, len(chosen) - 1, per_row).round().astype(int)]
        picks.append(chosen)
    return np.concatenate(picks)
