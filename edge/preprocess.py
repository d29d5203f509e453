"""Frame → model input. One definition, used by training, export, calibration and the device.

Everything the model sees goes through `Preprocessor.prepare`: colour conversion, region of
interest, resize with INTER_AREA, uint8 HxWxC. Scaling to [0, 1] or quantizing to the model's
input type happens in `edge.model`, so the same uint8 frame can feed a float or an int8 model.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import cv2
import numpy as np
from pydantic import AfterValidator, Field

from edge.errors import EdgeError
from edge.schema import StrictModel

Color = Literal["grey", "rgb"]


def _check_roi(roi: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    if roi[2] <= 0 or roi[3] <= 0 or roi[0] < 0 or roi[1] < 0:
        raise ValueError("roi must be x,y,w,h with x,y >= 0 and w,h > 0")
    return roi


# x, y, w, h in source-frame pixels
Roi = Annotated[tuple[int, int, int, int], AfterValidator(_check_roi)]


class Preprocessing(StrictModel):
    """Stored in every bundle: how a frame becomes a model input."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    color: Color = "grey"
    # x, y, w, h in source-frame pixels; None is the whole frame.
    roi: Optional[Roi] = None
    interpolation: Literal["area", "linear"] = "area"

    @property
    def channels(self) -> int:
        return 1 if self.color == "grey" else 3

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)


def to_color(image: np.ndarray, color: Color) -> np.ndarray:
    """uint8 BGR or grey → uint8 HxWxC in the requested colour (RGB order for colour)."""
    if color == "grey":
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return image[:, :, None]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def crop_roi(image: np.ndarray, roi: Optional[tuple[int, int, int, int]]) -> np.ndarray:
    if roi is None:
        return image
    x, y, w, h = roi
    if x + w > image.shape[1] or y + h > image.shape[0]:
        raise EdgeError(
            f"region of interest {x},{y},{w},{h} lies outside the {image.shape[1]}x{image.shape[0]} frame; "
            "fix the roi in the config"
        )
    return image[y : y + h, x : x + w]


class Preprocessor:
    """Turns decoded frames into model-sized uint8 arrays (a new array per call: callers keep them)."""

    def __init__(self, config: Preprocessing):
        self.config = config
        self._interp = cv2.INTER_AREA if config.interpolation == "area" else cv2.INTER_LINEAR
        self._grey: Optional[np.ndarray] = None  # full-size grey scratch, reused frame to frame

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """One frame (uint8, BGR or grey, any size) → uint8 (H, W, C) at the model's size."""
        cfg = self.config
        if image.dtype != np.uint8:
            raise EdgeError(f"frames must be 8-bit images, got {image.dtype}")
        image = crop_roi(image, cfg.roi)
        resize = image.shape[0] != cfg.height or image.shape[1] != cfg.width
        if resize and cfg.color == "grey" and image.ndim == 3:
            # Grey first, then resize: a third of the pixels to resample (the frame-size scratch
            # is reused; only the model-size result is new). Same order as the tiles in edge.tiling.
            hw = image.shape[:2]
            if self._grey is None or self._grey.shape != hw:
                self._grey = np.empty(hw, np.uint8)
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=self._grey)
        if resize:
            image = cv2.resize(image, (cfg.width, cfg.height), interpolation=self._interp)
        return to_color(image, cfg.color)

    def prepare_batch(self, images: list[np.ndarray]) -> np.ndarray:
        out = np.empty((len(images), *self.config.input_shape), np.uint8)
        for i, image in enumerate(images):
            out[i] = self.prepare(image)
        return out


def to_unit_float(batch: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1], the range every model in this project is trained on."""
    return batch.astype(np.float32) * np.float32(1.0 / 255.0)
