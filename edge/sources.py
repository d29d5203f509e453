"""Frame sources: cameras, video files, image folders, network streams, GStreamer, Picamera2.

`SourceConfig` says where frames come from; `open_source` opens it (errors such as a missing
file or a camera that does not open are reported right here, as one line) and returns a
`Source` whose frames are read in a thread and kept alive by a watchdog (edge.capture).

Kinds:
  camera     index (0) or device path. Prefer /dev/v4l/by-id/usb-...-video-index0: it names the
             camera itself and survives replugs and reboots, where /dev/video0 may change.
  video      a file; every frame is inspected (`loop` starts again at the end). With `rate`, a
             replay of the line: that many frames per second, and (mode auto) a model too slow
             for it drops frames, counted, as it would behind the camera.
  images     a folder, name order; unreadable or truncated files are skipped and counted
             (`rate` paces it as for a video).
  url        rtsp:// or http(s):// stream via FFmpeg, with open/read timeouts.
  gstreamer  a pipeline string ending in appsink, e.g. a Jetson CSI camera:
             "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720 ! nvvidconv !
             video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"
             (needs an OpenCV built with GStreamer, e.g. JetPack's; pip's wheels are not).
  picamera2  Raspberry Pi camera module via Picamera2 (apt install python3-picamera2; make the
             venv with --system-site-packages).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional, Protocol, Union

import cv2
import numpy as np
from pydantic import Field, field_validator, model_validator

from edge.capture import Backend, Capture, Frame, Log, SourceUnavailable, WatchdogConfig
from edge.errors import EdgeError
from edge.imaging import list_images, read_image
from edge.messages import to_stderr
from edge.redact import redact_url
from edge.schema import StrictModel, one_line_errors, url_problem

__all__ = [
    "Frame",
    "FrameSource",
    "FrameSourceBase",
    "Source",
    "as_frame_source",
    "SourceConfig",
    "WatchdogConfig",
    "open_source",
    "source_from_options",
]

SourceKind = Literal["camera", "video", "images", "url", "gstreamer", "picamera2", "signal", "serial"]
_KINDS: tuple[str, ...] = ("camera", "video", "images", "url", "gstreamer", "picamera2", "signal", "serial")
_PACEABLE = ("video", "images", "signal")  # files: read at `rate` when given; live sources have their own clock


_OWN_CLOCK = {
    "camera": "a camera",
    "url": "a stream",
    "gstreamer": "a GStreamer pipeline",
    "picamera2": "a Raspberry Pi camera",
    "signal": "standard input (--signal -)",
    "serial": "a serial port",
}  # what the one line refusing `rate` calls a source that keeps its own time


class SourceConfig(StrictModel):
    """Where frames come from: exactly one of camera, video, images, url, gstreamer, picamera2."""

    camera: Optional[Union[int, str]] = Field(
        None,
        description="camera index (0) or device path, e.g. /dev/v4l/by-id/usb-...-video-index0 (stable across replugs)",
    )
    video: Optional[str] = Field(None, description="video file")
    images: Optional[str] = Field(None, description="folder of images, read in name order")
    url: Optional[str] = Field(None, description="network stream: rtsp://, http://, https://")
    gstreamer: Optional[str] = Field(None, description="GStreamer pipeline ending in appsink (Jetson CSI cameras)")
    picamera2: Optional[int] = Field(None, ge=0, description="Raspberry Pi camera number via Picamera2")
    # Signal models (edge/signal_source.py): windows of a signal instead of frames.
    signal: Optional[str] = Field(None, description="signal file replayed window by window, or - for standard input")
    serial: Optional[str] = Field(None, description="serial port streaming samples or windows, one per line")
    baud: int = Field(115200, gt=0, description="serial only: the port's speed")
    rate: Optional[float] = Field(
        None,
        gt=0,
        description="video, images, signal file: frames (windows) per second, as the line would deliver them "
        "(default: as fast as the model takes them)",
    )
    hop: Optional[int] = Field(None, gt=0, description="signals: samples between windows of a sample stream")
    loop: bool = Field(False, description="video only: start again at the end (soak tests, demos)")
    # latest: a one-slot mailbox, the model always sees the newest frame and older ones are dropped
    # (counted) so a slow model never builds a backlog. every: no frame is dropped (offline inspection).
    # auto: every for video files and image folders, latest for cameras and streams, and latest for a
    # video or image folder given a rate (a replay of the line drops what the model could not take).
    mode: Literal["auto", "latest", "every"] = "auto"
    width: Optional[int] = Field(None, gt=0, description="requested capture width (cameras)")
    height: Optional[int] = Field(None, gt=0, description="requested capture height (cameras)")
    fps: Optional[float] = Field(None, gt=0, description="requested capture rate (cameras)")
    fourcc: Optional[str] = Field(
        None, description="requested pixel format, e.g. MJPG (USB cameras at high resolution)"
    )
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    # A camera that boots after the Pi: by default a live source that is not there at start is
    # waited for by the watchdog (same backoff and max_reopens as a reopen); true: exit 2 at once.
    fail_fast: bool = Field(
        False, description="live sources: exit at once (status 2) when the source does not open at start"
    )

    @field_validator("fourcc")
    @classmethod
    def _fourcc_four_chars(cls, v):
        if v is not None and len(v) != 4:
            raise ValueError("fourcc must be 4 characters, e.g. MJPG or YUYV")
        return v

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, v):
        problem = url_problem(v) if v is not None else None  # a scheme, port 1-65535
        if problem is not None:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _exactly_one(self):
        chosen = [k for k in _KINDS if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "give exactly one source: camera, video, images, url, gstreamer, picamera2, signal or serial"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        if self.loop and chosen[0] != "video":
            raise ValueError("loop applies to a video file only")
        if self.rate is not None and (chosen[0] not in _PACEABLE or self.signal == "-"):
            raise ValueError(
                f"rate applies to a video file, an image folder or a signal file; {_OWN_CLOCK[chosen[0]]} "
                "delivers at its own rate"
            )
        return self

    @property
    def kind(self) -> SourceKind:
        return next(k for k in _KINDS if getattr(self, k) is not None)  # type: ignore[return-value]

    @property
    def live(self) -> bool:
        """Cameras and streams: frames keep coming and a failure means reopen, not end of input."""
        return self.kind not in ("video", "images", "signal")

    @property
    def effective_mode(self) -> Literal["latest", "every"]:
        if self.mode != "auto":
            return self.mode
        # a serial stream's windows are few and each one counts: none dropped
        if self.live and self.kind != "serial":
            return "latest"
        # a paced video or folder stands in for a camera: what the model could not take is dropped
        return "latest" if self.rate is not None and self.kind in ("video", "images") else "every"


Prepare = Callable[[np.ndarray], Any]  # frame -> model input, run by a capture thread


class FrameSource(Protocol):
    """Everything the pipeline reads from a source: frames, the counts it reports, an optional capture thread.

    Derive from FrameSourceBase to get the defaults (a plain iterator of frames: nothing dropped,
    no reopens, no capture thread) and write only `frames()`; `Source` below is the full one.
    """

    name: str  # what log lines call the source

    @property
    def skipped(self) -> int: ...  # unreadable images

    @property
    def dropped(self) -> int: ...  # frames the model never saw (latest-frame mode)

    @property
    def reopens(self) -> int: ...  # times the watchdog reopened a stalled camera or stream

    @property
    def ended(self) -> bool: ...  # no frame will come any more

    @property
    def error(self) -> Optional[str]: ...  # why it ended, when it was lost (not the end of the input)

    def poll(self, timeout: float = 0.2) -> Optional[Frame]: ...  # the next frame, or None (then see ended)

    def frames(self) -> Iterator[Frame]: ...

    def set_prepare(self, prepare: Optional[Prepare], key: Any = None) -> bool: ...

    def close(self) -> None: ...


class FrameSourceBase:
    """FrameSource defaults for a source that is a plain iterator of frames: only `frames()` to write."""

    name: str = "frames"
    skipped: int = 0
    dropped: int = 0
    reopens: int = 0
    truncated: int = 0  # times a video file ended cut short (each pass when looping)
    ended: bool = False
    error: Optional[str] = None
    _reader: Optional[Iterator[Frame]] = None

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def poll(self, timeout: float = 0.2) -> Optional[Frame]:
        """The next frame of frames() (blocking: no timeout); None and `ended` at the end."""
        if self._reader is None:
            self._reader = self.frames()
        frame = next(self._reader, None)
        if frame is None:
            self.ended = True
        return frame

    def set_prepare(self, prepare: Optional[Prepare], key: Any = None) -> bool:
        """No capture thread to prepare frames in: False, the pipeline prepares each frame itself."""
        return False

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()  # type: ignore[attr-defined]  # a generator


class _FramesOnly(FrameSourceBase):
    """A source that has only name, skipped, frames() and close() (what FrameSource once was), with the defaults."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return int(self.inner.skipped or 0)

    def frames(self) -> Iterator[Frame]:
        return self.inner.frames()

    def close(self) -> None:
        super().close()
        self.inner.close()


