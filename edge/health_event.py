"""A health or drift event: a change of state of the picture (edge.health) or of the scores
(edge.drift), the third kind of message the sinks take beside alerts and reviews (edge.alert)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Optional


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def iso_time(ts: float) -> str:
    """A time.time() value as the ISO text every message carries."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class HealthEvent:
    """A change of state of the picture (`kind` health: edge.health) or of the scores (`kind` drift:
    edge.drift): what it is now (`state`: ok or the problem), what it was, since when, the figures
    that decided it and what to do. Sinks that take events (`event()`) receive it; GPIO never does."""

    kind: str  # health | drift: the `type` of its JSON
    state: str
    previous: str
    since: str
    detail: dict = field(default_factory=dict)
    advice: str = ""
    source: str = ""
    time: str = field(default_factory=_now_iso)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    inspection: Optional[str] = None  # which camera, when one process runs several (edge/inspections.py)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["inspection"] is None:
            del d["inspection"]  # a single camera's events read as before
        return {"type": d.pop("kind"), **d}

    @classmethod
    def from_dict(cls, d: dict) -> "HealthEvent":
        d = dict(d)
        return cls(kind=d.pop("type"), **d)
