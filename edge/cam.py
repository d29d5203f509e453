"""Class activation maps on the device, from the model's feature map and the dense weights.

The classifier ends Conv -> GlobalAveragePooling2D -> Dense -> softmax with no hidden layer, so a
class logit is exactly the spatial mean of a map plus a bias:

    logit_c = mean_xy( sum_k F[x, y, k] * W[k, c] ) + b_c

The exported .tflite has two outputs, the class probabilities and the last conv feature map F;
W and b travel in the bundle (manifest `extra`). The heatmap is then one small matrix product
here: no second model, no gradients. numpy and OpenCV only (never TensorFlow).

For the positive class we use the *contrast* map  F @ (W[:, pos] - mean of the other columns):
with two classes its spatial mean plus (b_pos - b_neg) is the very logit whose sigmoid is the
crack probability, so where the map is high is where the evidence for "crack" is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from edge.errors import EdgeError

FLOAT_HEAD = "float_head_on_features"  # the card's `extra.probabilities` when CamHead.float_head


@dataclass(frozen=True)
class CamHead:
    """The classifier head as the bundle stores it: class names, positive class, dense weights."""

    class_names: tuple[str, ...]
    positive_index: int
    kernel: np.ndarray  # (channels, classes) float32
    bias: np.ndarray  # (classes,) float32
    # Where feature cell k's receptive field is centred, in input pixel indices: stride * k + offset.
    # None: assume cells tile the image evenly (what a plain resize does). Strided 'same' convs
    # shift the centres by up to a few pixels, so export measures and stores them.
    stride: Optional[float] = None
    offset: Optional[float] = None
    # True (exports since issue 19): the class probabilities are computed here, in float, from the
    # feature map and the dense weights (softmax of GAP(F) @ W + b). The int8 model's own probability
    # output is quantized in steps of 1/256 and saturates: confident images all tie at 0.996, which
    # leaves a threshold nothing to choose between. False (older bundles): the model's output as it is.
    float_head: bool = False

    @property
    def positive_class(self) -> str:
        return self.class_names[self.positive_index]

    @property
    def channels(self) -> int:
        return int(self.kernel.shape[0])

    def contrast_weights(self, class_index: int | None = None) -> tuple[np.ndarray, float]:
        """(channels,) weights and the bias of "class vs the rest" (see the module docstring)."""
        c = self.positive_index if class_index is None else class_index
        others = [i for i in range(len(self.class_names)) if i != c]
        w = self.kernel[:, c] - self.kernel[:, others].mean(axis=1)
        b = float(self.bias[c] - self.bias[others].mean())
        return w.astype(np.float32), b

    def to_extra(self) -> dict[str, Any]:
        """The JSON-ready dict written into the model card and the bundle manifest."""
        return {
            "class_names": list(self.class_names),
            "positive_class": self.positive_class,
            "positive_index": self.positive_index,
            "dense_kernel": self.kernel.astype(float).tolist(),
            "dense_bias": self.bias.astype(float).tolist(),
            "cam_stride": self.stride,
            "cam_offset": self.offset,
            "probabilities": FLOAT_HEAD if self.float_head else "model",
        }

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> "CamHead":
        missing = [k for k in ("class_names", "positive_class", "dense_kernel", "dense_bias") if k not in extra]
        if missing:
            raise EdgeError(
                f"classifier bundle lacks {', '.join(missing)} in its extra data; "
                "re-export the run with `edge export` and re-calibrate it"
            )
        names = tuple(str(n) for n in extra["class_names"])
        positive = str(extra["positive_class"])
        if positive not in names:
            raise EdgeError(f"positive class {positive!r} is not one of the classes {names}; re-export the run")
        kernel = np.asarray(extra["dense_kernel"], np.float32)
        bias = np.asarray(extra["dense_bias"], np.float32)
        if kernel.ndim != 2 or kernel.shape[1] != len(names) or bias.shape != (len(names),):
            raise EdgeError(
                f"classifier dense weights have shape {kernel.shape} / {bias.shape}, expected "
                f"(channels, {len(names)}) / ({len(names)},); re-export the run"
            )
        stride, offset = extra.get("cam_stride"), extra.get("cam_offset")
        aligned = stride is not None and offset is not None and float(stride) > 0
        return cls(
            names,
            names.index(positive),
            kernel,
            bias,
            float(stride) if aligned else None,
            float(offset) if aligned else None,
            extra.get("probabilities") == FLOAT_HEAD,
        )

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, h, w, C) feature maps -> (N, K) class logits in float: GAP, then the dense layer."""
        pooled = features.astype(np.float32, copy=False).mean(axis=(1, 2))
        return pooled @ self.kernel + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, K) softmax of the float logits (no quantization steps, no saturation at 255/256).

        In float64: a confident crack's logit margin reaches 20-40, where a float32 probability
        rounds to exactly 1.0 and such images tie again; float64 keeps them apart up to ~36.
        """
        z = self.logits(features).astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


def split_outputs(outputs: Sequence[np.ndarray], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, K), feature map (N, h, w, C)) from the model outputs, found by shape.

    The TFLite converter may reorder outputs, so never trust their index.
    """
    probs = [o for o in outputs if o.ndim == 2 and o.shape[1] == n_classes]
    feats = [o for o in outputs if o.ndim == 4]
    if len(probs) != 1 or len(feats) != 1:
        shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
        raise EdgeError(
            f"a classifier model must have two outputs, probabilities (N, {n_classes}) and a feature map "
            f"(N, h, w, C); this one has {shapes}. Export it with `edge export` from a classifier run"
        )
    return probs[0], feats[0]