def as_frame_source(source) -> FrameSource:
    """`source` itself when it derives from FrameSourceBase, else wrapped so the defaults fill in the rest."""
    return source if isinstance(source, FrameSourceBase) else _FramesOnly(source)


# -- backends --------------------------------------------------------------------------------


class FolderBackend:
    """Images of a folder as a backend: read() decodes the next readable file."""

    def __init__(self, files: list[Path]):
        self.files = files
        self._next = 0
        self.skipped = 0
        self.current = ""

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            image = read_image(path)
            if image is None:
                self.skipped += 1
                continue
            self.current = path.name
            return True, image
        return False, None

    def release(self) -> None:
        pass


TS_PACKET = 188  # MPEG transport stream packet size; a .ts cut short usually ends inside one


class VideoFileBackend:
    """A video file: OpenCV's frames, and at the end a word when the file was cut short.

    Two signs, the only ones FFmpeg leaves: fewer frames than the container's index or header
    promises (an MP4 with its index at the front, an AVI), or an MPEG-TS that ends inside a packet
    (its frame count is only an estimate from what is there, so the count cannot tell).
    """

    def __init__(self, path: Path, cap: cv2.VideoCapture, on_cut_short: Callable[[str], None]):
        self.path = path
        self._cap = cap
        self._on_cut_short = on_cut_short
        self._promised = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._read = 0
        self._checked = False

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        ok, image = self._cap.read()
        if ok and image is not None:
            self._read += 1
        elif not self._checked:
            self._checked = True
            why = cut_short_reason(self.path, self._read, self._promised)
            if why is not None:
                self._on_cut_short(why)
        return ok, image

    def release(self) -> None:
        self._cap.release()


