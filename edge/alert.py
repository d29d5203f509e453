"""What an alert is: the record every sink receives; and a review, the operator's later verdict on
one alert, which sinks that take reviews receive as an update (never as a new alert)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Optional


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Alert:
    source: str
    frame_index: int
    score: float
    threshold: float
    label: str = "anomaly"
    # x, y, w, h of the highest-error region, in frame pixels
    box: Optional[tuple[int, int, int, int]] = None
    snapshot: Optional[str] = None
    annotated: Optional[str] = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(default_factory=_now_iso)
    extra: dict = field(default_factory=dict)
    # The image problem in force when it was raised (edge.health: blur, moved, ...); None: healthy.
    health: Optional[str] = None
    # The bundle that raised it (edge.bundle.Bundle.id / .version); None: not known (an old record).
    bundle_id: Optional[str] = None
    bundle_version: Optional[int] = None
    # The inspection (camera) that raised it when one process runs several (edge/inspections.py); None: one.
    inspection: Optional[str] = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.health is None:
            del d["health"]  # a healthy alert's JSON stays as it always was
        for key in ("bundle_id", "bundle_version", "inspection"):
            if d[key] is None:
                del d[key]  # records made without a bundle read as before
        # Significant digits, not decimal places: scores of a good model can be 1e-4 and smaller.
        d["score"] = float(f"{float(self.score):.6g}")
        d["threshold"] = float(f"{float(self.threshold):.6g}")
        if self.box is not None:
            d["box"] = list(self.box)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Alert":
        d = dict(d)
        if d.get("box") is not None:
            d["box"] = tuple(d["box"])
        return cls(**d)


@dataclass
class ReviewUpdate:
    """An operator's verdict on alert `alert_id`. `id` is the review's own (one per verdict given,
    so a changed mind is a new update and a receiver can drop a repeated delivery by it)."""

    alert_id: str
    verdict: str  # false_alarm | real_defect
    defect: Optional[str] = None
    who: Optional[str] = None
    time: str = field(default_factory=_now_iso)
    copied: Optional[str] = None  # where the frame went in the review folder
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    kind = "review"  # the `type` of its JSON; alerts have no `type` (their payload stays as it was)

    def to_dict(self) -> dict:
        return {"type": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ReviewUpdate":
        return cls(**{k: v for k, v in d.items() if k != "type"})
