"""Score → alert or not: threshold, N-of-M debounce, cooldown."""

from __future__ import annotations

from collections import deque

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DecisionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Alert when at least `votes` of the last `window` frames are over threshold.
    votes: int = Field(1, ge=1)
    window: int = Field(1, ge=1)
    # Frames to stay quiet after an alert, so one bad part does not raise a burst.
    cooldown: int = Field(0, ge=0)

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
