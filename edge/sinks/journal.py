"""The alert journal: every alert made durable for every sink, in one transaction, before any sink
is tried (write-ahead).

Design (issue 13):
- One SQLite file in the run's state folder (`<state>/journal.db`, WAL). Recording an alert is ONE
  transaction: a row in `alerts` (its JSON) and one row in `pending` per durable sink (the events
  file, the event store, each network sink's outbox). Every commit is handed to the operating
  system (synchronous=OFF) and the WAL is then fsynced outside SQLite's write lock (`sync`), so no
  connection ever holds the lock through an fsync and the loop's write never queues behind one.
- The loop never waits for an fsync, yet a kill -9 right after a decision costs nothing: the loop
  itself writes the alert and its pending rows (`write_now`) on its own connection with
  synchronous=OFF. That commit is handed to the operating system (a write into the WAL, ~0.1 ms),
  so it survives the process being killed at any later instant. The journal thread then fsyncs
  the WAL (`sync`, one fsync for everything written since the last) before it gives those alerts
  to the sinks, so an alert any sink has seen also survives a power cut. When the loop's write
  cannot be made at once (the file busy beyond 50 ms, a full disk), the alert goes to the journal
  thread, which records it in one transaction and fsyncs (group commit), as before.
- A sink's pending row is deleted once that sink has the alert durably (a line fsynced in the
  JSONL file, a row committed in events.db, an entry committed in the sink's outbox, which then
  delivers at least once). Those deletes do not need an fsync of their own (synchronous=NORMAL on
  the worker's connection): losing one only means the alert is given to that sink again.
- At the next start the rows still pending are replayed to their sinks in order: JSONL skips the
  ids already at the end of its file, the event store ignores an id it has, network sinks send it
  (again): receivers get each alert AT LEAST ONCE and drop repeats by the alert `id` (the webhook
  also sends it as `Idempotency-Key`). An alert row goes once no sink needs it, so the file stays small.
- Reviews (an operator's verdict on an alert, from the web page) are journaled the same way, in
  the same table with `kind = 'review'`, pending only for the sinks that take reviews. A journal
  from before reviews gets the column on open (its rows are alerts), so its backlog replays as before.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Optional, Union

from edge.alert import Alert, ReviewUpdate
from edge.errors import EdgeError
from edge.sinks.base import one_line

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER NOT NULL,
    sink TEXT NOT NULL,
    PRIMARY KEY (seq, sink)
) WITHOUT ROWID;
"""
MESSAGE_TYPES = {"alert": Alert, ReviewUpdate.kind: ReviewUpdate}
Message = Union[Alert, ReviewUpdate]


def kind_of(message: Message) -> str:
    return getattr(message, "kind", "alert")


def _add_kind_column(db: sqlite3.Connection) -> None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(alerts)")}
    if "kind" not in columns:
        db.execute("ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'alert'")


def describe_db_error(exc: BaseException, path: Path) -> str:
    """The real cause of a database write error, with the file and, when the disk is full, the free space."""
    text = f"{one_line(exc)} ({path})"
    if "full" in str(exc).lower():
        try:
            free = shutil.disk_usage(path.parent).free
            text = f"disk full: {text}; {free / 1e6:.1f} MB free on that filesystem"
        except OSError:
            text = f"disk full: {text}"
    return text


