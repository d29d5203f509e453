"""What a pipeline benchmark reads: a video file, or synthetic frames of a size (optionally at a camera's rate)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from edge.errors import EdgeError


def synthetic_frames(width: int, height: int, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """BGR frames of a lit, textured surface; one in `count` carries a dark blob (a defect)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        angle = rng.uniform(0, np.pi)
        base = 110 + 40 * (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
        grey = np.clip(base + rng.normal(0, 4, (height, width)), 0, 255).astype(np.uint8)
        frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        frame[..., 0] = cv2.add(frame[..., 0], 15)
        r = max(2, min(width, height) // 12)
        if i == count - 1 and min(width, height) > 2 * r:  # a signal model's 140x1 strip has no room for one
            cv2.circle(frame, (int(rng.integers(r, width - r)), int(rng.integers(r, height - r))), r, (20, 20, 20), -1)
        frames.append(frame)
    return frames


class SyntheticBackend:
    """A capture backend (read/release) that hands out prepared frames, optionally at a fixed rate."""

    def __init__(self, frames: list[np.ndarray], rate: Optional[float] = None):
        self.frames = frames
        self.period = 1.0 / rate if rate else 0.0
        self._i = 0
        self._next = time.perf_counter()

    def read(self) -> tuple[bool, np.ndarray]:
        if self.period:
            # A camera delivers on its own clock, whether or not anyone keeps up.
            self._next += self.period
            delay = self._next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                self._next = time.perf_counter()
        frame = self.frames[self._i % len(self.frames)]
        self._i += 1
        return True, frame

    def release(self) -> None:
        pass


@dataclass
class SourceSpec:
    """What a pipeline run reads: a video file, or synthetic frames of a size (at a rate)."""

    video: Optional[Path] = None
    size: Optional[tuple[int, int]] = None
    rate: Optional[float] = None

    @property
    def label(self) -> str:
        if self.video is not None:
            return f"video {self.video.name}"
        w, h = self.size  # type: ignore[misc]
        return f"synthetic {w}x{h}" + (f" at {self.rate:g} fps" if self.rate else "")

    def open(self):
        from edge.sources import SourceConfig, open_source

        if self.video is not None:
            # Looped, so --frames is honoured whatever the length of the clip.
            return open_source(config=SourceConfig(video=str(self.video), loop=True, mode="every"))
        w, h = self.size  # type: ignore[misc]
        frames = self._synthetic()
        # A paced source is a camera: latest-frame mode, frames the model cannot take are dropped.
        mode = "latest" if self.rate else "every"
        config = SourceConfig(video=f"synthetic-{w}x{h}", mode=mode)
        return open_source(config=config, opener=lambda: SyntheticBackend(frames, self.rate))

    def _synthetic(self) -> list[np.ndarray]:
        frames = getattr(self, "_frames", None)
        if frames is None:
            frames = self._frames = synthetic_frames(*self.size)  # type: ignore[misc]
        return frames

    def first_frame(self) -> np.ndarray:
        if self.video is None:
            return self._synthetic()[0]
        cap = cv2.VideoCapture(str(self.video))
        ok, frame = cap.read()
        cap.release()
        if not ok or frame is None:
            raise EdgeError(f"cannot decode {self.video}; check the file is a video OpenCV can read")
        return frame

    @property
    def frame_size(self) -> str:
        """WIDTHxHEIGHT of the frames the pipeline sees."""
        if self.size is not None:
            return f"{self.size[0]}x{self.size[1]}"
        cap = cv2.VideoCapture(str(self.video))
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
        return f"{w}x{h}"
