"""Alerts from the loop to the sinks without the loop ever waiting for them.

    loop ──submit(): journal write, no fsync──► journal thread ──(fsync)──► worker thread
                                                 snapshot PNGs, stdout, JSONL, SQLite, outboxes

`submit()` writes the alert into the journal without waiting for the disk (a commit handed to the
operating system: from then on a kill -9 cannot lose it) and appends it to a queue: the loop pays
a fraction of a millisecond, whatever the disk or the network do. The journal thread fsyncs the
journal once for everything written since its last sync (and records in one transaction, group
commit, whatever the loop could not write itself), so it keeps up at any alert rate; only then
does the worker give those alerts to the sinks, in order. The worker also encodes the snapshots,
from a bounded number of frames held for it (`max_snapshot_frames`): when it falls behind, new
alerts go out without pictures (thinned, counted, said once a minute), and the alert records
themselves are never dropped.

Reviews (an operator's verdict on an alert, from the web page: `submit_review`) take the same path,
journaled for the durable sinks that take reviews, and go only to sinks with a `review()` method
(edge.sinks.base.takes_reviews): never to a sink as if they were a new alert.

Without a journal and threads (`threaded=False`: a Pipeline built by hand, the tests) the same work
is done on the caller's thread, in the same order.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from edge.alert import Alert, ReviewUpdate
from edge.health_event import HealthEvent
from edge.messages import Log, to_stderr
from edge.sinks.base import Sink, flush_held_problems, problem, takes_events, takes_reviews
from edge.sinks.journal import AlertJournal, Message, describe_db_error

# Renders the pictures of one alert, on the worker: (raw frame, annotated frame or None).
Render = Callable[[], tuple[np.ndarray, Optional[np.ndarray]]]


@dataclass
class WorkItem:
    alert: Message  # an Alert, or a ReviewUpdate (a verdict on an earlier alert)
    render: Optional[Render] = None
    # Its row in the journal: set by the loop's own write (submit), else by the journal thread's
    # record; None while neither has written it (or the journal refused it).
    seq: Optional[int] = None
    sinks: Optional[set[str]] = None  # a replay: only these sinks still need it


WORKER_NICE = 10  # the worker yields the CPU to the loop; what it cannot do in the time left is thinned


def _lower_priority() -> None:
    """Run this thread below the loop (Linux: nice is per thread), so PNG encoding never takes the
    model's core on a small device; elsewhere a no-op."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except (AttributeError, OSError):
        pass


def durable(sink: Sink) -> bool:
    """Sinks that keep alerts on disk (journaled, replayed after a crash); stdout is a live stream."""
    return bool(getattr(sink, "durable", False))


