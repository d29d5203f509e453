"""The live view: the observer's latest frame drawn (heatmap, ROI's map, box, score) and JPEG-encoded.

Runs on the server's threads, never on the loop. One encode per new frame, shared by every page
that asks (the observer keeps at most `live_fps` frames a second, so that is the cap).
"""

from __future__ import annotations

import threading
from typing import Optional

import cv2
import numpy as np

from edge.annotate import draw_label, heatmap_overlay
from edge.tiling import Tiler
from edge.web.observer import LiveFrame, Observer

JPEG_QUALITY = 80


def draw_live(frame: LiveFrame, tiler: Tiler, label: str) -> np.ndarray:
    """The frame with its heatmap; the box and the label in red wording only when it is over."""
    hw = frame.image.shape[:2]
    out = heatmap_overlay(frame.image, tiler.frame_map(frame.heat, hw))
    over = frame.score > frame.threshold
    if over:
        x, y, w, h = tiler.box(frame.heat, hw)
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), 2)
    if tiler.roi is not None:
        x, y, w, h = tiler.roi
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 1)
    sign = ">" if over else "<="
    numbers = f"{frame.score:.4g} {sign} {frame.threshold:.4g}"
    draw_label(out, [f"{label if over else 'ok'} {numbers}", numbers, f"{frame.score:.4g}"])
    return out


class LiveView:
    def __init__(self, observer: Observer, tiler: Tiler, label: str):
        self.observer = observer
        self.label = label
        self._tiler = tiler.twin()  # its own buffers: the loop's Tiler is not shared across threads
        self._lock = threading.Lock()
        self._cached: Optional[tuple[int, bytes]] = None
        self.encoded = 0

    def follow(self, tiler: Tiler, label: str) -> None:
        """A bundle swapped in (edge.swap): its geometry and label from the next frame drawn."""
        self._tiler, self.label = tiler.twin(), label  # no lock: the loop never waits on a JPEG encode

    def jpeg(self) -> Optional[tuple[int, bytes]]:
        """(frame number, JPEG bytes) of the newest frame; None before the first one arrives."""
        self.observer.watch()
        frame = self.observer.latest
        if frame is None:
            return None
        with self._lock:
            if self._cached is None or self._cached[0] != frame.seq:
                picture = draw_live(frame, self._tiler, self.label)
                ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if ok:
                    self._cached = (frame.seq, data.tobytes())
                    self.encoded += 1
            return self._cached