def _is_mpeg_ts(head: bytes) -> bool:
    return len(head) > TS_PACKET and head[0] == 0x47 and head[TS_PACKET] == 0x47


def cut_short_reason(path: Path, frames_read: int, frames_promised: int) -> Optional[str]:
    """Why the video looks cut short, or None when it looks whole (or nothing can tell)."""
    with open(path, "rb") as f:
        head = f.read(TS_PACKET + 1)
    if _is_mpeg_ts(head):
        size = path.stat().st_size
        if size % TS_PACKET:
            return f"MPEG-TS ends inside a packet ({size} bytes is not a whole number of {TS_PACKET}-byte packets)"
        return None
    # A frame or two of slack: some headers count a frame the decoder never returns.
    if frames_promised > 0 and frames_read < frames_promised - max(2, frames_promised // 100):
        return f"{frames_read} of the {frames_promised} frames its header promises"
    return None


class Picamera2Backend:
    """Raspberry Pi camera via Picamera2, BGR frames like OpenCV's."""

    def __init__(self, number: int, width: Optional[int], height: Optional[int]):
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError:
            raise EdgeError(
                "Picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
                "and create the venv with --system-site-packages, or use --camera with a USB camera"
            ) from None
        try:
            self._cam = Picamera2(number)
            # picamera2's "RGB888" is B, G, R in memory: what OpenCV calls BGR.
            size = (width or 1280, height or 720)
            self._cam.configure(self._cam.create_video_configuration(main={"size": size, "format": "RGB888"}))
            self._cam.start()
        except Exception as exc:  # the library raises RuntimeError/IndexError for a missing camera
            raise SourceUnavailable(
                f"cannot open Raspberry Pi camera {number} ({exc}); check `rpicam-hello --list-cameras`"
            ) from None

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        return True, self._cam.capture_array("main")

    def release(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()


def _camera_target(camera: Union[int, str]) -> Union[int, str]:
    return int(camera) if isinstance(camera, int) or str(camera).isdigit() else str(camera)


def _open_cv(config: SourceConfig) -> cv2.VideoCapture:
    kind = config.kind
    wd = config.watchdog
    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, wd.open_timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, wd.read_timeout_ms]
    if kind == "camera":
        target = _camera_target(config.camera)  # type: ignore[arg-type]
        if isinstance(target, str) and not Path(target).exists():
            raise SourceUnavailable(
                f"camera {target} not found (unplugged? list cameras with `ls /dev/v4l/by-id/` or "
                "`v4l2-ctl --list-devices`)"
            )
        cap = cv2.VideoCapture(target, cv2.CAP_ANY)
        hint = "check it with `v4l2-ctl --list-devices` and that this user is in the video group"
        what = f"camera {target}"
    elif kind == "video":
        path = Path(config.video)  # type: ignore[arg-type]
        if not path.is_file():
            raise EdgeError(f"video not found: {path}")
        cap = cv2.VideoCapture(str(path))
        hint = "check the file is a video OpenCV can decode"
        what = f"video {path}"
    elif kind == "url":
        cap = cv2.VideoCapture(config.url, cv2.CAP_FFMPEG, timeouts)  # type: ignore[arg-type]
        hint = "check the address, credentials and that the camera is reachable (ffprobe URL)"
        what = f"stream {redact_url(config.url)}"  # type: ignore[arg-type]
    elif kind == "gstreamer":
        if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
            raise EdgeError(
                "this OpenCV was built without GStreamer (pip's opencv wheels are); on a Jetson use the "
                "system OpenCV from JetPack (python3-opencv) in a venv made with --system-site-packages"
            )
        cap = cv2.VideoCapture(config.gstreamer, cv2.CAP_GSTREAMER)  # type: ignore[arg-type]
        hint = "test the pipeline with gst-launch-1.0 and end it in appsink"
        what = "GStreamer pipeline"
    else:  # pragma: no cover - guarded by the caller
        raise AssertionError(kind)
    if not cap.isOpened():
        cap.release()
        # a file that does not open will not open later; a camera or a stream may (booting, replugged)
        unavailable = EdgeError if kind == "video" else SourceUnavailable
        raise unavailable(f"cannot open {what}; {hint}")
    if kind == "camera":
        if config.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*config.fourcc))
        if config.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
        if config.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
        if config.fps:
            cap.set(cv2.CAP_PROP_FPS, config.fps)
        # Keep the driver's own queue short: the mailbox already picks the newest frame.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return cap


