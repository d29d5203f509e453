"""Score -> alert or not: threshold, N-of-M debounce, cooldown, and an optional part trigger.

Without a trigger every frame is judged on its own (with debounce and cooldown). With one,
frames are grouped into parts (something enters the ROI, stays, leaves) and each part raises
at most one alert, so one bad part on a conveyor is one reject, not a burst of them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

import cv2
import numpy as np
from pydantic import Field, model_validator

from edge.schema import StrictModel


def flagged(score, threshold: float):
    """The device's rule, for one score or an array of them: over means strictly above the threshold.

    A score exactly at the threshold passes. Calibration's metrics and report and `edge eval`
    import this, so every "flagged", "false alarm" and "miss" they print is what the device does.
    """
    return np.greater(score, threshold)


class LiveThreshold:
    """The threshold in force: the bundle's, or an operator's override (edge run --web, edge/web/sensitivity.py).

    The loop reads `value` on every frame; another thread may `set` it (a float assignment is atomic
    under the GIL), so a change applies from the next frame on, without a lock on the loop.
    """

    def __init__(self, value: float):
        self.value = float(value)

    def set(self, value: float) -> None:
        self.value = float(value)


def _holder(threshold: "float | LiveThreshold") -> LiveThreshold:
    return threshold if isinstance(threshold, LiveThreshold) else LiveThreshold(threshold)


class PartTriggerConfig(StrictModel):
    """Presence of a part in the ROI: mean absolute difference to a learned empty background.

    Differences are in grey levels (0-255) on a small grey copy of the ROI. Hysteresis (enter >
    leave, and `leave_frames` quiet frames) keeps a part from flickering in and out.
    """

    enter: float = Field(12.0, gt=0, description="mean abs difference to the background at which a part is present")
    leave: float = Field(6.0, ge=0, description="below this the part is leaving (hysteresis: leave < enter)")
    leave_frames: int = Field(3, ge=1, description="frames below `leave` before the part counts as gone")
    min_frames: int = Field(1, ge=1, description="shorter presences are ignored (flicker, a hand)")
    learn_frames: int = Field(10, ge=1, description="frames of the empty scene learned as background at start")
    adapt: float = Field(0.02, ge=0, le=1, description="background update rate while empty (slow light changes)")
    width: int = Field(64, ge=8, description="width of the grey copy the difference is computed on")
    # max: one alert per part, for its highest-scoring frame, when the part leaves.
    # first: one alert per part, as soon as it is over threshold (lowest latency for a reject gate).
    pick: Literal["max", "first"] = "max"

    @model_validator(mode="after")
    def _hysteresis(self):
        if self.leave >= self.enter:
            raise ValueError(f"part trigger leave ({self.leave}) must be below enter ({self.enter})")
        return self


class DecisionConfig(StrictModel):
    # Alert when at least `votes` of the last `window` frames are over threshold.
    votes: int = Field(1, ge=1)
    window: int = Field(1, ge=1)
    # Frames to stay quiet after an alert, so one bad part does not raise a burst.
    cooldown: int = Field(0, ge=0)
    # The same in seconds, for live sources whose frame rate varies (latest-frame mode drops frames).
    cooldown_seconds: float = Field(0.0, ge=0)
    part_trigger: Optional[PartTriggerConfig] = None

    @model_validator(mode="after")
    def _votes_fit_window(self):
        if self.votes > self.window:
            raise ValueError(f"votes ({self.votes}) cannot exceed window ({self.window})")
        return self


@dataclass
class Decision:
    """An alert to raise: the score and whatever the caller attached to that frame."""

    score: float
    payload: Any
    part: Optional[int] = None  # part number (part trigger only)
    part_frames: int = 0  # frames the part was in view when the alert was decided


class PartTrigger:
    """Is a part in the ROI? Mean absolute difference of a small grey copy to the empty scene.

    The first `learn_frames` frames are taken as the empty background (start the run with the
    belt empty); afterwards the background follows slow light changes while no part is present.
    """

    def __init__(self, config: PartTriggerConfig, roi: Optional[tuple[int, int, int, int]] = None):
        self.config = config
        self.roi = roi
        self._background: Optional[np.ndarray] = None
        self._learned = 0
        self._quiet = 0
        self._small: Optional[np.ndarray] = None
        self.present = False
        self.difference = 0.0

    @property
    def learning(self) -> bool:
        return self._learned < self.config.learn_frames

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        if self.roi is not None:
            x, y, w, h = self.roi
            image = image[y : y + h, x : x + w]
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        width = self.config.width
        height = max(1, int(round(image.shape[0] * width / image.shape[1])))
        if self._small is None or self._small.shape != (height, width):
            self._small = np.empty((height, width), np.float32)
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        self._small[...] = small
        return self._small

    def update(self, image: np.ndarray) -> bool:
        """Feed one frame; True while a part is in view (always False while learning)."""
        cfg = self.config
        small = self._shrink(image)
        if self._background is None or self._background.shape != small.shape:
            self._background = small.copy()
            self._learned = 1
            return False
        if self.learning:
            self._learned += 1
            cv2.accumulateWeighted(small, self._background, 1.0 / self._learned)
            return False
        self.difference = float(cv2.absdiff(small, self._background).mean())
        if not self.present:
            if self.difference > cfg.enter:
                self.present, self._quiet = True, 0
            elif cfg.adapt > 0:
                cv2.accumulateWeighted(small, self._background, cfg.adapt)
        elif self.difference < cfg.leave:
            self._quiet += 1
            if self._quiet >= cfg.leave_frames:
                self.present = False
        else:
            self._quiet = 0
        return self.present


class Decider:
    """Scores in, alerts out.

    Frame mode (no part trigger): an alert when `votes` of the last `window` frames are over
    threshold, then `cooldown` frames / `cooldown_seconds` of quiet.

    Part mode: frames are grouped into parts by the trigger (`frame` while a part is in view,
    `part_left` when it has gone). A part raises at most one alert, when `votes` of `window` of
    its frames were over threshold: its highest-scoring frame when it leaves (pick: max) or
    the frame that completed the votes (pick: first). Parts seen for fewer than `min_frames`
    frames raise nothing.

    `keep(payload)` is called on a payload the decider holds on to past the current call (the
    best frame of a part so far), so the caller can copy buffers it reuses.
    """

    def __init__(
        self,
        threshold: "float | LiveThreshold",
        config: DecisionConfig | None = None,
        keep: Optional[Callable[[Any], Any]] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.live_threshold = _holder(threshold)  # shared with the pipeline, which may move it
        self.config = config or DecisionConfig()
        self._keep = keep or (lambda p: p)
        self._clock = clock
        self._recent: deque[bool] = deque(maxlen=self.config.window)
        self._quiet_left = 0
        self._quiet_until = 0.0
        # part mode
        self.parts = 0
        self._in_part = False
        self._part_frames = 0
        self._part_bad = False
        self._part_alerted = False
        self._best: Optional[Decision] = None

    @property
    def threshold(self) -> float:
        return self.live_threshold.value

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.live_threshold.set(value)

    @property
    def part_mode(self) -> bool:
        return self.config.part_trigger is not None

    def update(self, score: float) -> bool:
        """Feed one frame's score; True when this frame raises an alert (frame mode)."""
        return self.frame(score) is not None

    def frame(self, score: float, payload: Any = None) -> Optional[Decision]:
        """One scored frame (in part mode: a frame with the part in view)."""
        over = bool(flagged(score, self.threshold))
        self._recent.append(over)
        if self.part_mode:
            return self._part_frame(score, payload, over)
        if self._quiet_left > 0:
            self._quiet_left -= 1
            return None
        if self._quiet_until and self._clock() < self._quiet_until:
            return None
        if over and sum(self._recent) >= self.config.votes:
            self._quiet_left = self.config.cooldown
            if self.config.cooldown_seconds:
                self._quiet_until = self._clock() + self.config.cooldown_seconds
            self._recent.clear()
            return Decision(score, payload)
        return None

    def _part_frame(self, score: float, payload: Any, over: bool) -> Optional[Decision]:
        trigger = self.config.part_trigger
        assert trigger is not None
        if not self._in_part:
            self._in_part, self._part_frames, self._part_bad, self._part_alerted = True, 0, False, False
            self._best = None
            self.parts += 1
            self._recent.clear()
            self._recent.append(over)
        self._part_frames += 1
        if over and sum(self._recent) >= self.config.votes:
            self._part_bad = True
        if trigger.pick == "first":
            if self._part_bad and not self._part_alerted and self._part_frames >= trigger.min_frames:
                self._part_alerted = True
                return Decision(score, payload, self.parts, self._part_frames)
            return None
        if self._best is None or score > self._best.score:
            self._best = Decision(score, self._keep(payload), self.parts)
        return None

    def part_left(self) -> Optional[Decision]:
        """The trigger says the part has gone: its alert, if it earned one (pick: max)."""
        if not self._in_part:
            return None
        self._in_part = False
        best, self._best = self._best, None
        trigger = self.config.part_trigger
        assert trigger is not None
        if trigger.pick == "max" and self._part_bad and best is not None and self._part_frames >= trigger.min_frames:
            best.part_frames = self._part_frames
            return best
        return None

    def finish(self) -> Optional[Decision]:
        """End of input: a part still in view is judged as if it had left."""
        return self.part_left() if self.part_mode else None


