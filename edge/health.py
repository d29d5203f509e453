"""Is the camera still giving the model the picture it was calibrated on? Checked on every frame.

Each frame is shrunk to a small grey copy (`width` px wide, INTER_AREA: block means, so sensor
noise shrinks and every check costs a fraction of a millisecond) and asked, in this order:

* covered: the copy is near uniform (grey-level spread under `covered_std`): a lens cap, a hand, a
  dead sensor or a black "no signal" picture. Judged first because every other check is
  meaningless on a blank picture.
* frozen: the copy has not changed by a single grey level for `frozen_seconds`: a stuck driver or
  stream repeats its last buffer; a live sensor never does, its noise differs from frame to frame.
* moved: the view is shifted against the reference frame stored in the bundle at calibration by
  more than `moved_fraction` of the width. The reference's centre (a 10 % margin off each side) is
  looked for in the copy halved again (cv2.pyrDown, 80 px: 0.1 ms) by normalised correlation
  (cv2.matchTemplate, TM_CCOEFF_NORMED: blind to a change of brightness or contrast); the best
  place's distance from the centre is the shift, seen up to the margin (a larger one reads as the
  margin: still "moved"). Not cv2.phaseCorrelate: on a smooth picture its whitened spectrum is
  ruled by sensor noise, and on the demo images it saw 3 % shifts in 1 frame of 8 with none there.
  A knocked camera puts the parts where the model never saw them.
* exposure: the mean grey level is more than `exposure_shift` levels from the calibration images'
  median, or more than `max_clipped` of the pixels sit at the ends of the range (lamps aged, a door
  opened, auto-exposure gone wrong).
* blur: the variance of the Laplacian is under `blur_ratio` times the calibration images' median
  (a dirty lens, focus that slipped, fog).

Without the bundle's reference (health/ in bundles from before it) the checks that need it are
off (moved, blur, the exposure mean); covered, frozen and the clipped share still run.

A problem becomes the state only after it lasted `hold_seconds` (one odd frame is not news), and
so does the way back to ok; each change of state is one `HealthEvent`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from pydantic import Field

from edge.health_event import HealthEvent, iso_time
from edge.schema import StrictModel

REFERENCE_DIR = "health"
REFERENCE_PNG = "reference.png"
REFERENCE_JSON = "reference.json"
DARK, BRIGHT = 4, 251  # grey levels at or beyond these are clipped (as edge.frame_quality)
OK = "ok"
ADVICE = {
    "covered": "check the lens and the camera's cable: the picture is blank",
    "frozen": "the camera sends the same picture over and over: restart it or check its stream",
    "moved": "the camera's view moved: put it back (compare with the reference) or recalibrate",
    "exposure": "the light changed: check the lamps and the exposure settings, or recalibrate",
    "blur": "the picture is blurred: clean the lens and check the focus",
    OK: "the picture is as calibrated again",
}


class HealthConfig(StrictModel):
    """Thresholds of the image checks (see edge/health.py for why each default)."""

    enabled: bool = Field(True, description="check the picture on every frame")
    width: int = Field(160, ge=32, le=640, description="width of the grey copy the checks read")
    hold_seconds: float = Field(3.0, ge=0, description="a problem (or ok) must last this long to change the state")
    covered_std: float = Field(3.0, ge=0, description="grey-level spread under which the picture is blank")
    frozen_seconds: float = Field(5.0, ge=0, description="identical pictures for this long: frozen")
    moved_fraction: float = Field(0.03, gt=0, description="view shift, as a share of the width, that is 'moved'")
    exposure_shift: float = Field(40.0, gt=0, description="grey levels the mean may move from calibration")
    max_clipped: float = Field(0.25, gt=0, le=1, description="share of clipped pixels a picture may have")
    blur_ratio: float = Field(0.5, gt=0, lt=1, description="blurred under this share of calibration's sharpness")


@dataclass
class HealthReference:
    """What calibration measured on its images (calibration/health_reference.py writes it)."""

    frame: Optional[np.ndarray]  # small grey reference view (float32, Hanning-ready), or None
    sharpness: Optional[float]  # median variance of the Laplacian of the small copies
    mean: Optional[float]  # median mean grey level
    width: int

    @classmethod
    def load(cls, bundle_path: Path) -> Optional["HealthReference"]:
        folder = Path(bundle_path) / REFERENCE_DIR
        try:
            stats = json.loads((folder / REFERENCE_JSON).read_text())
        except (OSError, ValueError):
            return None
        image = cv2.imread(str(folder / REFERENCE_PNG), cv2.IMREAD_GRAYSCALE)
        frame = image.astype(np.float32) if image is not None else None
        return cls(frame, stats.get("sharpness"), stats.get("mean"), int(stats.get("width", 160)))


def small_grey(image: np.ndarray, width: int) -> np.ndarray:
    """The grey copy every check reads: `width` px wide, block means (INTER_AREA)."""
    h, w = image.shape[:2]
    height = max(int(round(h * width / w)), 8)
    # Grey first: the area resize of one channel costs less than that of three plus a small convert.
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian: edge energy, which blur takes away first."""
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


