"""The snapshot of a signal alert: the window against its reconstruction, drawn with OpenCV (no matplotlib).

The alert worker draws it (edge.sinks.dispatch), after the loop has moved on; it runs the model
once more on its own interpreter, opened on first use, so the loop's interpreter is never shared
between threads. The raw snapshot is the window alone, the annotated one adds the reconstruction,
the error between them shaded, and the score against the threshold.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from edge.bundle import Bundle
from edge.model import TFLiteModel

WIDTH, HEIGHT, MARGIN = 720, 260, 24
WHITE, GRID, BLACK = (255, 255, 255), (225, 225, 225), (40, 40, 40)
WINDOW_COLOUR, RECONSTRUCTION_COLOUR, ERROR_COLOUR = (180, 90, 20), (40, 110, 240), (200, 200, 255)


def _points(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → pixel points across the plot (1 at the top)."""
    n = len(values)
    xs = MARGIN + np.arange(n) * (WIDTH - 2 * MARGIN) / max(n - 1, 1)
    ys = HEIGHT - MARGIN - np.clip(values, 0, 1) * (HEIGHT - 2.5 * MARGIN)
    return np.stack([xs, ys], axis=1).round().astype(np.int32)


def plot_window(window: np.ndarray, reconstruction: Optional[np.ndarray] = None, caption: str = "") -> np.ndarray:
    """A BGR picture of a window (values in [0, 1]) and, when given, its reconstruction."""
    canvas = np.full((HEIGHT, WIDTH, 3), WHITE, np.uint8)
    for level in (0.0, 0.5, 1.0):
        y = int(_points(np.array([level]))[0, 1])
        cv2.line(canvas, (MARGIN, y), (WIDTH - MARGIN, y), GRID, 1)
    ours = _points(window)
    if reconstruction is not None:
        theirs = _points(reconstruction)
        for (x, y0), (_, y1) in zip(ours, theirs, strict=True):
            cv2.line(canvas, (int(x), int(y0)), (int(x), int(y1)), ERROR_COLOUR, 2)
        cv2.polylines(canvas, [theirs.reshape(-1, 1, 2)], False, RECONSTRUCTION_COLOUR, 2, cv2.LINE_AA)
    cv2.polylines(canvas, [ours.reshape(-1, 1, 2)], False, WINDOW_COLOUR, 2, cv2.LINE_AA)
    if caption:
        cv2.putText(canvas, caption, (MARGIN, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, BLACK, 1, cv2.LINE_AA)
    return canvas


class SignalPlot:
    """Draws a flagged window (the 1 x length uint8 frame) with the bundle's model on its own interpreter."""

    def __init__(self, model_path: Path):
        self.model_path = model_path
        self._model: Optional[TFLiteModel] = None
        self._lock = threading.Lock()  # one interpreter, whichever thread draws

    def reconstruct(self, frame: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._model is None:
                self._model = TFLiteModel(self.model_path, num_threads=1)
            return self._model.predict(frame.reshape(1, 1, -1, 1))[0].reshape(-1)

    def render(self, frame: np.ndarray, score: float, threshold: float, label: str) -> tuple[np.ndarray, np.ndarray]:
        """(raw: the window alone, annotated: window, reconstruction and score) as BGR pictures."""
        if frame.ndim == 3:  # a 1 x length strip in colour (edge bench's synthetic frames): as the Preprocessor does
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.shape[2] == 3 else frame[..., 0]
        window = frame.reshape(-1).astype(np.float32) / 255.0
        raw = plot_window(window)
        caption = f"{label}  score {score:.4g} > threshold {threshold:.4g}   window (blue) vs reconstruction (orange)"
        return raw, plot_window(window, self.reconstruct(frame), caption)


_PLOTS: dict[Path, SignalPlot] = {}


def signal_plot(bundle: Bundle) -> SignalPlot:
    """The plotter of a bundle's model (one per model file: a swapped-in bundle gets its own)."""
    path = bundle.model_path.resolve()
    plot = _PLOTS.get(path)
    if plot is None:
        if len(_PLOTS) > 8:  # a long run through many bundle versions keeps only recent interpreters
            _PLOTS.clear()
        plot = _PLOTS[path] = SignalPlot(path)
    return plot
