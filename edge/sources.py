"""Frame sources: a camera, a video file, a folder of images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Optional, Protocol, Union

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.errors import EdgeError
from edge.imaging import list_images, read_image

SourceKind = Literal["camera", "video", "images", "url", "gstreamer", "picamera2"]
_KINDS: tuple[str, ...] = ("camera", "video", "images", "url", "gstreamer", "picamera2")


class WatchdogConfig(BaseModel):
    """How a live source is kept alive: reopen when it stops delivering, with exponential backoff."""

    model_config = ConfigDict(extra="forbid")
    # No frame for this long (read() blocked, stream stalled) -> abandon the capture and reopen it.
    stall_seconds: float = Field(5.0, gt=0, description="reopen a source that delivered nothing for this long")
    # Handed to OpenCV (CAP_PROP_OPEN_TIMEOUT_MSEC / CAP_PROP_READ_TIMEOUT_MSEC) so network streams
    # and some camera backends cannot block forever in open() or read().
    open_timeout_ms: int = Field(5000, ge=0, description="OpenCV open timeout (network streams)")
    read_timeout_ms: int = Field(5000, ge=0, description="OpenCV read timeout (network streams)")
    backoff_initial: float = Field(0.5, gt=0, description="seconds before the first reopen attempt")
    backoff_max: float = Field(30.0, gt=0, description="cap of the doubling delay between reopen attempts")
    max_reopens: Optional[int] = Field(
        None, ge=0, description="give up (end the run cleanly) after this many reopens; None: never give up"
    )


class SourceConfig(BaseModel):
    """Where frames come from: exactly one of camera, video, images, url, gstreamer, picamera2."""

    model_config = ConfigDict(extra="forbid")
    camera: Optional[Union[int, str]] = Field(
        None, description="camera index (0) or device path, e.g. /dev/v4l/by-id/usb-...-video-index0 (stable across replugs)"
    )
    video: Optional[str] = Field(None, description="video file")
    images: Optional[str] = Field(None, description="folder of images, read in name order")
    url: Optional[str] = Field(None, description="network stream: rtsp://, http://, https://")
    gstreamer: Optional[str] = Field(None, description="GStreamer pipeline ending in appsink (Jetson CSI cameras)")
    picamera2: Optional[int] = Field(None, ge=0, description="Raspberry Pi camera number via Picamera2")
    loop: bool = Field(False, description="video only: start again at the end (soak tests, demos)")
    # latest: a one-slot mailbox, the model always sees the newest frame and older ones are dropped
    # (counted) so a slow model never builds a backlog. every: no frame is dropped (offline inspection).
    # auto: every for video files and image folders, latest for cameras and streams.
    mode: Literal["auto", "latest", "every"] = "auto"
    width: Optional[int] = Field(None, gt=0, description="requested capture width (cameras)")
    height: Optional[int] = Field(None, gt=0, description="requested capture height (cameras)")
    fps: Optional[float] = Field(None, gt=0, description="requested capture rate (cameras)")
    fourcc: Optional[str] = Field(None, description="requested pixel format, e.g. MJPG (USB cameras at high resolution)")
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)

    @field_validator("fourcc")
    @classmethod
    def _fourcc_four_chars(cls, v):
        if v is not None and len(v) != 4:
            raise ValueError("fourcc must be 4 characters, e.g. MJPG or YUYV")
        return v

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, v):
        if v is not None and "://" not in v:
            raise ValueError("url must start with a scheme such as rtsp:// or http://")
        return v

    @model_validator(mode="after")
    def _exactly_one(self):
        chosen = [k for k in _KINDS if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "give exactly one source: camera, video, images, url, gstreamer or picamera2"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        if self.loop and chosen[0] != "video":
            raise ValueError("loop applies to a video file only")
        return self

    @property
    def kind(self) -> SourceKind:
        return next(k for k in _KINDS if getattr(self, k) is not None)  # type: ignore[return-value]

    @property
    def live(self) -> bool:
        """Cameras and streams: frames keep coming and a failure means reopen, not end of input."""
        return self.kind not in ("video", "images")

    @property
    def effective_mode(self) -> Literal["latest", "every"]:
        if self.mode != "auto":
            return self.mode
        return "latest" if self.live else "every"


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