def source_name(config: SourceConfig) -> str:
    """What alerts and log lines call the source."""
    kind = config.kind
    if kind == "camera":
        return f"camera:{config.camera}"
    if kind == "video":
        return Path(config.video).name  # type: ignore[arg-type]
    if kind == "images":
        return str(config.images)
    if kind == "url":
        # the name lands in every alert and log line: never with credentials (userinfo, ?pwd=…)
        return redact_url(config.url)  # type: ignore[arg-type]
    if kind == "gstreamer":
        return "gstreamer"
    if kind == "signal":
        return "stdin" if config.signal == "-" else Path(config.signal).name  # type: ignore[arg-type]
    if kind == "serial":
        return f"serial:{config.serial}"
    return f"picamera2:{config.picamera2}"


# -- the source the pipeline reads ------------------------------------------------------------


class Source(FrameSourceBase):
    """An opened source: frames from a capture thread, with drop/reopen/skip counts.

    `poll(timeout)` returns the next frame or None (then look at `ended`); `frames()` iterates
    until the end of the input; `close()` stops the capture thread.
    """

    def __init__(self, config: SourceConfig, log: Optional[Log] = None, opener: Optional[Callable[[], Backend]] = None):
        self.config = config
        self.kind = config.kind
        self.name = source_name(config)
        self.mode = config.effective_mode
        self._folder: Optional[FolderBackend] = None
        self._delivered = 0
        self._log = log or to_stderr
        self.truncated = 0
        if opener is None:
            opener = self._default_opener()
        # an image folder names each file, a signal each window's line
        name_of = (lambda b: b.current) if self.kind in ("images", "signal", "serial") else None
        self.capture = Capture(
            opener,
            self.name,
            live=config.live,
            mode=self.mode,
            watchdog=config.watchdog,
            loop=config.loop,
            log=log,
            name_of=name_of,
            wait_at_start=not config.fail_fast,
            rate=config.rate,
        )

    def _default_opener(self) -> Callable[[], Backend]:
        config = self.config
        if self.kind == "images":
            files = list_images(config.images)  # type: ignore[arg-type]

            def open_folder() -> Backend:
                self._folder = FolderBackend(files)
                return self._folder

            return open_folder
        if self.kind == "picamera2":
            return lambda: Picamera2Backend(config.picamera2, config.width, config.height)  # type: ignore[arg-type]
        if self.kind == "video":
            return lambda: VideoFileBackend(Path(config.video), _open_cv(config), self._cut_short)  # type: ignore[arg-type]
        return lambda: _open_cv(config)

    def _cut_short(self, why: str) -> None:
        """A video file ended early: one line the first time (a looping one is counted every pass)."""
        self.truncated += 1
        if self.truncated == 1:
            self._log(f"{self.name}: cut short: {why}; the frames that are there were inspected")

    # counts the pipeline reports
    @property
    def skipped(self) -> int:
        return self._folder.skipped if self._folder is not None else 0

    @property
    def dropped(self) -> int:
        return self.capture.dropped

    @property
    def reopens(self) -> int:
        return self.capture.reopens

    @property
    def error(self) -> Optional[str]:
        return self.capture.error

    @property
    def ended(self) -> bool:  # type: ignore[override]
        return self.capture.ended

    def set_prepare(self, prepare: Optional[Prepare], key: Any = None) -> bool:
        """Prepare the model input in the capture thread (edge.capture.Capture.set_prepare); None: stop."""
        self.capture.set_prepare(prepare, key)
        return True

    def start(self) -> "Source":
        self.capture.start()
        return self

    def poll(self, timeout: float = 0.2) -> Optional[Frame]:
        """The next frame, or None if none arrived within `timeout`.

        Raises EdgeError when a file or folder ends without a single frame (empty or undecodable).
        """
        frame = self.capture.get(timeout)
        if frame is not None:
            self._delivered += 1
        elif self.capture.ended and self._delivered == 0 and not self.config.live and self.capture.error is None:
            if self.kind == "images":
                n = len(self._folder.files) if self._folder else 0
                raise EdgeError(f"none of the {n} images in {self.config.images} could be read")
            raise EdgeError(f"{self.name} delivered no frames (empty or undecodable video?)")
        return frame

    def frames(self) -> Iterator[Frame]:
        while True:
            frame = self.poll(0.5)
            if frame is not None:
                yield frame
            elif self.ended:
                return

    def close(self) -> None:
        self.capture.stop()