class SaturationWatch:
    """Says once, plainly, when nearly every frame is over the threshold for a while.

    A good line rarely has more than a few bad parts in a row; `share` of the last `window`
    inspected frames over the threshold means something else is wrong: a bundle made for
    another product or camera, a camera knocked out of line, a change of lighting. The run goes on
    (an operator may be fixing it); the line is said once per run.
    """

    def __init__(self, threshold: "float | LiveThreshold", window: int = 300, share: float = 0.95):
        self.live_threshold = _holder(threshold)
        self.window = window
        self.share = share
        self._recent: deque[bool] = deque(maxlen=window)
        self._over = 0
        self.said = False

    @property
    def threshold(self) -> float:
        return self.live_threshold.value

    def observe(self, score: float) -> Optional[str]:
        """Feed one inspected frame's score; the warning, the one time it is due."""
        if self.said:
            return None
        over = bool(flagged(score, self.threshold))
        if len(self._recent) == self.window:
            self._over -= self._recent[0]
        self._recent.append(over)
        self._over += over
        if len(self._recent) < self.window or self._over < self.share * self.window:
            return None
        self.said = True
        return (
            f"warning: {self._over} of the last {self.window} frames are over the threshold "
            f"({self.threshold:.6g}): is this the right bundle for this camera and product? has the camera "
            "moved, or the lighting changed? Inspection goes on and every alert is kept; snapshots are "
            "thinned when the disk cannot keep up"
        )
