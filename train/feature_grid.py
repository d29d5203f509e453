"""EfficientNet-Lite0 features on one grid of map cells: what the feature models share.

The feature model (train/padim.py: a Gaussian per cell) and the memory model (train/memory.py:
a position-blind bank of cells) both see an image as a g x g grid of feature vectors: stages 3,
4 and 5 of the pretrained backbone (train/backbone.py; strides 8, 16, 16) brought onto one grid
(finer stages average-pooled, coarser ones bilinearly upsampled, optionally averaged over a small
neighbourhood as PatchCore does) and concatenated (40 + 80 + 112 = 232 channels at the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from edge.errors import EdgeError
from edge.preprocess import Color


@dataclass
class GridConfig:
    """How an image becomes a grid of feature vectors; the models' own configs derive from it."""

    size: int = 256  # square model input, pixels
    color: Color = "grey"
    stages: tuple[int, ...] = (3, 4, 5)
    # pixels per map cell; 256 / 16 = 16 x 16 cells
    grid_stride: int = 16
    neighbourhood: int = 1  # each stage is averaged over this many cells around each cell (1: off)

    @property
    def grid(self) -> int:
        return self.size // self.grid_stride


def check_grid(config: GridConfig) -> None:
    from train.backbone import STRIDES

    if config.size % config.grid_stride:
        raise EdgeError(f"--size {config.size} must be a multiple of the map stride {config.grid_stride} (e.g. 256)")
    if config.grid_stride not in (4, 8, 16):
        raise EdgeError(f"map stride {config.grid_stride} must be 4, 8 or 16 pixels per cell")
    for s in config.stages:
        if s not in STRIDES or STRIDES[s] < 4:
            raise EdgeError(f"feature stage {s} is not usable (use 2 to 5)")


def build_extractor(config: GridConfig, affine: Optional[tuple[np.ndarray, np.ndarray]] = None):
    """Keras: [0, 1] image → (N, g, g, C) features of the chosen stages on one grid.

    `affine` = (multiplier, offset) per channel, applied to each stage BEFORE concatenation:
    int8 gives a concatenation one scale for all its inputs, so stages of very different
    magnitude must be brought to one range first or the small ones lose their precision.
    """
    import keras
    from keras import layers

    from train.backbone import STRIDES, build_backbone

    check_grid(config)
    channels = 1 if config.color == "grey" else 3
    backbone = build_backbone((config.size, config.size, channels), stages=config.stages)
    inputs = keras.Input((config.size, config.size, channels), name="image")
    outs = backbone(inputs)
    outs = outs if isinstance(outs, list) else [outs]
    pooled = []
    start = 0
    for stage, x in zip(config.stages, outs, strict=False):
        k = config.grid_stride // STRIDES[stage]
        x = layers.AveragePooling2D(k, name=f"pool_s{stage}")(x) if k > 1 else x
        if config.neighbourhood > 1:
            # a small neighbourhood average, as PatchCore does, makes each cell shift-tolerant
            x = layers.AveragePooling2D(config.neighbourhood, strides=1, padding="same", name=f"near_s{stage}")(x)
        up = STRIDES[stage] // config.grid_stride
        x = layers.UpSampling2D(up, interpolation="bilinear", name=f"up_s{stage}")(x) if up > 1 else x
        if affine is not None:
            c = x.shape[-1]
            # a 1x1 depthwise conv is a per-channel multiplier + offset whose int8 weights get
            # one scale per channel
            layer = layers.DepthwiseConv2D(1, name=f"norm_s{stage}")
            x = layer(x)
            layer.set_weights(
                [
                    affine[0][start : start + c].reshape(1, 1, c, 1).astype(np.float32),
                    affine[1][start : start + c].astype(np.float32),
                ]
            )
            start += c
        pooled.append(x)
    x = layers.Concatenate(name="features")(pooled) if len(pooled) > 1 else pooled[0]
    return keras.Model(inputs, x, name="padim_features")


def extract(extractor, frames_u8: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """(N, H, W, C) uint8 frames → (N, g, g, C) float features, in batches."""
    from edge.preprocess import to_unit_float

    out = []
    for i in range(0, len(frames_u8), batch_size):
        out.append(np.asarray(extractor(to_unit_float(frames_u8[i : i + batch_size]), training=False)))
    return np.concatenate(out)


def training_features(
    data, config: GridConfig, threads: Optional[int], log: Callable[[str], None], min_images: int = 1, name: str = ""
) -> tuple:
    """The good images of DATA and their (N, g, g, C) grid features; sets config.color from the images."""
    images = training_images(data, config, threads, log, min_images, name)
    return images, extract(build_extractor(config), images.frames)


def training_images(
    data, config: GridConfig, threads: Optional[int], log: Callable[[str], None], min_images: int = 1, name: str = ""
):
    """The good images of DATA, checked, with TensorFlow imported; sets config.color from the images.

    The images are read first: a wrong folder, or too few images, is one line at once, not after
    TensorFlow's import.
    """
    from train.data import load_training_images
    from train.tfenv import import_tensorflow

    images = load_training_images(data, config.size, config.color)
    if len(images.paths) < min_images:
        raise EdgeError(
            f"{name or 'this model'} needs at least {min_images} good images, {images.folder} has {len(images.paths)} "
            "readable: add more (a few dozen cover a part's looks; a few hundred are better)"
        )
    import_tensorflow(threads)
    if images.skipped:
        log(f"skipped {len(images.skipped)} unreadable file(s)")
    config.color = images.preprocessing.color
    return images