def rollback(db: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors (disk full); a ROLLBACK then would raise
    # "no transaction is active" and hide the real cause.
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _connect(path: Path, synchronous: str, timeout_s: float = 30.0) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=timeout_s, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


# The loop waits at most this long for the journal file (another thread's short transaction);
# past it the alert goes to the journal thread instead.
LOOP_BUSY_S = 0.05


class AlertJournal:
    """Write-ahead record of alerts and of which durable sinks still need each one."""

    def __init__(self, path: str | Path, sinks: Iterable[str], review_sinks: Iterable[str] = ()):
        self.path = Path(path)
        self.sinks = list(sinks)
        self.review_sinks = list(review_sinks)  # the durable sinks that take reviews (webhook, MQTT)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.path, "OFF")  # record() fsyncs after each commit
            self._writer.executescript(SCHEMA)
            _add_kind_column(self._writer)
            self._marker = _connect(self.path, "NORMAL")
            self._loop = _connect(self.path, "OFF", LOOP_BUSY_S)
            # Checkpoints (which fsync) are left to the other connections: never on the loop.
            self._loop.execute("PRAGMA wal_autocheckpoint=0")
            self._wal_fd: Optional[int] = None
            self._loop_lock = threading.Lock()
        except (sqlite3.Error, OSError) as exc:
            raise EdgeError(
                f"cannot open the alert journal {self.path}: {one_line(exc)}; "
                "check the state folder exists and is writable"
            ) from None

    def record(self, alerts: list[Message]) -> list[Optional[int]]:
        """One transaction (one fsync) for all these alerts (and reviews) and their pending rows; their
        seq numbers.

        Raises sqlite3.Error (the transaction rolled back) when the disk refuses."""
        seqs = self._insert(self._writer, alerts)
        try:
            self.sync()
        except OSError as exc:  # committed, but not known to be on the disk: say so as the disk's refusal
            raise sqlite3.OperationalError(f"fsync of {self.path}-wal failed: {exc}") from None
        return seqs

    def write_now(self, alert: Alert) -> Optional[int]:
        """On the loop: the alert and its pending rows committed into the WAL without an fsync (it
        survives a kill of the process from here on; `sync` makes it survive a power cut). Its seq,
        or None when the file is busy or refuses: then `record` it from the journal thread."""
        try:
            with self._loop_lock:  # one transaction at a time on this connection
                return self._insert(self._loop, [alert])[0]
        except sqlite3.Error:
            return None

    def sync(self) -> None:
        """fsync the WAL: everything `write_now` committed so far survives a power cut. Raises OSError."""
        if self._wal_fd is None:
            self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        os.fsync(self._wal_fd)

    def _insert(self, db: sqlite3.Connection, alerts: list[Message]) -> list[Optional[int]]:
        now = time.time()
        seqs: list[Optional[int]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for alert in alerts:
                kind = kind_of(alert)
                sinks = self.sinks if kind == "alert" else self.review_sinks
                if not sinks:  # a review with no durable sink to take it: nothing to keep
                    seqs.append(None)
                    continue
                cur = db.execute(
                    "INSERT INTO alerts (alert_id, payload, created, kind) VALUES (?, ?, ?, ?)",
                    (alert.id, json.dumps(alert.to_dict()), now, kind),
                )
                seq = int(cur.lastrowid)
                db.executemany("INSERT INTO pending (seq, sink) VALUES (?, ?)", [(seq, s) for s in sinks])
                seqs.append(seq)
            db.execute("COMMIT")
        except sqlite3.Error:
            rollback(db)
            raise
        return seqs

    def done(self, pairs: list[tuple[int, str]]) -> None:
        """These (seq, sink) have the alert durably; alerts no sink needs any more go."""
        if not pairs:
            return
        db = self._marker
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("DELETE FROM pending WHERE seq = ? AND sink = ?", pairs)
                low, high = min(p[0] for p in pairs), max(p[0] for p in pairs)
                db.execute(
                    "DELETE FROM alerts WHERE seq BETWEEN ? AND ? AND seq NOT IN (SELECT seq FROM pending)",
                    (low, high),
                )
                db.execute("COMMIT")
            except sqlite3.Error:
                rollback(db)
                raise

    def backlog(self) -> list[tuple[int, Message, set[str]]]:
        """Alerts (and reviews) some sink still needs (from a run that was killed), oldest first, with
        those sinks."""
        rows = self._marker.execute(
            "SELECT a.seq, a.kind, a.payload, group_concat(p.sink, char(31)) FROM alerts a "
            "JOIN pending p ON p.seq = a.seq GROUP BY a.seq ORDER BY a.seq"
        ).fetchall()
        return [
            (seq, MESSAGE_TYPES[kind].from_dict(json.loads(payload)), set(sinks.split("\x1f")))
            for seq, kind, payload, sinks in rows
        ]

    def pending_count(self) -> int:
        return int(self._marker.execute("SELECT COUNT(DISTINCT seq) FROM pending").fetchone()[0])

    def close(self) -> None:
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        for db in (self._loop, self._writer, self._marker):
            try:
                db.close()
            except sqlite3.Error:
                pass


def open_journal(state: Path, sinks: Iterable[str], review_sinks: Iterable[str] = ()) -> Optional[AlertJournal]:
    """The journal of a run whose durable sinks are `sinks`; None when there are none."""
    names = list(sinks)
    return AlertJournal(state / "journal.db", names, review_sinks) if names else None
