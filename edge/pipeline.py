"""The device loop: source → preprocess → model → score → decide → sinks.

Each stage is its own module; this one only wires them and keeps the books (frames, alerts,
per-stage time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from edge.alert import Alert
from edge.annotate import annotate
from edge.bundle import Bundle
from edge.decide import DecisionConfig, Decider
from edge.detector import make_detector
from edge.preprocess import Preprocessor
from edge.scoring import peak_box
from edge.sinks.base import Sink
from edge.sources import FrameSource


@dataclass
class RunSummary:
    frames: int = 0
    alerts: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "alerts": self.alerts,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "stage_ms_per_frame": {
                k: round(1000 * v / max(self.frames, 1), 3) for k, v in self.stage_seconds.items()
            },
        }


class SnapshotWriter:
    """Raw frame and annotated frame for each alert, as PNG."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, alert: Alert, frame: np.ndarray, annotated: np.ndarray) -> None:
        stem = f"{alert.time[:19].replace(':', '').replace('-', '')}_{alert.frame_index:06d}_{alert.id[:8]}"
        raw_path = self.folder / f"{stem}_raw.png"
        ann_path = self.folder / f"{stem}_annotated.png"
        if cv2.imwrite(str(raw_path), frame):
            alert.snapshot = str(raw_path)
        if cv2.imwrite(str(ann_path), annotated):
            alert.annotated = str(ann_path)


class Pipeline:
    def __init__(
        self,
        bundle: Bundle,
        sinks: list[Sink],
        snapshots: Optional[SnapshotWriter] = None,
        decision: Optional[DecisionConfig] = None,
        num_threads: Optional[int] = None,
    ):
        self.bundle = bundle
        self.preprocessor = Preprocessor(bundle.manifest.preprocessing)
        self.detector = make_detector(bundle, num_threads)
        self.decider = Decider(bundle.threshold, decision)
        self.sinks = sinks
        self.snapshots = snapshots
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def run(
        self,
        source: FrameSource,
        max_frames: Optional[int] = None,
        on_frame: Optional[Callable[[int, float, bool], None]] = None,
    ) -> RunSummary:
        summary = RunSummary(stage_seconds={"read": 0.0, "preprocess": 0.0, "model+score": 0.0, "decide+sinks": 0.0})
        st = summary.stage_seconds
        threshold = self.bundle.threshold
        start = time.perf_counter()
        frames = source.frames()
        try:
            while not self._stop and (max_frames is None or summary.frames < max_frames):
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                t1 = time.perf_counter()
                batch = self.preprocessor.prepare(frame.image)[None]
                t2 = time.perf_counter()
                detection = self.detector.detect(batch)
                score = float(detection.scores[0])
                t3 = time.perf_counter()
                fired = self.decider.update(score)
                if fired:
                    self._raise(frame, detection.maps[0], score, threshold)
                    summary.alerts += 1
                t4 = time.perf_counter()
                st["read"] += t1 - t0
                st["preprocess"] += t2 - t1
                st["model+score"] += t3 - t2
                st["decide+sinks"] += t4 - t3
                summary.frames += 1
                summary.scores.append(score)
                if on_frame:
                    on_frame(frame.index, score, fired)
        finally:
            frames.close()
            summary.seconds = time.perf_counter() - start
            summary.skipped = source.skipped
        return summary

    def _raise(self, frame, error_map: np.ndarray, score: float, threshold: float) -> None:
        image = frame.image
        box = peak_box(error_map, image.shape[:2])
        alert = Alert(source=frame.source, frame_index=frame.index, score=score, threshold=threshold, box=box)
        if self.snapshots is not None:
            annotated = annotate(image, error_map, score, threshold, box)
            self.snapshots.write(alert, image, annotated)
        for sink in self.sinks:
            sink.emit(alert)
