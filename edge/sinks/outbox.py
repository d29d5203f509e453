"""Durable delivery for network sinks: an on-disk outbox and a background sender.

`emit()` only appends the alert to a per-sink SQLite file (WAL, synchronous=FULL) and returns, so a
broker or web server that is down never slows inspection. A sender thread delivers the entries in
order, one at a time, and deletes an entry only once the receiver acknowledged it (MQTT PUBACK at
QoS 1, HTTP 2xx). A failed delivery is retried with exponential backoff; entries left when the
process stops are sent at the next start.

Guarantees, precisely:
- at-least-once: an alert acknowledged but not yet deleted when power is cut is sent again after the
  restart, so a receiver can see an alert twice; the alert `id` is there to de-duplicate.
- bounded: the outbox keeps at most `max_entries`; when full, the OLDEST entries are dropped and a
  loud line says how many ("ALERTS DROPPED"). Size it for the longest outage you plan to ride out.
- a receiver that rejects an entry for good (the transport raises Rejected, e.g. HTTP 400/413/422)
  moves it to the `dead` table of the same file, logged, so one bad entry cannot block the queue.
- reviews (an operator's verdict on an alert, `review()`) go through the same queue, in order with
  the alerts, marked `kind = 'review'` so the transport sends them as an update, never as an alert.
- close() keeps delivering for at most `close_timeout_s`, then leaves the rest on disk.
- if the outbox file itself cannot be written (disk full), alerts wait in memory (same bound) and
  are written as soon as the disk accepts them again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

from edge.alert import Alert, ReviewUpdate
from edge.errors import EdgeError
from edge.sinks.base import one_line, problem
from edge.sinks.journal import describe_db_error, rollback

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    died REAL NOT NULL
);
"""
# Added with reviews; an outbox file from before has its rows read as alerts (what they are).
KIND_COLUMN = "kind TEXT NOT NULL DEFAULT 'alert'"


def _add_kind_column(db: sqlite3.Connection) -> None:
    for table in ("outbox", "dead"):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if "kind" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {KIND_COLUMN}")


@dataclass
class Entry:
    seq: Optional[int]  # None: held in memory because the file could not be written
    alert_id: str
    payload: str
    attempts: int = 0
    kind: str = "alert"  # or "review": which message the payload is (the MQTT topic depends on it)


