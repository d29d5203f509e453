"""Drawing for people: the error heatmap over the frame, the box, the score."""

from __future__ import annotations

import cv2
import numpy as np


def heatmap_overlay(
    frame: np.ndarray, error_map: np.ndarray, scale: float | None = None, alpha: float = 0.45
) -> np.ndarray:
    """Colour the error map (JET) over the frame, from its median (blue) to `scale` (red; default: map max)."""
    base = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
    low = float(np.median(error_map))
    high = float(scale or error_map.max())
    norm = np.clip((error_map - low) / max(high - low, 1e-12), 0.0, 1.0)
    heat = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.resize(heat, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)


FONT = cv2.FONT_HERSHEY_SIMPLEX
PAD = 3  # pixels between the label's text and its box, and between the box and the frame's edge
MAX_SCALE, MIN_SCALE = 0.6, 0.3  # below MIN_SCALE the full text is not legible: a shorter one is used


def _text_size(text: str, scale: float) -> tuple[int, int, int]:
    (w, h), baseline = cv2.getTextSize(text, FONT, scale, 1)
    return w, h, baseline


def _fit(texts: list[str], width: int, height: int) -> tuple[str, float]:
    """The first text that fits the frame at a legible scale, at the largest scale (<= MAX_SCALE) that fits."""
    room_w, room_h = max(width - 4 * PAD - 2, 1), max(height - 4 * PAD - 2, 1)
    for text in texts:
        w, h, baseline = _text_size(text, 1.0)
        scale = min(MAX_SCALE, room_w / w, room_h / (h + baseline))
        if scale >= MIN_SCALE:
            return text, scale
    return texts[-1], max(scale, 0.05)


def draw_label(out: np.ndarray, texts: list[str]) -> tuple[int, int, int, int]:
    """White text on a filled dark box in the top-left corner, always inside the frame; returns the box x, y, w, h.

    One drawing pass: an outline pass under the text used to show as a shifted copy of it.
    """
    height, width = out.shape[:2]
    text, scale = _fit(texts, width, height)
    w, h, baseline = _text_size(text, scale)
    box_w, box_h = min(w + 2 * PAD, width - 2 * PAD), min(h + baseline + 2 * PAD, height - 2 * PAD)
    cv2.rectangle(out, (PAD, PAD), (PAD + box_w - 1, PAD + box_h - 1), (32, 32, 32), cv2.FILLED)
    cv2.putText(out, text, (2 * PAD, 2 * PAD + h), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return PAD, PAD, box_w, box_h


def annotate(
    frame: np.ndarray,
    error_map: np.ndarray,
    score: float,
    threshold: float,
    box: tuple[int, int, int, int] | None,
    label: str = "anomaly",
    scale: float | None = None,
) -> np.ndarray:
    out = heatmap_overlay(frame, error_map, scale)
    if box is not None:
        x, y, w, h = box
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), 2)
    numbers = f"{score:.4g} > {threshold:.4g}"
    # narrow frames get the shorter texts rather than an unreadable or cut-off one
    draw_label(out, [f"{label} {numbers}", numbers, f"{score:.4g}"])
    return out