def cam_maps(features: np.ndarray, head: CamHead, class_index: int | None = None) -> np.ndarray:
    """(N, h, w, C) feature maps -> (N, h, w) contrast CAMs in logit units (may be negative)."""
    if features.shape[-1] != head.channels:
        raise EdgeError(
            f"feature map has {features.shape[-1]} channels but the bundle's dense kernel expects "
            f"{head.channels}; the bundle does not belong to this model, re-export and re-calibrate"
        )
    w, _ = head.contrast_weights(class_index)
    return np.tensordot(features.astype(np.float32, copy=False), w, axes=([3], [0])).astype(np.float32)


def upsample(
    maps: np.ndarray, size_hw: tuple[int, int], stride: Optional[float] = None, offset: Optional[float] = None
) -> np.ndarray:
    """(N, h, w) -> (N, H, W), bicubic, each cell placed where its receptive field is centred.

    Bicubic, not bilinear: a bilinear map peaks exactly on a cell centre (8 model pixels apart), so
    the alert's box can only sit on that grid; a cubic through the neighbouring cells puts the peak
    between centres, towards the stronger neighbour (sub-cell, like a parabola fit of the peak).
    Measured on real crack masks: the peak on the crack in 76.6 % of crops instead of 71.8 %
    (benchmarks/results/classifier_cam.md). Its overshoot below 0 is clipped by heatmaps().

    With `stride`/`offset` (cell k centred on pixel stride * k + offset) the map is warped into
    place; without, cells are assumed to tile the image evenly (a plain resize). Beyond the
    outermost cell centres the edge values are repeated.
    """
    h, w = size_hw
    out = np.empty((maps.shape[0], h, w), np.float32)
    for i, m in enumerate(maps):
        if stride is None or offset is None:
            out[i] = cv2.resize(m, (w, h), interpolation=cv2.INTER_CUBIC)
        else:
            # Inverse map: output pixel x samples cell (x - offset) / stride.
            inverse = np.array([[1.0 / stride, 0.0, -offset / stride], [0.0, 1.0 / stride, -offset / stride]])
            out[i] = cv2.warpAffine(
                np.ascontiguousarray(m, np.float32),
                inverse,
                (w, h),
                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
    return out


def heatmaps(features: np.ndarray, head: CamHead, size_hw: tuple[int, int]) -> np.ndarray:
    """Where the evidence for the positive class is, at model-input resolution, >= 0.

    Negative evidence (clean surface) is clipped to 0 so the map reads like an anomaly map:
    the alert's box and the annotated overlay go where the crack is.
    """
    return np.maximum(upsample(cam_maps(features, head), size_hw, head.stride, head.offset), 0.0)


def peak_location(cam: np.ndarray) -> tuple[int, int]:
    """(x, y) of a map's maximum."""
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(x), int(y)
