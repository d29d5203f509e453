"""Append alerts to an events file, one JSON object per line, fsynced so a power cut keeps them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge.alert import Alert


class JsonlSink:
    name = "events-file"

    def __init__(self, path: str | Path, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._file = open(self.path, "a", encoding="utf-8")

    def emit(self, alert: Alert) -> None:
        self._file.write(json.dumps(alert.to_dict()) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
