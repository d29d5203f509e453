"""A local SQLite event store (WAL mode), queried by `edge events`.

WAL lets `edge events` read while `edge run` writes. Each alert is one row keyed by its id, so a
replayed alert is stored once. A write error (disk full, locked too long) is logged as one line and
the run goes on.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

from edge.alert import Alert
from edge.errors import EdgeError
from edge.sinks.base import clear_problem, one_line, problem

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    time TEXT NOT NULL,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    frame_index INTEGER NOT NULL,
    score REAL NOT NULL,
    threshold REAL NOT NULL,
    label TEXT NOT NULL,
    box TEXT,
    snapshot TEXT,
    annotated TEXT,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_source_ts ON events(source, ts);
CREATE TABLE IF NOT EXISTS health_events (
    id TEXT PRIMARY KEY,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    previous TEXT NOT NULL,
    since TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""
COLUMNS = (
    "id",
    "time",
    "ts",
    "source",
    "frame_index",
    "score",
    "threshold",
    "label",
    "box",
    "snapshot",
    "annotated",
    "extra",
)
# Added after the first stores were written: ALTER TABLE adds them to an old store when a run opens
# it for writing; a reader selects them only where they exist (an old store read by `edge events`).
LATER_COLUMNS = {"bundle_id": "TEXT", "bundle_version": "INTEGER", "inspection": "TEXT"}


def _columns(db: sqlite3.Connection) -> tuple[str, ...]:
    """The events table's columns in this store: COLUMNS, then whichever of LATER_COLUMNS it has."""
    present = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    return COLUMNS + tuple(name for name in LATER_COLUMNS if name in present)


def _add_later_columns(db: sqlite3.Connection) -> None:
    for name, kind in LATER_COLUMNS.items():
        if name not in _columns(db):
            db.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")


def _epoch(iso: str) -> float:
    t = datetime.fromisoformat(iso)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


