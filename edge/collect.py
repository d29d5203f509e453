"""`edge collect`: good frames from a live source, written as training images in the MVTec AD layout.

    CollectConfig ──► check_out_folder (absent, empty or an MVTec AD tree; nothing is created yet)
                  ──► Shaper: ROI crop at training size and the inspection mask (edge.tiling's code)
                  ──► open_source (edge.sources: the capture thread and watchdog of `edge run`)
                  ──► first frame checked against the ROI and mask, then OUT/train/good is made
                  ──► Collector: one frame every N seconds, or one per part (edge.decide.PartTrigger),
                      each through edge.frame_quality's checks; saved as PNG until --count, the end
                      of the input, or SIGINT/SIGTERM (what was saved is kept; exit 0)

The saved image is what the model is fed in `edge run`, at the size training wants: the ROI crop
resized by edge.preprocess (INTER_AREA), in the bundle's colour or the source's. The mask is not
painted into the image (the model sees the whole ROI on the device too); it restricts which
pixels the quality checks look at, as it restricts which pixels count in a score.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
from pydantic import Field, model_validator

from edge.bundle import Bundle, load_bundle
from edge.capture import Frame
from edge.decide import PartTrigger, PartTriggerConfig
from edge.errors import EdgeError
from edge.frame_quality import REASONS, FrameChecks, QualityConfig
from edge.imaging import IMAGE_EXTENSIONS
from edge.messages import Log, to_stderr
from edge.preprocess import Color, Preprocessing
from edge.schema import StrictModel
from edge.sources import Source, SourceConfig, open_source
from edge.tiling import GeometryConfig, Tiler, load_mask

DEFAULT_EVERY_SECONDS = 1.0
MVTEC_TOP = ("train", "test", "ground_truth")


class CollectConfig(StrictModel):
    """Everything `edge collect` needs; the CLI only fills it in."""

    source: SourceConfig
    out: Path = Field(description="MVTec AD root; frames go to OUT/train/good")
    bundle: Optional[Path] = Field(None, description="take ROI, mask and training size from this bundle")
    geometry: GeometryConfig = Field(default_factory=GeometryConfig, description="roi and mask (tiling unused)")
    every_seconds: Optional[float] = Field(None, ge=0, description="one frame per this many seconds; 0: every frame")
    part_trigger: Optional[PartTriggerConfig] = Field(None, description="one frame per part instead")
    count: Optional[int] = Field(None, ge=1, description="stop after saving this many")
    size: Optional[tuple[int, int]] = Field(None, description="width, height of the saved images")
    color: Optional[Color] = Field(None, description="grey or rgb; default: the bundle's, else the source's")
    quality: QualityConfig = Field(default_factory=QualityConfig)
    progress_seconds: float = Field(2.0, gt=0, description="seconds between progress lines")

    @model_validator(mode="after")
    def _one_way_to_pick(self):
        if self.every_seconds is not None and self.part_trigger is not None:
            raise ValueError("give --every SECONDS or --part-trigger, not both")
        if self.every_seconds is not None and self.source.kind == "images":
            raise ValueError("--every does not apply to --images: every image is considered")
        if self.size is not None and min(self.size) <= 0:
            raise ValueError("size must be positive")
        return self

    @property
    def interval(self) -> float:
        """Seconds between saved frames (interval mode); image folders: every image."""
        if self.source.kind == "images":
            return 0.0
        return DEFAULT_EVERY_SECONDS if self.every_seconds is None else self.every_seconds


# -- the output folder -------------------------------------------------------------------------


def _foreign(root: Path) -> Optional[str]:
    """The first entry of `root` that does not belong in an MVTec AD tree, described; None if none."""

    def visible(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))

    for entry in visible(root):
        if entry.name not in MVTEC_TOP or not entry.is_dir():
            return f"{entry.name!r}"
    for top in MVTEC_TOP:
        folder = root / top
        for entry in visible(folder) if folder.is_dir() else []:
            if not entry.is_dir() or (top == "train" and entry.name != "good"):
                return f"{top}/{entry.name}"
    good = root / "train" / "good"
    for entry in visible(good) if good.is_dir() else []:
        if not entry.is_file() or entry.suffix.lower() not in IMAGE_EXTENSIONS:
            return f"train/good/{entry.name}"
    return None


def check_out_folder(out: Path) -> Path:
    """OUT/train/good, once OUT is known to be absent, empty or an MVTec AD tree (nothing is created)."""
    if out.exists() and not out.is_dir():
        raise EdgeError(f"--out {out} is a file; give a folder (it becomes an MVTec AD root: OUT/train/good)")
    if out.is_dir():
        foreign = _foreign(out)
        if foreign is not None:
            raise EdgeError(
                f"--out {out} already holds {foreign}, which is not part of an MVTec AD tree "
                "(train/good/*.png, test/<kind>/, ground_truth/<kind>/); give an empty or new folder"
            )
    return out / "train" / "good"


# -- frame -> training image ---------------------------------------------------------------------


class Shaper:
    """A frame -> the grey ROI crop at camera resolution (what the checks read) with the mask at its
    size, and -> the training image (ROI crop at training size and colour).

    Both come from edge.tiling.Tiler, the code `edge run` feeds its model with. Size and colour
    left open are settled by the first frame: the full ROI crop (or frame), the source's colour.
    """

    def __init__(
        self,
        geometry: GeometryConfig,
        preprocessing: Optional[Preprocessing] = None,
        size: Optional[tuple[int, int]] = None,
        color: Optional[Color] = None,
        mask_base: Optional[Path] = None,
    ):
        self.geometry = geometry.model_copy(update={"tiling": None})
        self.roi = geometry.roi or (preprocessing.roi if preprocessing is not None else None)
        self._preprocessing = preprocessing or Preprocessing(width=1, height=1)
        self._size, self._color = size, color
        # Read now: a missing or unreadable mask is said before the source is opened.
        self._mask = load_mask(geometry.mask, mask_base) if geometry.mask is not None else None
        self.native: Optional[Tiler] = None  # grey, ROI size: no resize
        self.training: Optional[Tiler] = None

    def _tiler(self, width: int, height: int, color: Color) -> Tiler:
        update = {"width": width, "height": height, "color": color, "roi": self.roi}
        return Tiler(self._preprocessing.model_copy(update=update), self.geometry, mask=self._mask)

    def settle(self, frame: np.ndarray) -> None:
        """Fix sizes and colour on the first frame and check the ROI and mask against it (EdgeError)."""
        if self.native is None:
            h, w = frame.shape[:2]
            width, height = (self.roi[2], self.roi[3]) if self.roi is not None else (w, h)
            color = self._color or ("rgb" if frame.ndim == 3 and frame.shape[2] == 3 else "grey")
            self.native = self._tiler(width, height, "grey")
            self.training = self._tiler(*(self._size or (width, height)), color)
        self.native.layout(frame.shape[:2])
        self.training.layout(frame.shape[:2])  # type: ignore[union-attr]

    def checked(self, frame: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """uint8 (H, W, 1) grey ROI crop at camera resolution and the bool mask at its size, or None."""
        self.settle(frame)
        assert self.native is not None
        return self.native.tiles(frame)[0], self.native.layout(frame.shape[:2]).mask

    def image(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, C) training image: RGB order in colour."""
        self.settle(frame)
        assert self.training is not None
        return self.training.tiles(frame)[0]

    @property
    def described(self) -> str:
        if self.training is None:
            return "not settled"
        pre = self.training.preprocessing
        roi = "roi " + ",".join(map(str, self.roi)) if self.roi is not None else "whole frame"
        masked = ", masked" if self._mask is not None else ""
        return f"{roi}{masked} → {pre.width}x{pre.height} {pre.color}"