class AlertDispatcher:
    """The alert sinks and the snapshot store behind a queue that the loop never waits on."""

    def __init__(
        self,
        sinks: list[Sink],
        snapshots=None,
        journal: Optional[AlertJournal] = None,
        log: Optional[Log] = None,
        threaded: bool = True,
        max_snapshot_frames: int = 4,
    ):
        self.sinks = list(sinks)
        self.snapshots = snapshots
        self.journal = journal
        self.log: Log = log or to_stderr
        self.threaded = threaded
        self.max_snapshot_frames = max(int(max_snapshot_frames), 0)
        self.metrics = None  # the run's edge.metrics.Metrics (sink_errors), set by the pipeline
        self.thinned = 0  # alerts that went out without snapshots because the worker was behind
        self.journal_failures = 0
        self.handled = 0
        self._frames_held = 0
        self._lock = threading.Lock()
        self._incoming: deque[WorkItem] = deque()
        self._work: deque[WorkItem] = deque()
        self._busy = False
        self._wake_journal = threading.Event()
        self._wake_worker = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if journal is not None:
            self._queue_backlog(journal)
        if threaded:
            for name, target in (("edge-alert-journal", self._journal_loop), ("edge-alert-worker", self._work_loop)):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    # -- the loop's side ------------------------------------------------------------------------

    def submit(self, alert: Alert, render: Optional[Render] = None) -> None:
        """Hand one alert over; returns at once (threaded) or after every sink had it (not threaded)."""
        if not self.threaded:
            self._handle([WorkItem(alert, render)])
            return
        if render is not None and not self._hold_frame():
            render = None
            self._thinned()
        item = WorkItem(alert, render)
        if self.journal is not None:
            item.seq = self.journal.write_now(alert)  # None: busy or refused; the journal thread records it
        self._incoming.append(item)
        self._wake_journal.set()

    def submit_review(self, update: ReviewUpdate) -> None:
        """Hand one review over; returns at once (the web request never waits on the network)."""
        if not self.threaded:
            self._handle([WorkItem(update)])
            return
        self._incoming.append(WorkItem(update))
        self._wake_journal.set()

    def submit_event(self, event: HealthEvent) -> None:
        """Hand one health or drift event over, past the journal: it is a state, and the durable
        sinks that take it (webhook, MQTT) keep it in their outboxes; a crash before then loses it,
        and the state is judged anew at the next start."""
        if not self.threaded:
            self._handle([WorkItem(event)])
            return
        self._work.append(WorkItem(event))
        self._wake_worker.set()

    def _hold_frame(self) -> bool:
        with self._lock:
            if self._frames_held >= self.max_snapshot_frames:
                return False
            self._frames_held += 1
            return True

    def _thinned(self) -> None:
        self.thinned += 1
        problem(
            f"snapshots thinned: the alert worker is behind, so alerts go out without pictures "
            f"({self.thinned} since start); every alert record is still kept",
            key="snapshots-thinned",
            every_s=60,
        )

    # -- the journal thread ---------------------------------------------------------------------

    def _journal_loop(self) -> None:
        while True:
            self._wake_journal.wait(0.5)
            self._wake_journal.clear()
            batch = self._take(self._incoming)
            if batch:
                self._record(batch)
                self._work.extend(batch)
                self._wake_worker.set()
            elif self._stop.is_set():
                return

    def _record(self, batch: list[WorkItem]) -> None:
        if self.journal is None:
            return
        # Items reaching this thread with a seq were written by the loop: one fsync makes them all durable.
        if any(item.seq is not None for item in batch):
            try:
                self.journal.sync()
            except OSError as exc:  # written and kept by the OS: only a power cut before it lands loses them
                problem(f"alert journal not synced to disk: {exc}", key="journal-sync")
        unwritten = [item for item in batch if item.seq is None]
        if not unwritten:
            return
        try:
            seqs = self.journal.record([item.alert for item in unwritten])
        except sqlite3.Error as exc:
            # Not journaled: the sinks still get these alerts now; only a crash before that loses them.
            self.journal_failures += len(unwritten)
            problem(
                f"alert journal not written: {describe_db_error(exc, self.journal.path)}; "
                f"{self.journal_failures} alerts went to the sinks without it",
                key="journal-write",
            )
            return
        for item, seq in zip(unwritten, seqs, strict=True):
            item.seq = seq

    @staticmethod
    def _take(queue: deque) -> list[WorkItem]:
        batch = []
        while queue:
            batch.append(queue.popleft())
        return batch

    # -- the worker thread ----------------------------------------------------------------------

    def _work_loop(self) -> None:
        _lower_priority()
        while True:
            self._wake_worker.wait(1.0)
            self._wake_worker.clear()
            self._busy = True
            try:
                batch = self._take(self._work)
                if batch:
                    self._handle(batch)
            finally:
                self._busy = False
            flush_held_problems()
            if not batch and self._stop.is_set() and not self._incoming and not self._work:
                return

    def _handle(self, batch: list[WorkItem]) -> None:
        done: list[tuple[int, str]] = []
        for item in batch:
            self._snapshot(item)
            done.extend(self._to_sinks(item))
            self.handled += 1
        if self.journal is not None and done:
            try:
                self.journal.done(done)
            except sqlite3.Error as exc:  # only means a replay at the next start
                problem(f"alert journal not updated: {describe_db_error(exc, self.journal.path)}", key="journal-done")

    def _snapshot(self, item: WorkItem) -> None:
        if item.render is None:
            return
        try:
            if self.snapshots is not None:
                image, annotated = item.render()
                self.snapshots.write(item.alert, image, annotated)
        except Exception as exc:  # noqa: BLE001 - disk full, permissions: the alert still goes out
            self._count_error()
            self.log(f"snapshot for alert {item.alert.id[:8]} not written: {type(exc).__name__}: {exc}")
        finally:
            item.render = None  # the frame is let go here
            with self._lock:
                self._frames_held = max(self._frames_held - 1, 0)

    def _to_sinks(self, item: WorkItem) -> list[tuple[int, str]]:
        done = []
        for sink in self.sinks:
            if item.sinks is not None and sink.name not in item.sinks:
                continue  # a replay: this sink had it already (or is not durable: stdout)
            if isinstance(item.alert, HealthEvent):
                if takes_events(sink):
                    self._emit(sink, item.alert, sink.event)
                continue  # not journaled: nothing to mark done
            if isinstance(item.alert, ReviewUpdate):
                if not takes_reviews(sink):
                    continue  # GPIO, the events file and store: a verdict is not a new alert
                kept = self._emit(sink, item.alert, sink.review)
            elif item.sinks is not None and getattr(sink, "has_recent", lambda _id: False)(item.alert.id):
                kept = True
            else:
                kept = self._emit(sink, item.alert, sink.emit)
            if kept and item.seq is not None and durable(sink):
                done.append((item.seq, sink.name))
        return done

    def _emit(self, sink: Sink, alert: Message, send: Callable[[Message], object]) -> bool:
        """Whether the sink has the alert or review (a durable sink returns False when it could not keep it)."""
        try:
            return send(alert) is not False
        except Exception as exc:  # noqa: BLE001 - a sink must never stop the run
            self._count_error()
            review = isinstance(alert, ReviewUpdate)
            what = f"review of alert {alert.alert_id[:8]}" if review else f"alert {alert.id[:8]}"
            message = f"sink {sink.name} failed on {what}: {type(exc).__name__}: {exc}"
            if self.threaded:
                problem(message, key=f"emit:{sink.name}")
            else:
                self.log(message)
            return False

    def _count_error(self) -> None:
        if self.metrics is not None:
            self.metrics.sink_errors += 1

    def _queue_backlog(self, journal: AlertJournal) -> None:
        try:
            backlog = journal.backlog()
        except sqlite3.Error as exc:
            problem(f"cannot read the alert journal: {describe_db_error(exc, journal.path)}")
            return
        if backlog:
            problem(
                f"{len(backlog)} alerts from before this start had not reached every sink "
                f"(journal {journal.path}); they go out first"
            )
        self._work.extend(WorkItem(alert, None, seq, sinks) for seq, alert, sinks in backlog)
        if not self.threaded:
            self._handle(self._take(self._work))

    # -- end of a run ---------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self._incoming and not self._work and not self._busy

    def flush(self, timeout_s: float) -> bool:
        """Wait until every submitted alert went to the sinks (True) or the time is up (False)."""
        deadline = time.monotonic() + timeout_s
        self._wake_journal.set()
        self._wake_worker.set()
        while self.threaded and not self.idle:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish the queued work (bounded: what is left stays in the journal), then stop the threads."""
        if not self.flush(timeout_s):
            left = len(self._incoming) + len(self._work)
            problem(f"{left} alerts not yet given to every sink at stop; the journal replays them at the next start")
        self._stop.set()
        self._wake_journal.set()
        self._wake_worker.set()
        for thread in self._threads:
            thread.join(2.0)
        flush_held_problems(force=True)
        if self.journal is not None and not any(t.is_alive() for t in self._threads):
            self.journal.close()
