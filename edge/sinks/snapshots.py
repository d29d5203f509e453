"""Snapshot folder with retention: the raw frame and the annotated frame of each alert, as PNG.

The pipeline calls `write(alert, frame, annotated)` before the alert goes to the other sinks, so
`alert.snapshot` / `alert.annotated` carry the paths. Retention keeps at most `max_count` alerts'
snapshots and at most `max_mb` megabytes, deleting the oldest alert's files first; snapshots already
in the folder when the run starts count too (they are ordered by name, which starts with the UTC time).
A write that fails (disk full) is logged as one line; the alert still goes out, without paths.

Free-space floor (`min_free_mb`): snapshots never take the room the event store, the JSONL file
and the alert journal need. Before each picture is written, the oldest snapshots are deleted until
the filesystem keeps that much free; when nothing is left to delete the picture is skipped and
counted (one line a minute). PNGs are encoded in memory and written by Python, so a full disk is
one OSError with its cause, never libpng's "Write Error" on every alert.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from edge.alert import Alert
from edge.sinks.base import clear_problem, one_line, problem

_SUFFIXES = ("_raw.png", "_annotated.png")
_STEM = re.compile(r"^(\d{8}T\d{6}_\d{6}_[0-9a-f]{8})(_raw|_annotated)\.png$")


class SnapshotStore:
    name = "snapshots"

    def __init__(
        self,
        folder: str | Path,
        max_count: Optional[int] = None,
        max_mb: Optional[float] = None,
        annotated: bool = True,
        min_free_mb: float = 0.0,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_count = max_count if max_count and max_count > 0 else None
        self.max_bytes = int(max_mb * 1024 * 1024) if max_mb and max_mb > 0 else None
        self.annotated = annotated
        self.min_free_bytes = int(max(min_free_mb, 0) * 1024 * 1024)
        self.deleted = 0
        self.failed = 0
        self.skipped = 0  # pictures not written to keep the free-space floor
        self._lock = threading.Lock()
        # stem -> {path: size}, oldest first; the total is kept so retention is O(1) per alert.
        self._groups: "OrderedDict[str, dict[Path, int]]" = OrderedDict()
        self._bytes = 0
        self._scan()
        self._enforce()

    def _scan(self) -> None:
        found: dict[str, dict[Path, int]] = {}
        for path in self.folder.iterdir():
            m = _STEM.match(path.name)
            if m and path.is_file():
                found.setdefault(m.group(1), {})[path] = path.stat().st_size
        for stem in sorted(found):
            self._groups[stem] = found[stem]
            self._bytes += sum(found[stem].values())

    @property
    def count(self) -> int:
        return len(self._groups)

    @property
    def bytes(self) -> int:
        return self._bytes

    @staticmethod
    def stem(alert: Alert) -> str:
        # 20250301T140502_000123_1a2b3c4d: sorts by time, then frame
        return f"{alert.time[:19].replace(':', '').replace('-', '')}_{alert.frame_index:06d}_{alert.id[:8]}"

    def write(self, alert: Alert, frame: np.ndarray, annotated: Optional[np.ndarray] = None) -> None:
        stem = self.stem(alert)
        images = [("_raw.png", frame)]
        if self.annotated and annotated is not None:
            images.append(("_annotated.png", annotated))
        written: dict[Path, int] = {}
        for suffix, image in images:
            path = self.folder / f"{stem}{suffix}"
            if self._save(path, image):
                written[path] = path.stat().st_size
                if suffix == "_raw.png":
                    alert.snapshot = str(path)
                else:
                    alert.annotated = str(path)
        if written:
            clear_problem(f"write:{self.folder}")
            with self._lock:
                self._groups[stem] = written
                self._groups.move_to_end(stem)
                self._bytes += sum(written.values())
                self._enforce()

    def _save(self, path: Path, image: np.ndarray) -> bool:
        """Encode in memory, keep the floor, write; False (logged, counted) when it was not saved."""
        # Compression 1: about half the CPU of the default 3 for a few % larger files.
        ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            return self._failed(path, "the image could not be encoded")
        if not self._room_for(len(data)):
            self.skipped += 1
            problem(
                f"snapshots skipped: fewer than {self.min_free_bytes / 1048576:g} MB would stay free on "
                f"{self.folder}'s filesystem (kept for the event store and the journal) and no older "
                f"snapshot is left to delete; {self.skipped} skipped since start",
                key=f"floor:{self.folder}",
            )
            return False
        try:
            with open(path, "wb") as f:
                f.write(data.tobytes())
        except OSError as exc:
            return self._failed(path, one_line(exc))
        return True

    def _failed(self, path: Path, why: str) -> bool:
        self.failed += 1
        try:
            path.unlink(missing_ok=True)  # a truncated PNG is worse than none
        except OSError:
            pass
        problem(f"snapshot {path} not saved: {why}; continuing", key=f"write:{self.folder}")
        return False

    def _room_for(self, size: int) -> bool:
        """Delete the oldest snapshots until `size` more bytes leave the floor free; whether they do."""
        if not self.min_free_bytes:
            return True
        try:
            free = shutil.disk_usage(self.folder).free
        except OSError:
            return True  # cannot tell: let the write itself say what is wrong
        with self._lock:
            while free - size < self.min_free_bytes and self._groups:
                free += self._evict_oldest()
        return free - size >= self.min_free_bytes

    def _evict_oldest(self) -> int:
        _, files = self._groups.popitem(last=False)
        freed = 0
        for path, size in files.items():
            try:
                path.unlink(missing_ok=True)
                freed += size
            except OSError as exc:
                problem(f"cannot delete old snapshot {path}: {one_line(exc)}", key=f"delete:{self.folder}")
            self._bytes -= size
        self.deleted += 1
        return freed

    def _enforce(self) -> None:
        # Never delete the alert just written: it is what an operator will look at first.
        while len(self._groups) > 1 and (
            (self.max_count is not None and len(self._groups) > self.max_count)
            or (self.max_bytes is not None and self._bytes > self.max_bytes)
        ):
            self._evict_oldest()

    def close(self) -> None:
        pass
