"""Reconstruction error → error map → one score per frame.

The score definition lives in the bundle, so calibration and the device compute the very
same number.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edge.schema import StrictModel


class ScoreConfig(StrictModel):
    # mean: the tutorials' whole-image MSE; max_blur: max of the Gaussian-smoothed error map
    # (small defects); topk_mean: mean of the worst `topk` fraction of pixels.
    kind: Literal["mean", "max_blur", "topk_mean"] = "mean"
    blur_sigma: float = Field(2.0, gt=0, description="Gaussian sigma in model-input pixels (max_blur)")
    topk: float = Field(0.01, gt=0, le=1, description="fraction of pixels averaged (topk_mean)")
    # autoencoders only: how input and reconstruction are compared per pixel. squared: the
    # tutorials' squared difference; ssim: (1 − SSIM) / 2, structural (local mean, contrast and
    # correlation in a Gaussian window), so a blurry but faithful reconstruction of texture costs
    # less than a changed structure of the same energy.
    error: Literal["squared", "ssim"] = "squared"

    def describe(self) -> str:
        """e.g. "max_blur(sigma=4)", "mean of ssim error": for logs and reports."""
        text = {"max_blur": f"max_blur(sigma={self.blur_sigma:g})", "topk_mean": f"topk_mean({self.topk:g})"}.get(
            self.kind, self.kind
        )
        return text if self.error == "squared" else f"{text} of {self.error} error"


def error_maps(inputs_u8: np.ndarray, reconstructions: np.ndarray, error: str = "squared") -> np.ndarray:
    """Per-pixel error averaged over channels: (N, H, W) float32 in [0, 1]; see ScoreConfig.error."""
    x = inputs_u8.astype(np.float32) * np.float32(1.0 / 255.0)
    if error == "ssim":
        return ssim_error_maps(x, reconstructions.astype(np.float32, copy=False))
    diff = x - reconstructions.astype(np.float32, copy=False)
    np.square(diff, out=diff)
    return diff.mean(axis=3) if diff.shape[3] > 1 else diff[..., 0]


SSIM_SIGMA = 1.5  # Wang et al. 2004: 11x11 Gaussian window, sigma 1.5
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # for a dynamic range of 1


def ssim_error_maps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(1 − SSIM) / 2 per pixel of (N, H, W, C) images in [0, 1], averaged over channels."""
    out = np.zeros(x.shape[:3], np.float32)

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (11, 11), SSIM_SIGMA)

    for i in range(x.shape[0]):
        for c in range(x.shape[3]):
            a, b = x[i, :, :, c], y[i, :, :, c]
            mu_a, mu_b = blur(a), blur(b)
            var_a = blur(a * a) - mu_a * mu_a
            var_b = blur(b * b) - mu_b * mu_b
            cov = blur(a * b) - mu_a * mu_b
            ssim = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / (
                (mu_a * mu_a + mu_b * mu_b + SSIM_C1) * (var_a + var_b + SSIM_C2)
            )
            out[i] += (1.0 - ssim) / 2.0
    out /= x.shape[3]
    return np.clip(out, 0.0, 1.0, out=out)


def smooth(maps: np.ndarray, sigma: float) -> np.ndarray:
    out = np.empty_like(maps)
    for i, m in enumerate(maps):
        out[i] = cv2.GaussianBlur(m, (0, 0), sigma)
    return out


def frame_scores(maps: np.ndarray, config: ScoreConfig) -> np.ndarray:
    """(N, H, W) error maps → (N,) scores, as configured."""
    flat = maps.reshape(maps.shape[0], -1)
    if config.kind == "mean":
        return flat.mean(axis=1)
    if config.kind == "max_blur":
        return smooth(maps, config.blur_sigma).reshape(maps.shape[0], -1).max(axis=1)
    k = max(1, int(round(flat.shape[1] * config.topk)))
    return np.partition(flat, flat.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def peak_box(error_map: np.ndarray, frame_hw: tuple[int, int], sigma: float = 2.0) -> tuple[int, int, int, int]:
    """Box (x, y, w, h) in frame pixels around the highest-error blob of a model-sized map.

    On the loop for every alert, so it is kept cheap (~0.3 ms for a 256x256 map): the typical level
    is the median of a 64x64-ish subsample, and the blob is flood-filled from the peak (only that
    blob is visited) instead of labelling every component of the map."""
    smoothed = cv2.GaussianBlur(error_map, (0, 0), sigma)
    _, peak, _, (px, py) = cv2.minMaxLoc(smoothed)
    # Half height above the map's typical level: feature-distance maps never reach zero, so
    # half the peak would box most of the frame.
    step = max(1, min(smoothed.shape) // 64)
    base = float(np.median(smoothed[::step, ::step]))
    if peak > base:
        mask = (smoothed >= base + 0.5 * (peak - base)).astype(np.uint8)
        _, _, _, (x, y, w, h) = cv2.floodFill(mask, None, (px, py), 2, flags=8)
    else:
        x, y, w, h = px, py, 1, 1
    sy = frame_hw[0] / error_map.shape[0]
    sx = frame_hw[1] / error_map.shape[1]
    return int(x * sx), int(y * sy), max(1, int(round(w * sx))), max(1, int(round(h * sy)))
