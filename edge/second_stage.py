"""Two-stage inspection: the autoencoder finds *that* something is wrong, the classifier says *what*.

`edge run --bundle AE --classifier CLS_BUNDLE`: when the autoencoder raises an alert, the frame
(or, when the frame is tiled, the tile around the anomaly) goes through the crack classifier.
Over the classifier's calibrated threshold the alert is labelled with its positive class
("crack") and the annotated snapshot shows the class activation map; otherwise it is labelled
"unknown anomaly" and keeps the reconstruction-error heatmap. The classifier runs only on
alerts, so it costs nothing on good frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from edge.bundle import Bundle
from edge.detector import make_detector
from edge.errors import EdgeError
from edge.preprocess import Preprocessor
from edge.scoring import peak_box

UNKNOWN = "unknown anomaly"

Box = tuple[int, int, int, int]


@dataclass
class Verdict:
    label: str  # the positive class ("crack") or "unknown anomaly"
    probability: float  # of the positive class
    threshold: float
    region: Optional[Box]  # x, y, w, h in frame pixels that was classified; None: the whole frame
    cam: Optional[np.ndarray] = None  # (h, w) CAM over the classified region, model resolution
    box: Optional[Box] = None  # CAM peak region in frame pixels (when classified positive)

    @property
    def positive(self) -> bool:
        return self.cam is not None

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "probability": round(float(self.probability), 6),
            "threshold": round(float(self.threshold), 6),
            "region": list(self.region) if self.region is not None else None,
        }


class SecondStage:
    """A calibrated classifier bundle applied to what the first stage flagged."""

    def __init__(self, bundle: Bundle, num_threads: Optional[int] = None, unknown_label: str = UNKNOWN):
        if bundle.manifest.model.kind != "classifier":
            raise EdgeError(
                f"--classifier {bundle.path} holds a {bundle.manifest.model.kind} model; it needs a classifier "
                "bundle (edge train classifier -> edge export -> edge calibrate)"
            )
        self.bundle = bundle
        self.detector = make_detector(bundle, num_threads)
        self.threshold = bundle.threshold
        self.label = self.detector.label
        self.unknown_label = unknown_label
        cfg = bundle.manifest.preprocessing
        self._whole = Preprocessor(cfg)  # whole frames: the classifier's own region of interest applies
        self._crop = Preprocessor(cfg.model_copy(update={"roi": None}))  # tiles: already cut out

    def classify(self, image: np.ndarray, region: Optional[Box] = None) -> Verdict:
        """Classify the frame (region None) or a region of it (x, y, w, h in frame pixels)."""
        if region is None:
            prepared = self._whole.prepare(image)
            roi = self.bundle.manifest.preprocessing.roi
            placed = roi if roi is not None else None
        else:
            x, y, w, h = region
            prepared = self._crop.prepare(image[y : y + h, x : x + w])
            placed = region
        detection = self.detector.detect(prepared[None])
        p = float(detection.scores[0])
        if p <= self.threshold:
            return Verdict(self.unknown_label, p, self.threshold, placed)
        cam = detection.maps[0]
        ox, oy, rw, rh = placed if placed is not None else (0, 0, image.shape[1], image.shape[0])
        bx, by, bw, bh = peak_box(cam, (rh, rw))
        return Verdict(self.label, p, self.threshold, placed, cam, (bx + ox, by + oy, bw, bh))

    @staticmethod
    def frame_map(verdict: Verdict, frame_hw: tuple[int, int]) -> np.ndarray:
        """The verdict's CAM on a frame-sized canvas (zero outside the classified region), for drawing."""
        canvas = np.zeros(frame_hw, np.float32)
        if verdict.cam is None:
            return canvas
        x, y, w, h = verdict.region if verdict.region is not None else (0, 0, frame_hw[1], frame_hw[0])
        canvas[y : y + h, x : x + w] = cv2.resize(verdict.cam, (w, h), interpolation=cv2.INTER_LINEAR)
        return canvas


def tile_around(tiles: list[Box], roi: Optional[Box], box: Box) -> Box:
    """The tile (x, y, w, h in frame pixels) whose centre is nearest the centre of `box`.

    `tiles` are in region-of-interest pixels, as edge.tiling.Layout holds them.
    """
    ox, oy = (roi[0], roi[1]) if roi is not None else (0, 0)
    cx, cy = box[0] + box[2] / 2 - ox, box[1] + box[3] / 2 - oy
    best = min(tiles, key=lambda t: (t[0] + t[2] / 2 - cx) ** 2 + (t[1] + t[3] / 2 - cy) ** 2)
    return best[0] + ox, best[1] + oy, best[2], best[3]
