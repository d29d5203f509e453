"""Alerts for the page, and the operator's verdict on each one.

The verdict is stored with the alert in the run's SQLite event store, in a `reviews` table beside
`events` (created when first needed; `events` is untouched, so `edge events` reads stores with and
without it). The alert's raw frame is copied into the review folder in the MVTec AD layout, for the
next `edge train` and `edge calibrate`:

    false alarm              -> REVIEW/train/good/<snapshot name>.png
    real defect [name]       -> REVIEW/test/<name, default: the alert's label>/<snapshot name>.png

Each verdict is also one JSON line in OUT/reviews.jsonl, and is handed to the alert dispatcher as a
review update (edge.alert.ReviewUpdate): journaled, then sent by the sinks that take reviews
(stdout, webhook, MQTT on `<prefix>/reviews`), never as a new alert (GPIO does not pulse). The
request returns once it is queued; the network is never waited on here.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from edge.alert import ReviewUpdate
from edge.sinks.sqlite_store import COLUMNS

REVIEWS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    alert_id TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    defect TEXT,
    who TEXT,
    time TEXT NOT NULL,
    ts REAL NOT NULL,
    copied TEXT
);
"""
VERDICTS = ("false_alarm", "real_defect")
_DEFECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ALERT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class AlertNotFound(LookupError):
    pass


class StoreOff(RuntimeError):
    pass


def defect_folder(defect: Optional[str], label: str) -> str:
    """The test/<name> folder of a real defect: its given name, else the alert's label made a folder name."""
    name = (defect or "").strip() or re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_") or "defect"
    if not _DEFECT.match(name) or name == "good":
        raise ValueError(f"defect name {name!r}: use letters, digits, _ and - (not 'good'), e.g. crack")
    return name


def _row(row: tuple) -> dict:
    names = (*COLUMNS, "verdict", "defect", "reviewed_by", "reviewed_at", "copied")
    d = dict(zip(names, row, strict=True))
    d.pop("ts")
    d["box"] = json.loads(d["box"]) if d["box"] else None
    d["extra"] = json.loads(d["extra"]) if d["extra"] else {}
    return d


class ReviewStore:
    def __init__(
        self,
        db_path: Optional[Path],
        review_dir: Path,
        log_path: Path,
        send: Optional[Callable[[ReviewUpdate], None]] = None,
    ):
        self.db_path = db_path
        self.review_dir = review_dir
        self.log_path = log_path
        self.send = send  # queues the update for the sinks (AlertDispatcher.submit_review); None: not sent
        self._lock = threading.Lock()  # one verdict at a time: the copy and the row go together
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if self.db_path is None:
            raise StoreOff("the event store is off (sinks.sqlite: false): there are no alerts to page or review")
        db = sqlite3.connect(str(self.db_path), timeout=5)
        if not self._ready:
            db.executescript(REVIEWS_SCHEMA)
            db.commit()
            self._ready = True
        return db

    def _select(self, where: str = "") -> str:
        cols = ", ".join(f"e.{c}" for c in COLUMNS)
        return (
            f"SELECT {cols}, r.verdict, r.defect, r.who, r.time, r.copied FROM events e "
            f"LEFT JOIN reviews r ON r.alert_id = e.id {where}"
        )

    def alerts(self, limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
        """A page of alerts, newest first, with their verdicts; and how many there are."""
        db = self._connect()
        try:
            total = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            sql = self._select("ORDER BY e.ts DESC, e.rowid DESC LIMIT ? OFFSET ?")
            rows = [_row(r) for r in db.execute(sql, (int(limit), int(offset)))]
        finally:
            db.close()
        return rows, total

    def alert(self, alert_id: str) -> dict:
        if not ALERT_ID.match(alert_id):
            raise AlertNotFound(alert_id)
        db = self._connect()
        try:
            row = db.execute(self._select("WHERE e.id = ?"), (alert_id,)).fetchone()
        finally:
            db.close()
        if row is None:
            raise AlertNotFound(alert_id)
        return _row(row)

    def review(self, alert_id: str, verdict: str, defect: Optional[str], who: str) -> dict:
        """Store the verdict, copy the frame into the review folder, log it; the stored record."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r}: give one of {', '.join(VERDICTS)}")
        with self._lock:
            alert = self.alert(alert_id)
            folder = (
                Path("train", "good")
                if verdict == "false_alarm"
                else Path("test", defect_folder(defect, alert["label"]))
            )
            copied = self._copy_frame(alert, folder)
            now = datetime.now(timezone.utc)
            record = {
                "alert_id": alert_id,
                "verdict": verdict,
                "defect": str(folder.name) if verdict == "real_defect" else None,
                "who": who,
                "time": now.isoformat(timespec="milliseconds"),
                "copied": str(copied) if copied else None,
            }
            self._store(record, now.timestamp())
            update = ReviewUpdate(**record)
            self._log(update)
            if self.send is not None:
                self.send(update)
        return record

    def _copy_frame(self, alert: dict, folder: Path) -> Optional[Path]:
        """The raw snapshot into REVIEW/folder (a verdict changed: its earlier copy goes); None if it is gone."""
        previous = alert.get("copied")
        raw = Path(alert["snapshot"]) if alert.get("snapshot") else None
        target = None
        if raw is not None and raw.is_file():
            target = self.review_dir / folder / (raw.name.replace("_raw.png", ".png"))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(raw, target)
        if previous and Path(previous) != target:
            Path(previous).unlink(missing_ok=True)
        return target

    def _store(self, record: dict, ts: float) -> None:
        db = self._connect()
        try:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO reviews (alert_id, verdict, defect, who, time, ts, copied) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record["alert_id"],
                        record["verdict"],
                        record["defect"],
                        record["who"],
                        record["time"],
                        ts,
                        record["copied"],
                    ),
                )
        finally:
            db.close()

    def _log(self, update: ReviewUpdate) -> None:
        # The same JSON the sinks send, so a receiver and a reader of this file see one format.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as f:
            f.write(json.dumps(update.to_dict()) + "\n")