class ViewShift:
    """How far the view moved against the reference, as a share of the width (see `moved` above)."""

    MARGIN = 0.1  # share of each side left off the reference: the largest shift that can be measured

    def __init__(self, reference: np.ndarray):
        half = cv2.pyrDown(reference.astype(np.float32))
        h, w = half.shape
        self.margin = max(int(round(w * self.MARGIN)), 1)
        self.width = w
        self.template = np.ascontiguousarray(half[self.margin : h - self.margin, self.margin : w - self.margin])

    def __call__(self, grey: np.ndarray) -> float:
        found = cv2.matchTemplate(cv2.pyrDown(grey.astype(np.float32)), self.template, cv2.TM_CCOEFF_NORMED)
        _, _, _, (x, y) = cv2.minMaxLoc(found)
        return math.hypot(x - self.margin, y - self.margin) / self.width


class HealthWatch:
    """Checks each frame and keeps the state; `observe()` returns an event when the state changes."""

    def __init__(self, config: HealthConfig, reference: Optional[HealthReference] = None, source: str = ""):
        self.config = config
        self.source = source
        self.state = OK
        self.since: Optional[float] = None  # when the current state began (frame time)
        self.last: dict = {}  # the last frame's measurements (web page, metrics)
        self.events = 0
        self._reference = reference if reference is not None and reference.width == config.width else None
        ok_frame = self._reference is not None and self._reference.frame is not None
        self._shift = ViewShift(self._reference.frame) if ok_frame else None
        self._previous: Optional[np.ndarray] = None
        self._unchanged_since: Optional[float] = None
        self._candidate, self._candidate_since = OK, None

    def checks_off(self) -> list[str]:
        """The checks this bundle cannot run (it has no reference from calibration)."""
        ref = self._reference
        off = []
        if ref is None or ref.frame is None:
            off.append("moved")
        if ref is None or ref.sharpness is None:
            off.append("blur")
        if ref is None or ref.mean is None:
            off.append("exposure (mean; the clipped share still runs)")
        return off

    def observe(self, image: np.ndarray, now: float, grey: Optional[np.ndarray] = None) -> Optional[HealthEvent]:
        """`grey`: small_grey(image, config.width) when it was made already (in the capture thread)."""
        if grey is None or grey.shape[1] != self.config.width:
            grey = small_grey(image, self.config.width)
        problem = self.problem(grey, now)
        return self._settle(problem, now)

    def problem(self, grey: np.ndarray, now: float) -> str:
        """The first problem of this frame, or ok; the measurements go in self.last."""
        cfg = self.config
        std = float(grey.std())
        self.last = {"std": round(std, 2)}
        if std < cfg.covered_std:
            return "covered"
        if self._frozen(grey, now):
            return "frozen"
        ref = self._reference
        if self._shift is not None and grey.shape == ref.frame.shape:
            shift = self._shift(grey)
            self.last["shift"] = round(shift, 4)
            if shift > cfg.moved_fraction:
                return "moved"
        if self._exposure_off(grey):
            return "exposure"
        if ref is not None and ref.sharpness:
            ratio = sharpness(grey) / ref.sharpness
            self.last["sharpness"] = round(ratio, 3)
            if ratio < cfg.blur_ratio:
                return "blur"
        return OK

    def _frozen(self, grey: np.ndarray, now: float) -> bool:
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape or not np.array_equal(previous, grey):
            self._unchanged_since = now
            return False
        return now - self._unchanged_since >= self.config.frozen_seconds

    def _exposure_off(self, grey: np.ndarray) -> bool:
        mean = float(grey.mean())
        clipped = float(np.count_nonzero((grey <= DARK) | (grey >= BRIGHT))) / grey.size
        self.last.update(mean=round(mean, 1), clipped=round(clipped, 3))
        ref = self._reference
        if ref is not None and ref.mean is not None and abs(mean - ref.mean) > self.config.exposure_shift:
            return True
        return clipped > self.config.max_clipped

    def _settle(self, problem: str, now: float) -> Optional[HealthEvent]:
        """The state changes once a new problem (or ok) held for hold_seconds."""
        if self.since is None:
            self.since = now
        if problem == self.state:
            self._candidate, self._candidate_since = problem, None
            return None
        if problem != self._candidate or self._candidate_since is None:
            self._candidate, self._candidate_since = problem, now
        if now - self._candidate_since < self.config.hold_seconds:
            return None
        previous, self.state, self.since = self.state, problem, self._candidate_since
        self.events += 1
        return HealthEvent(
            kind="health",
            state=problem,
            previous=previous,
            since=iso_time(self.since),
            detail=dict(self.last),
            advice=ADVICE[problem],
            source=self.source,
        )

    @property
    def unhealthy(self) -> Optional[str]:
        """The problem in force, or None while the picture is ok."""
        return None if self.state == OK else self.state
