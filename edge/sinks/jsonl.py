"""Append alerts to an events file, one JSON object per line, fsynced so a power cut keeps them.

Size-based rotation keeps a device's SD card from filling: when the file would pass `max_bytes`
it becomes events.jsonl.1 (the old .1 becomes .2, ...), and only `keep` rotated files are kept.
A full disk or a write error is logged as one line and the alert is skipped for this sink; the next
alert tries again (the file is reopened).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from edge.alert import Alert
from edge.sinks.base import clear_problem, one_line, problem


class JsonlSink:
    name = "events-file"
    durable = True  # journaled: replayed after a crash (edge.sinks.journal)
    TAIL_BYTES = 1 << 20  # how much of the file's end a replay looks at for ids it has

    def __init__(self, path: str | Path, fsync: bool = True, max_bytes: Optional[int] = None, keep: int = 5):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self.max_bytes = max_bytes if max_bytes and max_bytes > 0 else None
        self.keep = max(int(keep), 0)
        self.written = 0
        self.failed = 0
        self._file = None
        self._recent_ids: Optional[set[str]] = None
        self._open()

    def _open(self) -> None:
        self._file = open(self.path, "a", encoding="utf-8")

    def rotated(self) -> list[Path]:
        """The rotated files that exist, newest first."""
        return [p for i in range(1, self.keep + 1) if (p := self.path.with_name(f"{self.path.name}.{i}")).exists()]

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
            oldest.unlink(missing_ok=True)
            for i in range(self.keep - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            if self.path.exists():
                os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def has_recent(self, alert_id: str) -> bool:
        """Whether the alert is among the last lines of the file (a replay after a crash skips it)."""
        if self._recent_ids is None:
            self._recent_ids = self._tail_ids()
        return alert_id in self._recent_ids

    def _tail_ids(self) -> set[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(max(f.seek(0, os.SEEK_END) - self.TAIL_BYTES, 0))
                lines = f.read().splitlines()
        except OSError:
            return set()
        ids = set()
        for raw in lines:
            try:
                ids.add(json.loads(raw)["id"])
            except (ValueError, KeyError, TypeError):
                continue  # the first, partial line of the tail
        return ids

    def emit(self, alert: Alert) -> bool:
        """True once the line is written (and fsynced); False when the disk refused it."""
        line = json.dumps(alert.to_dict()) + "\n"
        start = None
        try:
            if self._file is None or self._file.closed:
                self._open()
            if self.max_bytes is not None:
                size = self._file.tell()
                if size > 0 and size + len(line.encode()) > self.max_bytes:
                    self._rotate()
            start = self._file.tell()
            self._file.write(line)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            self.written += 1
            clear_problem(f"write:{self.path}")
            return True
        except OSError as exc:  # disk full, card removed, permissions changed under us
            self.failed += 1
            problem(
                f"cannot write alert {alert.id} to {self.path}: {one_line(exc)}; continuing", key=f"write:{self.path}"
            )
            self._drop_file(start)
            return False

    def _drop_file(self, start: Optional[int]) -> None:
        # Close (a failed flush is discarded) and cut off any half-written line, so the next
        # alert starts on a line of its own.
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
        if start is not None:
            try:
                os.truncate(self.path, start)
            except OSError:
                pass

    def event(self, event) -> None:
        """A health or drift event, one line in health.jsonl beside the alerts file: readers of the
        alerts file (and the replay's id scan) keep seeing alerts only."""
        path = self.path.with_name("health.jsonl")
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event.to_dict()) + "\n")
        except OSError as exc:
            problem(f"cannot write {event.kind} event to {path}: {one_line(exc)}", key=f"write:{path}")

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            try:
                self._file.close()
            except OSError as exc:
                problem(f"closing {self.path}: {one_line(exc)}")