def shaper_for(config: CollectConfig, bundle: Optional[Bundle], log: Log) -> Shaper:
    """The Shaper of a collection: the bundle's geometry and training size, flags laid over them."""
    if bundle is None:
        return Shaper(config.geometry, size=config.size, color=config.color)
    from edge.pipeline import resolve_geometry  # edge run's own merge of a bundle's geometry with flags

    override = config.geometry if config.geometry.model_fields_set else None
    geometry, mask_base = resolve_geometry(bundle, override, log)
    pre = bundle.manifest.preprocessing
    size = config.size
    if size is None and geometry.tiling is None:
        size = (pre.width, pre.height)
    elif size is None:
        log("note: the bundle tiles its frames; saving the full ROI crop (give --size to resize)")
    return Shaper(geometry, pre, size, config.color or pre.color, mask_base)


def write_png(folder: Path, frame: Frame, image: np.ndarray) -> Path:
    """image (RGB or grey, HxWxC) -> folder/<UTC time>_<frame index>.png, never over an existing file."""
    bgr = image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", bgr)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image as PNG
        raise EdgeError("could not encode a frame as PNG")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(frame.timestamp)) + f"{frame.timestamp % 1:.3f}"[1:]
    stem = f"{stamp.replace('.', '_')}_{frame.index:06d}"
    path, n = folder / f"{stem}.png", 1
    while path.exists():  # a second run in the same millisecond, or a clock set back
        path, n = folder / f"{stem}_{n}.png", n + 1
    part = folder / f".{path.name}.part"  # a cut-off write never looks like an image
    part.write_bytes(data.tobytes())
    os.replace(part, path)
    return path


