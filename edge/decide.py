"""Score → alert or not: threshold, N-of-M debounce, cooldown."""

from __future__ import annotations

from collections import deque
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PartTriggerConfig(BaseModel):
    """Presence of a part in the ROI: mean absolute difference to a learned empty background.

    Differences are in grey levels (0-255) on a small grey copy of the ROI. Hysteresis (enter >
    leave, and `leave_frames` quiet frames) keeps a part from flickering in and out.
    """

    model_config = ConfigDict(extra="forbid")
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


class DecisionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


class Decider:
    def __init__(self, threshold: float, config: DecisionConfig | None = None):
        self.threshold = float(threshold)
        self.config = config or DecisionConfig()
        self._recent: deque[bool] = deque(maxlen=self.config.window)
        self._quiet_left = 0

    def update(self, score: float) -> bool:
        """Feed one frame's score; True when this frame raises an alert."""
        over = score > self.threshold
        self._recent.append(over)
        if self._quiet_left > 0:
            self._quiet_left -= 1
            return False
        if over and sum(self._recent) >= self.config.votes:
            self._quiet_left = self.config.cooldown
            self._recent.clear()
            return True
        return False