def open_source(
    camera: Optional[str] = None,
    video: Optional[str] = None,
    images: Optional[str] = None,
    *,
    config: Optional[SourceConfig] = None,
    log: Optional[Log] = None,
    opener: Optional[Callable[[], Backend]] = None,
) -> Source:
    """Open a source from one of camera/video/images, or from a full SourceConfig.

    `opener` replaces the backend (tests inject a fake camera this way). Signal sources need the
    bundle's window spec: edge.signal_source.open_run_source opens those (and these).
    """
    if config is None:
        chosen = [x for x in (camera, video, images) if x is not None]
        if len(chosen) != 1:
            raise EdgeError("give exactly one source: --camera N, --video FILE or --images DIR")
        config = SourceConfig(camera=camera, video=video, images=images)
    if config.kind in ("signal", "serial"):
        raise EdgeError(f"--{config.kind} needs a signal bundle's window spec: open it with edge.signal_source")
    return Source(config, log=log, opener=opener)


def source_from_options(base: Optional[SourceConfig] = None, **options) -> SourceConfig:
    """A SourceConfig from command-line options laid over a config file's source section.

    A source option on the command line (camera/video/images/url/gstreamer/picamera2) replaces
    the file's source kind; other options (loop, mode, ...) override single fields. None values
    are ignored. Invalid combinations raise EdgeError with one line.
    """
    given = {k: v for k, v in options.items() if v is not None}
    data = base.model_dump(exclude_unset=True) if base is not None else {}
    if any(k in given for k in _KINDS):
        for k in _KINDS:
            data.pop(k, None)
    data.update(given)
    with one_line_errors("bad source options"):
        return SourceConfig.model_validate(data)