# -- the clock ---------------------------------------------------------------------------------


def clock_for(source: SourceConfig) -> Callable[[Frame], float]:
    """Seconds of a frame: the wall clock for live sources, the video's own time for a file."""
    if source.kind != "video":
        return lambda frame: frame.timestamp
    probe = cv2.VideoCapture(str(source.video))
    fps = probe.get(cv2.CAP_PROP_FPS) or 0.0
    probe.release()
    fps = fps if 0 < fps < 1000 else 30.0  # some containers say nothing (0) or nonsense
    return lambda frame: frame.index / fps


# -- the collection loop -------------------------------------------------------------------------


@dataclass
class CollectSummary:
    folder: Path
    saved: int = 0
    frames: int = 0
    parts: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    dropped: int = 0
    reopens: int = 0
    seconds: float = 0.0
    stopped_by: str = ""
    error: Optional[str] = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        keys = ("saved", "frames", "parts", "dropped", "reopens", "stopped_by", "error")
        return {
            "folder": str(self.folder),
            **{k: getattr(self, k) for k in keys},
            "skipped": dict(self.skipped),
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 1),
        }

    def skipped_text(self) -> str:
        total = sum(self.skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in self.skipped.items() if v)
        return f"skipped {total}" + (f" ({reasons})" if reasons else "")


@dataclass
class _Candidate:
    """The best frame of the part in view so far (part mode)."""

    difference: float
    frame: Frame
    signature: tuple


