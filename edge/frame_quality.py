"""Is a frame worth keeping as a training image? Frozen, exposure, blur and near-duplicate checks.

`edge collect` (edge/collect.py) asks these of every candidate frame, in this order, and counts
each rejection under its reason:

* frozen: the source handed over exactly the frame it handed over before (a stuck driver or
  stream repeats its last buffer; a still scene on a live sensor never does, noise differs).
* underexposed / overexposed: more than `max_clipped` of the inspected pixels sit at the ends of
  the range (<= `dark_level` or >= `bright_level` grey), where a clipped pixel holds no detail the
  model could learn. A quarter of the view without detail is too much to learn what good looks like.
* blurred: the variance of the Laplacian (edge energy) at the frame's own scale is below
  `min_sharpness` times that of the frame halved (cv2.pyrDown). A ratio of the finest octave to the
  next, so it does not depend on what is in view: a plain belt and a busy part are judged alike, where
  any fixed Laplacian variance calls a plain surface blurred. Blur takes the finest octave first:
  measured on the conveyor video and magnetic tiles, sharp frames give 0.79 and more, the same frames
  under a Gaussian blur of 1 px (about the least a person notices) 0.53 and less; 0.6 lies between
  (benchmarks/results/collect.md). Computed on the ROI at the camera's resolution, before any resize:
  an upscaled crop is smooth without being blurred.
* duplicate: a small grey copy (`signature_width` px wide, INTER_AREA: each value the mean of a
  block, so sensor noise shrinks by the block's side) differs from each of the last `compare_last`
  saved frames by less than `min_change` grey levels on average, each copy's mean taken off first
  (auto-exposure drift and flicker of a stopped belt are not news). Why 2 grey levels: a part
  covering 5 % of the view with 20 levels of contrast, moved by its own size, changes that mean by
  2 levels (it leaves one place and appears in another: 2 × 0.05 × 20); the noise of a still scene
  after the block averaging stays under half a level (a 640-px frame, 20×20 blocks: sensor noise of
  5 levels becomes 0.25); benchmarks/results/collect.md has the figures of a real video.

Every check but the frozen one reads the ROI crop in grey at the camera's resolution, and only
the pixels of the inspection mask: what does not count in `edge run` does not count here.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, Optional

import cv2
import numpy as np
from pydantic import Field, model_validator

from edge.schema import StrictModel

Reason = Literal["frozen", "underexposed", "overexposed", "blurred", "duplicate"]
REASONS: tuple[Reason, ...] = ("frozen", "underexposed", "overexposed", "blurred", "duplicate")


class QualityConfig(StrictModel):
    """Thresholds of the frame checks (see the module docstring for why each default)."""

    min_change: float = Field(2.0, ge=0, description="grey levels of mean change from every recent saved frame")
    compare_last: int = Field(5, ge=1, description="saved frames a candidate is compared with")
    signature_width: int = Field(32, ge=8, description="width of the grey copy duplicates are judged on")
    min_sharpness: float = Field(
        0.6, ge=0, description="blurred below this ratio of Laplacian variance, full scale to half scale"
    )
    dark_level: int = Field(4, ge=0, le=254, description="grey levels at or below this are clipped black")
    bright_level: int = Field(251, ge=1, le=255, description="grey levels at or above this are clipped white")
    max_clipped: float = Field(0.25, gt=0, le=1, description="share of clipped pixels a frame may have")

    @model_validator(mode="after")
    def _levels_in_order(self):
        if self.dark_level >= self.bright_level:
            raise ValueError(f"dark_level ({self.dark_level}) must be below bright_level ({self.bright_level})")
        return self


def grey_of(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1) or RGB (H, W, 3) -> uint8 (H, W) grey."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def clipped_shares(grey: np.ndarray, mask: Optional[np.ndarray], config: QualityConfig) -> tuple[float, float]:
    """Shares of the inspected pixels clipped black and clipped white."""
    values = grey if mask is None else grey[mask]
    n = max(1, values.size)
    dark = np.count_nonzero(values <= config.dark_level) / n
    bright = np.count_nonzero(values >= config.bright_level) / n
    return dark, bright


def laplacian_variance(grey: np.ndarray, mask: Optional[np.ndarray]) -> float:
    """Variance of the Laplacian over the inspected pixels: edge energy, low when blurred."""
    laplacian = cv2.Laplacian(grey, cv2.CV_32F)
    values = laplacian if mask is None else laplacian[mask]
    return float(values.var()) if values.size else 0.0


def sharpness(grey: np.ndarray, mask: Optional[np.ndarray]) -> float:
    """Edge energy at full scale over that at half scale: about 1 or more when sharp, under 0.5 when blurred."""
    if min(grey.shape[:2]) < 8:
        return float("inf")  # too small to tell
    half = cv2.pyrDown(grey)
    half_mask = None
    if mask is not None:
        half_mask = cv2.resize(mask.astype(np.uint8), (half.shape[1], half.shape[0]), interpolation=cv2.INTER_NEAREST)
        half_mask = half_mask.astype(bool)
    coarse = laplacian_variance(half, half_mask)
    return laplacian_variance(grey, mask) / coarse if coarse > 0 else float("inf")


def signature(grey: np.ndarray, mask: Optional[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """A small zero-mean grey copy and its weights (the mask's share of each block), for duplicates."""
    height = max(1, int(round(grey.shape[0] * width / grey.shape[1])))
    small = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    if mask is None:
        weights = np.ones_like(small)
    else:
        weights = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    total = float(weights.sum()) or 1.0
    small -= float((small * weights).sum()) / total
    return small, weights / total


def change(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean absolute grey difference of two signatures (inf when they differ in shape)."""
    if a[0].shape != b[0].shape:
        return float("inf")
    return float((np.abs(a[0] - b[0]) * a[1]).sum())


class FrameChecks:
    """The checks with the state they need: the previous raw frame, recent sharpness, saved signatures."""

    def __init__(self, config: Optional[QualityConfig] = None):
        self.config = config or QualityConfig()
        self._previous: Optional[np.ndarray] = None
        self._saved: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.config.compare_last)

    def frozen(self, raw: np.ndarray) -> bool:
        """True when `raw` is exactly the previous frame the source handed over; remembers it."""
        previous, self._previous = self._previous, raw
        return previous is not None and previous.shape == raw.shape and np.array_equal(previous, raw)

    def unfit(self, image: np.ndarray, mask: Optional[np.ndarray]) -> Optional[Reason]:
        """Why `image` (the grey ROI crop) is unfit by itself: exposure or blur; None if fit."""
        grey = grey_of(image)
        dark, bright = clipped_shares(grey, mask, self.config)
        if dark > self.config.max_clipped:
            return "underexposed"
        if bright > self.config.max_clipped:
            return "overexposed"
        if sharpness(grey, mask) < self.config.min_sharpness:
            return "blurred"
        return None

    def signature(self, image: np.ndarray, mask: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return signature(grey_of(image), mask, self.config.signature_width)

    def duplicate(self, sig: tuple[np.ndarray, np.ndarray]) -> bool:
        return any(change(sig, saved) < self.config.min_change for saved in self._saved)

    def remember_saved(self, sig: tuple[np.ndarray, np.ndarray]) -> None:
        self._saved.append(sig)
