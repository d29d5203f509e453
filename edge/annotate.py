"""Drawing for people: the error heatmap over the frame, the box, the score."""

from __future__ import annotations

import cv2
import numpy as np


def heatmap_overlay(frame: np.ndarray, error_map: np.ndarray, scale: float | None = None, alpha: float = 0.45) -> np.ndarray:
    """Colour the error map (JET) over the frame, from its median (blue) to `scale` (red; default: map max)."""
    base = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
    low = float(np.median(error_map))
    high = float(scale or error_map.max())
    norm = np.clip((error_map - low) / max(high - low, 1e-12), 0.0, 1.0)
    heat = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.resize(heat, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)


def annotate(frame: np.ndarray, error_map: np.ndarray, score: float, threshold: float,
             box: tuple[int, int, int, int] | None, label: str = "anomaly", scale: float | None = None) -> np.ndarray:
    out = heatmap_overlay(frame, error_map, scale)
    if box is not None:
        x, y, w, h = box
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), 2)
    text = f"{label} {score:.4g} > {threshold:.4g}"
    cv2.putText(out, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out