class Progress:
    """A progress line on stderr every `every` seconds: rewritten in place on a terminal."""

    def __init__(self, count: Optional[int], every: float, log: Log):
        self.count, self.every, self.log = count, every, log
        self._tty = log is to_stderr and sys.stderr.isatty()
        self._last = time.monotonic()

    def line(self, s: CollectSummary) -> str:
        target = f"/{self.count}" if self.count else ""
        parts = f", {s.parts} parts" if s.parts else ""
        return f"collect: saved {s.saved}{target}, {s.skipped_text()}, {s.frames} frames{parts}"

    def tick(self, s: CollectSummary, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        if self._tty:
            print("\r\033[K" + self.line(s), end="", file=sys.stderr, flush=True)
        else:
            self.log(self.line(s))

    def close(self) -> None:
        if self._tty:
            print(file=sys.stderr, flush=True)


class Collector:
    """Frames in, training images out: the pick (interval or part), the checks, the writes, the counts."""

    def __init__(self, config: CollectConfig, shaper: Shaper, folder: Path, log: Log = to_stderr):
        self.config = config
        self.shaper = shaper
        self.folder = folder
        self.checks = FrameChecks(config.quality)
        self.clock = clock_for(config.source)
        self.trigger = PartTrigger(config.part_trigger, shaper.roi) if config.part_trigger is not None else None
        self.summary = CollectSummary(folder)
        self.progress = Progress(config.count, config.progress_seconds, log)
        self._due: Optional[float] = None  # clock time of the next frame to save (interval mode)
        self._in_part = False
        self._best: Optional[_Candidate] = None
        self._stop = False
        self._by_signal = False

    def stop(self) -> None:
        """Finish after the current frame (the signal handlers of edge.app.stop_on_signals call this)."""
        self._stop, self._by_signal = True, True

    @property
    def done(self) -> bool:
        return self.config.count is not None and self.summary.saved >= self.config.count

    def run(self, source: Source, first: Frame) -> CollectSummary:
        """Collect from `first` on until the count, the end of the input, a lost source or stop()."""
        s = self.summary
        start = time.perf_counter()
        try:
            frame: Optional[Frame] = first
            while not self._stop and not self.done:
                if frame is not None:
                    self.feed(frame)
                elif source.ended:
                    s.error = source.error
                    s.stopped_by = "source lost" if s.error else "end of input"
                    break
                self.progress.tick(s)
                frame = source.poll(0.2)
            self.finish()
        finally:
            s.seconds = time.perf_counter() - start
            s.dropped, s.reopens = source.dropped, source.reopens
            self.progress.close()
        if not s.stopped_by:
            s.stopped_by = "signal" if self._by_signal else "count"
        return s

    def feed(self, frame: Frame) -> None:
        """One frame from the source: examined when due (interval) or while a part is in view."""
        self.summary.frames += 1
        frozen = self.checks.frozen(frame.image)
        if self.trigger is not None:
            self._feed_part(frame, frozen)
            return
        if self._due is not None and self.clock(frame) < self._due:
            return
        sig = self._fit_signature(frame, frozen)
        if sig is not None and self._save_unless_duplicate(frame, sig):
            self._due = self.clock(frame) + self.config.interval

    def _feed_part(self, frame: Frame, frozen: bool) -> None:
        assert self.trigger is not None
        present = self.trigger.update(frame.image)
        if not present:
            self.finish()
            return
        if not self._in_part:
            self._in_part = True
            self.summary.parts += 1
        sig = self._fit_signature(frame, frozen)
        difference = self.trigger.difference
        # The part's frame most unlike the empty belt: the part wholly in view.
        if sig is not None and (self._best is None or difference > self._best.difference):
            self._best = _Candidate(difference, frame, sig)

    def finish(self) -> None:
        """A part left (or the input ended with one in view): save its best frame."""
        best, self._best, self._in_part = self._best, None, False
        if best is not None and not self.done:
            # No duplicate check between parts: a stopped belt keeps one part in view (one frame), and
            # good parts that look alike are the point of a training set, not a repeat of one image.
            self._save(best.frame, best.signature)

    def _fit_signature(self, frame: Frame, frozen: bool) -> Optional[tuple]:
        """The duplicate signature of an examined frame fit to train on, or None (counted under why not)."""
        if frozen:
            self.summary.skipped["frozen"] += 1
            return None
        grey, mask = self.shaper.checked(frame.image)
        reason = self.checks.unfit(grey, mask)
        if reason is not None:
            self.summary.skipped[reason] += 1
            return None
        return self.checks.signature(grey, mask)

    def _save_unless_duplicate(self, frame: Frame, sig: tuple) -> bool:
        if self.checks.duplicate(sig):
            self.summary.skipped["duplicate"] += 1
            return False
        self._save(frame, sig)
        return True

    def _save(self, frame: Frame, sig: tuple) -> None:
        write_png(self.folder, frame, self.shaper.image(frame.image))
        self.checks.remember_saved(sig)
        self.summary.saved += 1


# -- the whole command ---------------------------------------------------------------------------


class _StopFlag:
    """Signals that arrive before collecting starts (waiting for a camera's first frame)."""

    def __init__(self) -> None:
        self.collector: Optional[Collector] = None
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        if self.collector is not None:
            self.collector.stop()


def first_frame(source: Source, flag: _StopFlag) -> Optional[Frame]:
    """The source's first frame; None when stopped first; EdgeError when it ends without one."""
    while not flag.stopped:
        frame = source.poll(0.2)
        if frame is not None:
            return frame
        if source.ended:
            raise EdgeError(source.error or f"{source.name} delivered no frames")
    return None


def collect(config: CollectConfig, log: Log = to_stderr) -> CollectSummary:
    """Check everything, then collect until done; the summary (also said on `log`)."""
    from edge.app import stop_on_signals  # edge run's SIGINT/SIGTERM handling

    folder = check_out_folder(config.out)
    bundle = load_bundle(config.bundle) if config.bundle is not None else None
    shaper = shaper_for(config, bundle, log)
    source = open_source(config=config.source, log=log)
    flag = _StopFlag()
    restore = stop_on_signals(flag, log)  # type: ignore[arg-type]  # anything with stop()
    try:
        first = first_frame(source, flag)
        if first is None:
            summary = CollectSummary(folder, stopped_by="signal")
        else:
            shaper.settle(first.image)  # the ROI and mask against the real frame size, before any folder exists
            folder.mkdir(parents=True, exist_ok=True)
            log(f"edge collect: {source.name} ({shaper.described}) → {folder}; {_describe_pick(config)}")
            flag.collector = Collector(config, shaper, folder, log)
            summary = flag.collector.run(source, first)
    finally:
        source.close()
        restore()
    report(summary, config, log)
    return summary


def _describe_pick(config: CollectConfig) -> str:
    if config.part_trigger is not None:
        return "one frame per part (learning the empty scene first: start with nothing in view)"
    if config.interval == 0:
        return "every frame considered"
    return f"one frame every {config.interval:g} s"


def report(summary: CollectSummary, config: CollectConfig, log: Log) -> None:
    """The closing lines; a lost source is an error (what was saved is kept)."""
    s = summary
    there = len(list(s.folder.glob("*.png"))) if s.folder.is_dir() else 0
    log(
        f"done: saved {s.saved} to {s.folder} ({there} there now), {s.skipped_text()}; "
        f"{s.frames} frames in {s.seconds:.1f} s ({s.fps:.1f} fps), dropped {s.dropped}, reopens {s.reopens} "
        f"({s.stopped_by})"
    )
    log("summary " + json.dumps(s.to_dict()))
    if s.saved and s.stopped_by != "source lost":
        log(
            f"next: look through {s.folder} (move out anything defective), "
            f"then: edge train autoencoder --data {config.out}"
        )
    if s.stopped_by == "source lost":
        raise EdgeError(f"{s.error}; the {s.saved} frames saved are kept")
