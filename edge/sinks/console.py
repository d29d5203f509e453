"""One JSON line per alert (and per review: `"type": "review"`; per health or drift event:
`"type": "health"|"drift"`) on stdout, for pipes and journald."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from edge.alert import Alert, ReviewUpdate
from edge.health_event import HealthEvent


class ConsoleSink:
    name = "stdout"

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream or sys.stdout

    def emit(self, alert: Alert) -> None:
        self._stream.write(json.dumps(alert.to_dict()) + "\n")
        self._stream.flush()

    def review(self, update: ReviewUpdate) -> None:
        self._stream.write(json.dumps(update.to_dict()) + "\n")
        self._stream.flush()

    def event(self, event: HealthEvent) -> None:
        self._stream.write(json.dumps(event.to_dict()) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