class SqliteSink:
    name = "sqlite"
    durable = True  # journaled: replayed after a crash (edge.sinks.journal)

    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.written = 0
        self.failed = 0
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=busy_timeout_ms / 1000, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash; FULL also survives a power cut.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            _add_later_columns(self._db)
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise EdgeError(f"cannot open event store {self.path}: {exc}; check the path and its permissions") from None

    def emit(self, alert: Alert) -> bool:
        """True once the row is committed (or was there already); False when the store refused it."""
        d = alert.to_dict()
        row = (
            d["id"],
            d["time"],
            _epoch(d["time"]),
            d["source"],
            int(d["frame_index"]),
            d["score"],
            d["threshold"],
            d["label"],
            json.dumps(d["box"]) if d["box"] is not None else None,
            d["snapshot"],
            d["annotated"],
            _extra_json(d),
            d.get("bundle_id"),
            d.get("bundle_version"),
            d.get("inspection"),
        )
        columns = COLUMNS + tuple(LATER_COLUMNS)
        try:
            with self._lock, self._db:
                self._db.execute(
                    f"INSERT OR IGNORE INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", row
                )
            self.written += 1
            clear_problem(f"write:{self.path}")
            return True
        except sqlite3.Error as exc:
            self.failed += 1
            problem(
                f"cannot store alert {alert.id} in {self.path}: {one_line(exc)}; continuing", key=f"write:{self.path}"
            )
            return False

    def event(self, event) -> bool:
        """A health or drift event (edge.health_event) into its own table: `edge events` reads alerts only."""
        d = event.to_dict()
        row = (d["id"], d["time"], d["type"], d["state"], d["previous"], d["since"], json.dumps(d))
        try:
            with self._lock, self._db:
                self._db.execute("INSERT OR IGNORE INTO health_events VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            return True
        except sqlite3.Error as exc:
            problem(f"cannot store {d['type']} event in {self.path}: {one_line(exc)}", key=f"write:{self.path}")
            return False

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:
                problem(f"closing {self.path}: {one_line(exc)}")


def _extra_json(d: dict) -> Optional[str]:
    # An alert raised while the picture was unhealthy keeps that in extra (no new column to migrate).
    extra = {**d["extra"], "health": d["health"]} if d.get("health") else d["extra"]
    return json.dumps(extra) if extra else None


# --- queries (edge events) -------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: Optional[datetime] = None) -> datetime:
    """An ISO 8601 time (a time without an offset is this machine's local time) or an age such as
    30m, 12h, 7d (that long before now). Returns an aware datetime."""
    m = _RELATIVE.match(text)
    if m:
        now = now or datetime.now(timezone.utc)
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise EdgeError(
            f"cannot read time {text!r}; give ISO 8601 (2025-03-01, 2025-03-01T14:00, 2025-03-01T14:00:00+01:00) "
            "or an age like 30m, 12h, 7d"
        ) from None
    if t.tzinfo is None:
        t = t.astimezone()  # naive = local wall-clock time, what an operator types
    return t


@dataclass
class EventQuery:
    since: Optional[datetime] = None
    until: Optional[datetime] = None
    source: Optional[str] = None
    min_score: Optional[float] = None
    label: Optional[str] = None
    inspection: Optional[str] = None  # one camera of a run with several (edge/inspections.py)
    limit: Optional[int] = 50

    def where(self) -> tuple[str, list]:
        clauses, params = [], []
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since.timestamp())
        if self.until is not None:
            clauses.append("ts < ?")
            params.append(self.until.timestamp())
        if self.source is not None:
            clauses.append("source = ?")
            params.append(self.source)
        if self.min_score is not None:
            clauses.append("score >= ?")
            params.append(float(self.min_score))
        if self.label is not None:
            clauses.append("label = ?")
            params.append(self.label)
        if self.inspection is not None:
            clauses.append("inspection = ?")
            params.append(self.inspection)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def open_readonly(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        raise EdgeError(f"no event store at {path}: run `edge run` first (it writes OUT/events.db) or pass --db")
    try:
        db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=5)
        db.execute("SELECT 1 FROM events LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise EdgeError(f"{path} is not an edge-inspect event store ({exc})") from None
    return db


def _row_to_dict(columns: tuple[str, ...], row: tuple) -> dict:
    """A stored event as the alert's own JSON has it (edge.alert.Alert.to_dict)."""
    d = dict(zip(columns, row, strict=True))
    d.pop("ts")
    d["box"] = json.loads(d["box"]) if d["box"] else None
    d["extra"] = json.loads(d["extra"]) if d["extra"] else {}
    if "health" in d["extra"]:  # kept in extra (see _extra_json); the alert has it at the top
        d["health"] = d["extra"].pop("health")
    for name in LATER_COLUMNS:  # left out of an alert's JSON when unset, so here too
        if d.get(name) is None:
            d.pop(name, None)
    return d


def reviews_by_alert(db: sqlite3.Connection) -> Optional[dict[str, dict]]:
    """The web page's verdicts (its `reviews` table), by alert id; None for a store without that table.

    Read whole: reviews are given by hand, so there are few, and a second query keeps the events
    query (and its unqualified WHERE) as it was."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reviews'").fetchone() is None:
        return None
    rows = db.execute("SELECT alert_id, verdict, defect, who, time FROM reviews")
    return {a: {"verdict": v, "defect": d, "who": w, "time": t} for a, v, d, w, t in rows}


def query_events(path: str | Path, q: EventQuery) -> tuple[list[dict], int]:
    """Matching events, newest first (at most q.limit), and how many match in all. In a store with
    reviews each event also has `review`: its verdict, or None (a store without them: no such key)."""
    db = open_readonly(path)
    try:
        if q.inspection is not None and "inspection" not in _columns(db):
            return [], 0  # a store written before inspections had names: none of its events has one
        where, params = q.where()
        total = db.execute(f"SELECT COUNT(*) FROM events{where}", params).fetchone()[0]
        columns = _columns(db)
        sql = f"SELECT {', '.join(columns)} FROM events{where} ORDER BY ts DESC, rowid DESC"
        if q.limit is not None:
            sql += f" LIMIT {int(q.limit)}"
        rows = [_row_to_dict(columns, r) for r in db.execute(sql, params)]
        reviews = reviews_by_alert(db)
    finally:
        db.close()
    if reviews is not None:
        for row in rows:
            row["review"] = reviews.get(row["id"])
    return rows, total
