"""DRAEM-style model trained on synthetic defects, exported as ONE .tflite that outputs the anomaly map.

No pretrained weights and no external texture data. Good images are altered on the fly
(`synthetic_anomalies`): Perlin-noise blemishes filled with a shifted / rotated / re-lit texture
taken from ANOTHER good image and blended with an opacity in [0.1, 1], cut-and-pasted rectangles,
and drawn scratches and blobs; about half of each batch stays unaltered. Two small networks are
trained end to end on them:

- reconstructive: a conv encoder-decoder (no skips, so it cannot copy the defect through), sigmoid
  out, loss L2 + (1 - SSIM) against the CLEAN image: it learns to paint good surface over defects;
- discriminative: a small U-Net on concat(image, reconstruction) whose 1-channel map (half the input
  resolution) is trained with a focal loss against the synthetic mask.

The exported model is image [0, 1] (N, S, S, C) → (N, S/2, S/2, 1), the discriminator's probability,
model kind "anomaly_map", so the device's AnomalyMapDetector (edge/anomaly_map.py) scores it unchanged.
Score: max of the map smoothed with a Gaussian of sigma 3 px at 128 px (DRAEM takes the max of a
21 x 21 mean-filtered map at 256 px, whose standard deviation is about 6 px there).
BatchNorm sits before ReLU everywhere (folds into the convolutions in int8).

Reference: Zavrtanik, Kristan, Skočaj, "DRAEM — A discriminatively trained reconstruction embedding
for surface anomaly detection", ICCV 2021.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Color, Preprocessing

BN_MOMENTUM = 0.9  # a few hundred images: see train/autoencoder.py


# --------------------------------------------------------------------------- synthetic anomalies


def perlin_noise(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """2-D gradient (Perlin) noise of `res` periods per axis, values about in [-1, 1]."""
    h, w = shape
    ry, rx = res
    cy, cx = -(-h // ry), -(-w // rx)  # pixels per cell, rounded up; cropped at the end
    angles = rng.uniform(0, 2 * np.pi, (ry + 1, rx + 1))
    gy, gx = np.sin(angles), np.cos(angles)
    y = np.arange(ry * cy) / cy
    x = np.arange(rx * cx) / cx
    iy, ix = y.astype(int)[:, None], x.astype(int)[None, :]
    fy, fx = (y % 1)[:, None], (x % 1)[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        return gy[iy + dy, ix + dx] * (fy - dy) + gx[iy + dy, ix + dx] * (fx - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    uy, ux = fade(fy), fade(fx)
    top = corner(0, 0) * (1 - ux) + corner(0, 1) * ux
    bottom = corner(1, 0) * (1 - ux) + corner(1, 1) * ux
    return (np.sqrt(2) * (top * (1 - uy) + bottom * uy))[:h, :w]


def _texture(frames_u8: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    """Another good frame, rolled, rotated/flipped and re-lit: foreign but plausible surface."""
    n, h, w = frames_u8.shape[:3]
    j = int(rng.integers(n - 1)) if n > 1 else 0
    j = j + 1 if n > 1 and j >= i else j  # never the frame itself when there is another
    tex = np.roll(frames_u8[j], (int(rng.integers(h)), int(rng.integers(w))), axis=(0, 1))
    tex = np.rot90(tex, int(rng.integers(4))) if h == w else tex
    if rng.random() < 0.5:
        tex = tex[:, ::-1]
    gain, offset = rng.uniform(0.5, 1.5), rng.uniform(-50, 50)
    return np.clip(tex.astype(np.float32) * gain + offset, 0, 255)


def _perlin_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    top = max(1, int(np.log2(max(2, min(h, w) // 8))))  # finest period: 8 px cells
    res = (2 ** int(rng.integers(0, top + 1)), 2 ** int(rng.integers(0, top + 1)))
    noise = perlin_noise((h, w), res, rng)
    return noise > rng.uniform(0.4, 0.6)


def _draw_marks(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scratches (polylines) and blobs (ellipses) drawn on a mask; returns the bool mask."""
    import cv2

    h, w = frame.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.5:
            points = [(int(rng.integers(w)), int(rng.integers(h)))]
            for _ in range(int(rng.integers(1, 4))):
                step = rng.integers(-w // 3, w // 3 + 1, 2)
                points.append(
                    (int(np.clip(points[-1][0] + step[0], 0, w - 1)), int(np.clip(points[-1][1] + step[1], 0, h - 1)))
                )
            thickness = max(1, int(round(rng.uniform(1, 3.5) * w / 128)))
            cv2.polylines(mask, [np.array(points, np.int32)], False, 1, thickness)
        else:
            axes = (
                int(rng.integers(max(1, w // 40), max(2, w // 8))),
                int(rng.integers(max(1, h // 40), max(2, h // 8))),
            )
            centre = (int(rng.integers(w // 8, 7 * w // 8 + 1)), int(rng.integers(h // 8, 7 * h // 8 + 1)))
            cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def _alter(frames_u8: np.ndarray, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One altered copy of frames_u8[i] and its non-empty bool mask."""
    base = frames_u8[i].astype(np.float32)
    h, w = base.shape[:2]
    for _ in range(20):  # a Perlin threshold can leave nothing: draw again
        kind = rng.choice(3, p=[0.5, 0.25, 0.25])
        if kind == 0:  # Perlin blemish filled with foreign texture, partly transparent
            mask = _perlin_mask(h, w, rng)
            fill = _texture(frames_u8, i, rng)
            opacity = rng.uniform(0.1, 1.0)
        elif kind == 1:  # cut-paste: a rectangle of another (rotated, re-lit) image
            mask = np.zeros((h, w), bool)
            ph, pw = (
                int(rng.integers(max(2, h // 10), max(3, h // 3))),
                int(rng.integers(max(2, w // 10), max(3, w // 3))),
            )
            y0, x0 = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
            mask[y0 : y0 + ph, x0 : x0 + pw] = True
            fill = _texture(frames_u8, i, rng)
            opacity = 1.0
        else:  # scratches / blobs in a flat colour darker or brighter than the surface
            mask = _draw_marks(base, rng)
            value = np.clip(base.mean() + rng.choice([-1, 1]) * rng.uniform(30, 90), 0, 255)
            fill = np.full_like(base, value)
            opacity = rng.uniform(0.5, 1.0)
        if mask.any():
            m = mask[..., None].astype(np.float32) * opacity
            out = np.clip(np.rint(base + m * (fill - base)), 0, 255).astype(np.uint8)
            return out, mask
    return frames_u8[i].copy(), np.zeros((h, w), bool)  # pragma: no cover - 20 empty draws in a row


def synthetic_anomalies(
    frames_u8: np.ndarray, rng: np.random.Generator, probability: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Good frames (N, H, W, C) uint8 → (altered frames uint8, masks (N, H, W) float32 in {0, 1}).

    Exactly round(N * probability) frames are altered (chosen at random); the others are returned
    unchanged with an empty mask. Pixels outside a mask are never changed.
    """
    frames_u8 = np.asarray(frames_u8)
    if frames_u8.ndim != 4 or frames_u8.dtype != np.uint8:
        raise EdgeError(f"synthetic_anomalies wants uint8 frames (N, H, W, C), got {frames_u8.dtype} {frames_u8.shape}")
    n, h, w = frames_u8.shape[:3]
    out = frames_u8.copy()
    masks = np.zeros((n, h, w), np.float32)
    for i in rng.permutation(n)[: int(round(n * probability))]:
        out[i], mask = _alter(frames_u8, int(i), rng)
        masks[i] = mask
    return out, masks


# --------------------------------------------------------------------------- model


@dataclass
class DraemConfig:
    size: int = 128  # square model input, a multiple of 8
    color: Optional[Color] = None  # None: what the images are
    filters: tuple[int, ...] = (16, 32, 64)  # per level, both sub-networks
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    seed: int = 0
    anomaly_probability: float = 0.5
    val_split: float = 0.1  # good images held back for the synthetic validation loss
    focal_gamma: float = 2.0
    blur_sigma: float = 0.0  # score smoothing in model-input pixels; 0: 3 px per 128 px

    def sigma(self) -> float:
        return self.blur_sigma or round(3.0 * self.size / 128, 2)


def check_config(config: DraemConfig) -> None:
    levels = len(config.filters)
    if not config.filters or min(config.filters) < 1:
        raise EdgeError(f"filters {config.filters} must be positive numbers, e.g. 16,32,64")
    if config.size % (2**levels) or config.size < 2 ** (levels + 1):
        raise EdgeError(
            f"--size {config.size} must be a multiple of {2**levels} and at least "
            f"{2 ** (levels + 1)} for {levels} levels (e.g. 128)"
        )
    if not 0 < config.anomaly_probability < 1:
        raise EdgeError(f"anomaly probability {config.anomaly_probability} must be between 0 and 1 (e.g. 0.5)")


def _cbr(x, filters: int, stride: int = 1, name: str = ""):
    from keras import layers

    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_reconstructive(size: int, channels: int, filters: tuple[int, ...]):
    """Encoder (conv + strided conv per level) → bottleneck → nearest-upsampling decoder, no skips."""
    import keras
    from keras import layers

    inp = keras.Input((size, size, channels), name="altered")
    x = inp
    for i, f in enumerate(filters):
        x = _cbr(x, f, 1, f"re{i}a")
        x = _cbr(x, f, 2, f"re{i}b")
    x = _cbr(x, filters[-1], 1, "rbottleneck")
    for i in reversed(range(len(filters))):
        x = layers.UpSampling2D(2, name=f"rup{i}")(x)
        x = _cbr(x, filters[i - 1] if i > 0 else filters[0], 1, f"rd{i}")
    out = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inp, out, name="reconstructive")


def build_discriminative(size: int, channels: int, filters: tuple[int, ...]):
    """U-Net on concat(image, reconstruction) → logits at half resolution (N, S/2, S/2, 1)."""
    import keras
    from keras import layers

    inp = keras.Input((size, size, 2 * channels), name="image_and_reconstruction")
    x = _cbr(inp, filters[0], 1, "de0a")
    x = _cbr(x, filters[0], 2, "de0b")  # S/2: the map's resolution
    skips = [x]
    for i, f in enumerate(filters[1:], start=1):
        x = _cbr(x, f, 2, f"de{i}a")
        x = _cbr(x, f, 1, f"de{i}b")
        skips.append(x)
    skips.pop()  # the deepest level is the bottom of the U
    for i in reversed(range(len(skips))):
        x = layers.UpSampling2D(2, name=f"dup{i}")(x)
        x = layers.Concatenate(name=f"dcat{i}")([x, skips[i]])
        x = _cbr(x, filters[i], 1, f"dd{i}")
    x = _cbr(x, filters[0], 1, "dhead")
    logits = layers.Conv2D(1, 1, name="logits")(x)
    return keras.Model(inp, logits, name="discriminative")


def build_models(config: DraemConfig, channels: int):
    """(reconstructive, discriminative, deploy) — deploy: image → probability map, what is exported."""
    import keras
    from keras import layers

    check_config(config)
    rec = build_reconstructive(config.size, channels, config.filters)
    disc = build_discriminative(config.size, channels, config.filters)
    inp = keras.Input((config.size, config.size, channels), name="image")
    r = rec(inp)
    logits = disc(layers.Concatenate(name="joint")([inp, r]))
    prob = layers.Activation("sigmoid", name="anomaly_map")(logits)
    return rec, disc, keras.Model(inp, prob, name="draem")


def _downsample_masks(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) → (N, H/2, W/2, 1): the covered fraction of each 2x2 cell (soft target)."""
    n, h, w = masks.shape
    return masks.reshape(n, h // 2, 2, w // 2, 2).mean((2, 4))[..., None].astype(np.float32)


def _hflip_some(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    flip = rng.random(len(frames)) < 0.5
    out = frames.copy()
    out[flip] = out[flip][:, :, ::-1]
    return out


def train_draem(
    data: str | Path,
    out: str | Path,
    config: Optional[DraemConfig] = None,
    threads: Optional[int] = None,
    log: Log = _stderr,
) -> Path:
    """Train on the good images of DATA; write OUT/model.keras (image → map), run.json, history, samples.png."""
    from train.data import load_training_images, split_indices
    from train.runinfo import HISTORY_FILE, MODEL_FILE, write_run
    from train.tfenv import import_tensorflow

    config = config or DraemConfig()
    check_config(config)
    t0 = time.perf_counter()
    # the images first: a wrong folder is one line at once, not after TensorFlow's import
    images = load_training_images(data, config.size, config.color)
    import_tensorflow(threads)
    import keras

    if images.skipped:
        log(f"skipped {len(images.skipped)} unreadable file(s)")
    config.color = images.preprocessing.color
    frames = images.frames
    if len(frames) < 2:
        raise EdgeError(f"need at least 2 good images to train on, found {len(frames)} in {images.folder}")
    train_idx, val_idx = split_indices(len(frames), config.val_split, config.seed)
    x_train = frames[train_idx]
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    rec, disc, deploy = build_models(config, frames.shape[-1])
    # validation: from the held-back good images (or some training ones when none were held back)
    validation = _synthetic_validation(
        frames[val_idx] if len(val_idx) else x_train[: max(2, len(x_train) // 10)], config
    )
    steps = _Steps(rec, disc, config)
    history: list[dict] = []
    best, best_weights = np.inf, None
    for epoch in range(config.epochs):
        row = _train_epoch(steps, x_train, rng, epoch, config)
        row.update(_evaluate(steps, validation, config))
        row["seconds"] = round(time.perf_counter() - row.pop("started"), 1)
        history.append(row)
        log(_describe_epoch(row, config.epochs))
        if row["val_loss"] < best:
            best, best_weights = row["val_loss"], deploy.get_weights()
    deploy.set_weights(best_weights)
    best_row = min(history, key=lambda r: r["val_loss"])
    fit_seconds = round(time.perf_counter() - t0, 1)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    deploy.save(out / MODEL_FILE)
    (out / HISTORY_FILE).write_text(json.dumps(history, indent=1) + "\n")
    run = _run_json(images, train_idx, val_idx, config, deploy, best_row, fit_seconds, threads)
    write_run(out, run)
    try:
        _sample_grid(rec, deploy, validation.altered, validation.masks, out / "samples.png")
    except Exception as exc:  # a figure is a convenience; never fail the run for it
        log(f"samples.png not written: {exc}")
    log(
        f"trained DRAEM ({run['params']} parameters) on {len(x_train)} images in {fit_seconds} s; best epoch "
        f"{best_row['epoch']} (val loss {best_row['val_loss']:.4f}) → {out}"
    )
    return out


@dataclass
class _Validation:
    """A FIXED synthetic validation set: good frames, each twice, about half of them altered."""

    altered: np.ndarray  # uint8 (N, H, W, C)
    clean: np.ndarray  # the same frames unaltered
    masks: np.ndarray  # (N, H, W) float32 in {0, 1}


def _synthetic_validation(good: np.ndarray, config: DraemConfig) -> _Validation:
    """From the held-back good images (or some training ones when none were held back)."""
    doubled = np.concatenate([good, good])
    altered, masks = synthetic_anomalies(doubled, np.random.default_rng(config.seed + 1), config.anomaly_probability)
    return _Validation(altered, doubled, masks)


class _Steps:
    """The compiled training and evaluation steps of both networks, trained end to end."""

    def __init__(self, rec, disc, config: DraemConfig):
        import keras
        import tensorflow as tf

        opt = self.optimizer = keras.optimizers.Adam(config.learning_rate)
        # Its slot variables now, not inside the first trace (as train.keras_fit does for fit): a
        # tf.function that creates variables is traced twice (8 + 5 s of a 32 px run on one core).
        opt.build(rec.trainable_variables + disc.trainable_variables)
        focal = keras.losses.BinaryFocalCrossentropy(gamma=config.focal_gamma, from_logits=True)
        ssim_filter = min(11, config.size // 4) | 1

        def losses(x_aug, x_clean, target, training):
            r = rec(x_aug, training=training)
            logits = disc(tf.concat([x_aug, r], axis=-1), training=training)
            l2 = tf.reduce_mean(tf.square(r - x_clean))
            ssim = 1.0 - tf.reduce_mean(tf.image.ssim(r, x_clean, 1.0, filter_size=ssim_filter))
            seg = focal(target, logits)
            return l2 + ssim + seg, seg, logits

        @tf.function(reduce_retracing=True)
        def train_step(x_aug, x_clean, target):
            with tf.GradientTape() as tape:
                total, seg, _ = losses(x_aug, x_clean, target, True)
            variables = rec.trainable_variables + disc.trainable_variables
            opt.apply_gradients(zip(tape.gradient(total, variables), variables, strict=True))
            return total, seg

        @tf.function(reduce_retracing=True)
        def eval_step(x_aug, x_clean, target):
            total, seg, logits = losses(x_aug, x_clean, target, False)
            return total, seg, tf.sigmoid(logits)

        self.train_step, self.eval_step = train_step, eval_step


def _unit(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0


def _train_epoch(steps: _Steps, x_train: np.ndarray, rng: np.random.Generator, epoch: int, config: DraemConfig) -> dict:
    """One pass over freshly altered training frames: {"epoch", "loss", "focal", "started"}."""
    started = time.perf_counter()
    # DRAEM's schedule: the learning rate x0.2 at 80 % and again at 90 % of the epochs
    drops = sum(epoch >= round(f * config.epochs) for f in (0.8, 0.9)) if config.epochs >= 10 else 0
    steps.optimizer.learning_rate.assign(config.learning_rate * 0.2**drops)
    base = _hflip_some(x_train[rng.permutation(len(x_train))], rng)
    aug, masks = synthetic_anomalies(base, rng, config.anomaly_probability)
    targets = _downsample_masks(masks)
    batch = min(config.batch_size, len(x_train))
    tot = seg = 0.0
    n_steps = len(base) // batch  # whole batches only: one traced shape
    for s in range(n_steps):
        sl = slice(s * batch, (s + 1) * batch)
        t, g = steps.train_step(_unit(aug[sl]), _unit(base[sl]), targets[sl])
        tot, seg = tot + float(t), seg + float(g)
    return {"epoch": epoch + 1, "loss": tot / n_steps, "focal": seg / n_steps, "started": started}


def _evaluate(steps: _Steps, validation: _Validation, config: DraemConfig) -> dict:
    """Validation losses and synthetic image / pixel AUROC of the current weights."""
    tot, seg, maps = [], [], []
    for i in range(0, len(validation.altered), 32):
        t, s, m = steps.eval_step(
            _unit(validation.altered[i : i + 32]),
            _unit(validation.clean[i : i + 32]),
            _downsample_masks(validation.masks[i : i + 32]),
        )
        tot.append(float(t) * len(m))
        seg.append(float(s) * len(m))
        maps.append(np.asarray(m))
    n = len(validation.altered)
    return {
        "val_loss": sum(tot) / n,
        "val_focal": sum(seg) / n,
        **synthetic_aurocs(np.concatenate(maps)[..., 0], validation.masks, config.sigma() / 2),
    }


def _describe_epoch(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f} (focal {row['focal']:.4f})  "
        f"val {row['val_loss']:.4f} (focal {row['val_focal']:.4f}, synthetic image AUROC "
        f"{row['val_image_auroc']:.3f}, pixel AUROC {row['val_pixel_auroc']:.3f})  {row['seconds']} s"
    )


def _run_json(
    images,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: DraemConfig,
    deploy,
    best_row: dict,
    fit_seconds: float,
    threads: Optional[int],
) -> dict:
    preprocessing: Preprocessing = images.preprocessing
    return {
        "kind": "anomaly_map",
        "arch": "draem",
        "config": {**asdict(config), "filters": list(config.filters)},
        "preprocessing": preprocessing.model_dump(),
        "score": {"kind": "max_blur", "blur_sigma": config.sigma()},
        "data": str(images.folder),
        "train_files": [str(images.paths[i]) for i in train_idx],
        "val_files": [str(images.paths[i]) for i in val_idx],
        "images": len(images.paths),
        "map_shape": [config.size // 2, config.size // 2],
        "params": int(deploy.count_params()),
        "best_epoch": best_row["epoch"],
        "best": {k: round(v, 5) for k, v in best_row.items() if k.startswith("val_")},
        "fit_seconds": fit_seconds,
        "threads": threads,
    }


def synthetic_aurocs(maps: np.ndarray, masks: np.ndarray, sigma: float) -> dict:
    """Image (max of smoothed map) and pixel AUROC on synthetic validation samples; maps at half resolution."""
    from sklearn.metrics import roc_auc_score

    from edge.scoring import ScoreConfig, frame_scores

    target = _downsample_masks(masks)[..., 0] >= 0.5
    labels = masks.reshape(len(masks), -1).max(1) > 0
    scores = frame_scores(maps.astype(np.float32), ScoreConfig(kind="max_blur", blur_sigma=max(sigma, 0.5)))
    out = {"val_image_auroc": float("nan"), "val_pixel_auroc": float("nan")}
    if 0 < labels.sum() < len(labels):
        out["val_image_auroc"] = float(roc_auc_score(labels, scores))
    if 0 < target.sum() < target.size:
        out["val_pixel_auroc"] = float(roc_auc_score(target.ravel(), maps.ravel()))
    return out


def _sample_grid(rec, deploy, aug: np.ndarray, masks: np.ndarray, path: Path, n: int = 6) -> None:
    """Rows: synthetic input, its mask, reconstruction, predicted map (validation samples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(-masks.reshape(len(masks), -1).sum(1))  # altered ones first, one clean at the end
    picks = list(order[: n - 1]) + [int(order[-1])]
    x = aug[picks].astype(np.float32) / 255.0
    r = np.asarray(rec(x, training=False))
    m = np.asarray(deploy(x, training=False))[..., 0]
    fig, axes = plt.subplots(4, len(picks), figsize=(2 * len(picks), 8))
    for j in range(len(picks)):
        for row, (img, title, kw) in enumerate(
            [
                (x[j].squeeze(), "input", {"cmap": "gray", "vmin": 0, "vmax": 1}),
                (masks[picks[j]], "synthetic mask", {"cmap": "gray", "vmin": 0, "vmax": 1}),
                (r[j].squeeze(), "reconstruction", {"cmap": "gray", "vmin": 0, "vmax": 1}),
                (m[j], "map", {"cmap": "inferno", "vmin": 0, "vmax": 1}),
            ]
        ):
            axes[row, j].imshow(img, **kw)
            axes[row, j].set_axis_off()
            if j == 0:
                axes[row, j].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
