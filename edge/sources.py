"""Frame sources: a camera, a video file, a folder of images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Protocol

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.imaging import list_images, read_image


@dataclass
class Frame:
    index: int
    image: np.ndarray  # uint8, BGR or grey, as decoded
    source: str  # what the operator would recognise: camera:0, video file name, image file name
    timestamp: float


class FrameSource(Protocol):
    name: str
    skipped: int

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class ImageFolderSource:
    """Every readable image of a folder, in name order; unreadable files are counted and skipped."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.files = list_images(self.folder)
        self.name = str(self.folder)
        self.skipped = 0

    def frames(self) -> Iterator[Frame]:
        index = 0
        for path in self.files:
            image = read_image(path)
            if image is None:
                self.skipped += 1
                continue
            yield Frame(index, image, path.name, time.time())
            index += 1
        if index == 0:
            raise EdgeError(f"none of the {len(self.files)} images in {self.folder} could be read")

    def close(self) -> None:
        pass


class CaptureSource:
    """OpenCV VideoCapture over a camera index, a device path or a video file."""

    def __init__(self, target: int | str, name: Optional[str] = None):
        self.target = target
        self.name = name or (f"camera:{target}" if isinstance(target, int) else Path(str(target)).name)
        self.skipped = 0
        if isinstance(target, str) and "://" not in target and not Path(target).exists():
            raise EdgeError(f"video not found: {target}")
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            what = f"camera {target}" if isinstance(target, int) else f"video {target}"
            hint = "check the index with `v4l2-ctl --list-devices`" if isinstance(target, int) else "check the file is a video OpenCV can decode"
            raise EdgeError(f"cannot open {what}; {hint}")

    @property
    def fps(self) -> float:
        return float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            ok, image = self._cap.read()
            if not ok or image is None:
                break
            yield Frame(index, image, self.name, time.time())
            index += 1
        if index == 0:
            raise EdgeError(f"{self.name} delivered no frames (empty or undecodable video?)")

    def close(self) -> None:
        self._cap.release()


def open_source(camera: Optional[str] = None, video: Optional[str] = None, images: Optional[str] = None) -> FrameSource:
    chosen = [x for x in (camera, video, images) if x is not None]
    if len(chosen) != 1:
        raise EdgeError("give exactly one source: --camera N, --video FILE or --images DIR")
    if images is not None:
        return ImageFolderSource(images)
    if video is not None:
        return CaptureSource(video)
    assert camera is not None
    return CaptureSource(int(camera) if str(camera).isdigit() else camera, name=f"camera:{camera}")