class Outbox:
    """An ordered, bounded, durable queue of JSON payloads in one SQLite file."""

    def __init__(self, path: str | Path, max_entries: int = 10000, label: str = "outbox"):
        self.path = Path(path)
        self.label = label
        self.max_entries = max(int(max_entries), 1)
        self.dropped = 0
        self._lock = threading.Lock()
        self._memory: deque[Entry] = deque()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=5, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            _add_kind_column(self._db)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise EdgeError(
                f"cannot open the {label} outbox {self.path}: {exc}; check the state directory exists and is writable"
            ) from None

    # -- producer side ------------------------------------------------------------------------

    def put(self, alert_id: str, payload: str, kind: str = "alert") -> bool:
        """True when the entry is on disk; False when it waits in memory (the disk refused it).
        `alert_id` is the message's own id (a review's id for a review)."""
        with self._lock:
            self._memory.append(Entry(None, alert_id, payload, kind=kind))
            try:
                self._spill_memory()
            except sqlite3.Error as exc:
                problem(
                    f"{self.label}: cannot write outbox: {describe_db_error(exc, self.path)}; "
                    f"{len(self._memory)} alerts held in memory until it can",
                    key=f"outbox-write:{self.path}",
                )
            self._bound()
            return not self._memory

    def _spill_memory(self) -> None:
        if not self._memory:
            return
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO outbox (alert_id, payload, created, kind) VALUES (?, ?, ?, ?)",
                [(e.alert_id, e.payload, now, e.kind) for e in self._memory],
            )
            self._db.execute("COMMIT")
        except sqlite3.Error:
            rollback(self._db)
            raise
        self._memory.clear()

    def _bound(self) -> None:
        over = self._count() - self.max_entries
        if over <= 0:
            return
        from_db = 0
        try:
            db_count = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            from_db = min(over, db_count)
            if from_db:
                self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (from_db,)
                )
        except sqlite3.Error:
            from_db = 0
        for _ in range(over - from_db):
            if self._memory:
                self._memory.popleft()
        self.dropped += over
        problem(
            f"ALERTS DROPPED: {self.label} outbox {self.path} is full ({self.max_entries} entries); "
            f"dropped the {over} oldest undelivered ({self.dropped} since start). Is the receiver down? "
            "Raise outbox_max to ride out longer outages.",
            key=f"outbox-full:{self.path}",
            every_s=10,
        )

    # -- consumer side ------------------------------------------------------------------------

    def _count(self) -> int:
        try:
            n = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        except sqlite3.Error:
            n = 0
        return n + len(self._memory)

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def peek(self) -> Optional[Entry]:
        """The oldest undelivered entry, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, alert_id, payload, attempts, kind FROM outbox ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is not None:
                return Entry(*row)
            return self._memory[0] if self._memory else None

    def delete(self, entry: Entry) -> None:
        with self._lock:
            if entry.seq is None:
                if self._memory and self._memory[0] is entry:
                    self._memory.popleft()
            else:
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (entry.seq,))

    def attempted(self, entry: Entry) -> None:
        entry.attempts += 1
        if entry.seq is not None:
            with self._lock:
                try:
                    self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (entry.seq,))
                except sqlite3.Error:
                    pass  # only a counter

    def bury(self, entry: Entry, reason: str) -> None:
        """Move an entry the receiver will never accept to the `dead` table."""
        with self._lock:
            if entry.seq is None:
                self._memory.remove(entry)
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO dead (seq, alert_id, payload, created, attempts, reason, died, kind) "
                    "SELECT seq, alert_id, payload, created, attempts, ?, ?, kind FROM outbox WHERE seq = ?",
                    (reason, time.time(), entry.seq),
                )
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (entry.seq,))
                self._db.execute("COMMIT")
            except sqlite3.Error:
                rollback(self._db)
                raise

    def dead_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM dead").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            try:
                self._spill_memory()
            except sqlite3.Error as exc:
                if self._memory:
                    problem(
                        f"{self.label}: {len(self._memory)} queued alerts could not "
                        f"be saved to {self.path} ({one_line(exc)}); they are lost"
                    )
            try:
                self._db.close()
            except sqlite3.Error:
                pass


class Rejected(Exception):
    """The receiver answered that this payload will never be accepted (do not retry it)."""


class NotReady(ConnectionError):
    """The transport knows it is disconnected and reports that itself: retry without a log line."""


class Transport(Protocol):
    name: str

    def send(self, entry: Entry) -> None:
        """Deliver one payload and return once the receiver acknowledged it; raise otherwise."""

    def close(self) -> None: ...


class QueuedSink:
    """A sink whose emit() writes to an Outbox; a daemon thread delivers through a Transport."""

    durable = True  # journaled: replayed after a crash (edge.sinks.journal)

    def __init__(
        self,
        transport: Transport,
        outbox_path: str | Path,
        max_entries: int = 10000,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        close_timeout_s: float = 5.0,
    ):
        self.transport = transport
        self.name = transport.name
        self.outbox = Outbox(outbox_path, max_entries, label=transport.name)
        self.backoff_s = max(backoff_s, 0.001)
        self.backoff_max_s = max(backoff_max_s, self.backoff_s)
        self.close_timeout_s = close_timeout_s
        self.delivered = 0
        self.failures = 0
        self._wake = threading.Event()  # new work
        self._kick = threading.Event()  # retry now (receiver back, or stopping)
        self._closing = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        left = len(self.outbox)
        if left:
            problem(
                f"{self.name}: {left} undelivered alerts from before this start are in {outbox_path}; they go out first"
            )
        self._thread = threading.Thread(target=self._run, name=f"edge-{self.name}-sender", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self.outbox)

    def kick(self) -> None:
        """Cut the current backoff short (the transport calls this when its receiver is back)."""
        self._kick.set()
        self._wake.set()

    def emit(self, alert: Alert) -> bool:
        """True when the alert is in the outbox on disk (the journal may then let it go)."""
        kept = self.outbox.put(alert.id, json.dumps(alert.to_dict()))
        self._wake.set()
        return kept

    def review(self, update: ReviewUpdate) -> bool:
        """Queued like an alert (same outbox, same order); its own id is the entry's key."""
        kept = self.outbox.put(update.id, json.dumps(update.to_dict()), kind=update.kind)
        self._wake.set()
        return kept

    def event(self, event) -> bool:
        """A health or drift event (edge.health_event.HealthEvent), queued like a review, `kind` its type."""
        kept = self.outbox.put(event.id, json.dumps(event.to_dict()), kind=event.kind)
        self._wake.set()
        return kept

    def _run(self) -> None:
        delay = self.backoff_s
        failing = False
        while not self._stop.is_set():
            try:
                entry = self.outbox.peek()
            except sqlite3.Error as exc:
                problem(f"{self.name}: cannot read outbox: {one_line(exc)}", key=f"outbox-read:{self.name}")
                self._stop.wait(1.0)
                continue
            if entry is None:
                if self._closing.is_set():
                    return
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                self.transport.send(entry)
            except Rejected as exc:
                problem(
                    f"{self.name}: alert {entry.alert_id} rejected for good "
                    f"({one_line(exc)}); kept in the dead table of {self.outbox.path}"
                )
                self._safe(self.outbox.bury, entry, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - any failure means: keep it, retry later
                self.failures += 1
                failing = True
                self.outbox.attempted(entry)
                if not isinstance(exc, NotReady):
                    problem(
                        f"{self.name}: delivery failed ({one_line(exc)}); retrying with backoff, "
                        f"{self.pending} alerts queued",
                        key=f"deliver:{self.name}",
                    )
                self._kick.wait(delay)
                self._kick.clear()
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self._safe(self.outbox.delete, entry)
            self.delivered += 1
            delay = self.backoff_s
            if failing:
                failing = False
                problem(f"{self.name}: delivering again; {self.pending} alerts still queued")

    def _safe(self, fn: Callable, *args) -> None:
        try:
            fn(*args)
        except (sqlite3.Error, ValueError) as exc:
            problem(f"{self.name}: outbox update failed: {one_line(exc)}", key=f"outbox-update:{self.name}")

    def flush(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (True) or the time is up (False); delivery goes on."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while time.monotonic() < deadline:
            if self.pending == 0:
                return True
            time.sleep(0.02)
        return self.pending == 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._wake.set()
        self._thread.join(self.close_timeout_s)
        if self._thread.is_alive():
            self._stop.set()
            self._kick.set()
            self._wake.set()
            # A send in progress ends at its own timeout; don't wait for it beyond a grace period.
            self._thread.join(2.0)
        left = self.pending
        try:
            self.transport.close()
        except Exception as exc:  # noqa: BLE001
            problem(f"{self.name}: close failed: {one_line(exc)}")
        if not self._thread.is_alive():
            self.outbox.close()
        if left:
            problem(
                f"{self.name}: {left} alerts not delivered yet; "
                f"they stay in {self.outbox.path} and are sent at the next start"
            )
