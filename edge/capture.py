"""Threaded capture with a watchdog.

A capture thread reads frames from a backend (an OpenCV VideoCapture, an image folder, a
Picamera2, or a fake one in tests) and hands them to the inspection loop through a mailbox:

* latest (cameras, streams): a one-slot mailbox. A new frame replaces an unconsumed one, which
  is counted as dropped, so a model slower than the camera never builds a backlog and every
  decision is made on a fresh frame.
* every (video files, image folders): a small bounded queue; the reader waits for the model,
  no frame is dropped (offline inspection).

A file given a `rate` (edge.pace) is read at that many frames per second, as the camera on the line
would deliver it; in latest mode a model too slow for that rate then drops frames as it would there.

For live sources a supervisor thread watches the reader. When reads fail (camera unplugged,
stream ended) or a read() blocks longer than `stall_seconds` (a stalled RTSP stream, a wedged
driver), the reader is abandoned, never joined (a blocked read() cannot be interrupted from
Python), and a new backend is opened with exponential backoff. Frames an abandoned reader
returns late are thrown away. Reopens are counted; the process never exits because a camera
went away. A live source that is not there at start (a camera that boots after the Pi) is waited
for the same way, unless the run asked to fail fast.

stop() joins every thread that may be inside a driver (readers, abandoned ones too, and openers),
for at most the read/open timeout handed to OpenCV plus a second: a thread still inside FFmpeg
when the interpreter exits is killed there, and the process aborts (SIGABRT, "FATAL: exception
not rethrown") after an otherwise clean run.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, Protocol

import numpy as np
from pydantic import Field

from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.pace import Paced
from edge.schema import StrictModel


class SourceUnavailable(EdgeError):
    """The source did not open but may later (camera unplugged or booting, stream down): worth waiting for."""


class WatchdogConfig(StrictModel):
    """How a live source is kept alive: reopen when it stops delivering, with exponential backoff."""

    # No frame for this long (read() blocked, stream stalled) -> abandon the capture and reopen it.
    stall_seconds: float = Field(5.0, gt=0, description="reopen a source whose read() has blocked this long")
    # Handed to OpenCV (CAP_PROP_OPEN_TIMEOUT_MSEC / CAP_PROP_READ_TIMEOUT_MSEC) so network streams
    # cannot block forever in open() or read(); the stall check covers backends that ignore them.
    open_timeout_ms: int = Field(5000, ge=0, description="OpenCV open timeout (network streams)")
    read_timeout_ms: int = Field(5000, ge=0, description="OpenCV read timeout (network streams)")
    backoff_initial: float = Field(0.5, gt=0, description="seconds before the first reopen attempt")
    backoff_max: float = Field(30.0, gt=0, description="cap of the doubling delay between reopen attempts")
    max_reopens: Optional[int] = Field(
        None,
        ge=1,
        description="end the run cleanly after this many reopen attempts in a row without a frame; None: never give up",
    )


@dataclass
class Frame:
    index: int
    image: np.ndarray  # uint8, BGR or grey, as decoded
    source: str  # what the operator would recognise: camera:0, video file name, image file name
    timestamp: float  # wall clock (time.time()) when the frame was read
    # Model input prepared in the capture thread (see Capture.set_prepare), tagged with the key of
    # whoever asked for it so a consumer never takes an input made for another geometry.
    prepared: Any = None
    prepared_by: Any = None
    prepare_seconds: float = 0.0


class Backend(Protocol):
    """What the capture thread reads from; cv2.VideoCapture already is one."""

    def read(self) -> tuple[bool, Optional[np.ndarray]]: ...

    def release(self) -> None: ...


Opener = Callable[[], Backend]


class LatestMailbox:
    """One slot: put() replaces an unread frame (counted in `dropped`); get() takes the newest."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[Frame] = None
        self.dropped = 0

    def put(self, item: Frame, cancelled: Callable[[], bool]) -> bool:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()
        return True

    def get(self, timeout: float) -> Optional[Frame]:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def empty(self) -> bool:
        return self._item is None

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class EveryMailbox:
    """Bounded FIFO: put() waits for the consumer, so nothing is ever dropped."""

    dropped = 0

    def __init__(self, size: int = 4) -> None:
        self._q: queue.Queue[Frame] = queue.Queue(maxsize=size)

    def put(self, item: Frame, cancelled: Callable[[], bool]) -> bool:
        while not cancelled():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float) -> Optional[Frame]:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def empty(self) -> bool:
        return self._q.empty()

    def wake(self) -> None:
        pass


class _Opening:
    """An opener run in its own thread, so a wedged open() cannot hold up the watchdog or stop().

    A backend that opens after its caller gave up (timeout, stop) is released by that thread itself.
    """

    def __init__(self, opener: Opener, name: str):
        self._box: dict = {}
        self._done = threading.Event()
        self._abandoned = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(opener,), name=f"edge-open {name}", daemon=True)
        self.thread.start()

    def _run(self, opener: Opener) -> None:
        try:
            self._box["value"] = opener()
        except BaseException as exc:  # reported to the caller by result()
            self._box["error"] = exc
        self._done.set()
        if self._abandoned.is_set() and "value" in self._box:
            _release_quietly(self._box["value"])

    def result(self, timeout: float, stop: threading.Event) -> Optional[Backend]:
        """The backend; None when stopped first; raises what the opener raised, or TimeoutError."""
        deadline = time.monotonic() + timeout
        while not self._done.wait(0.05):
            if stop.is_set() or time.monotonic() > deadline:
                self._abandoned.set()
                if self._done.is_set() and "value" in self._box:  # it finished just now
                    _release_quietly(self._box["value"])
                if stop.is_set():
                    return None
                raise TimeoutError(f"open did not return within {timeout:.0f} s")
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]


def _release_quietly(backend: Backend) -> None:
    try:
        backend.release()
    except Exception:
        pass


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, EdgeError) else f"{type(exc).__name__}: {exc}"


class Capture:
    """Frames from a backend, read in a thread, handed over through a mailbox, kept alive.

    `opener()` opens the backend (raising EdgeError or returning one); it is called once here,
    synchronously, so a wrong camera index or a missing file is reported at start, and again by
    the watchdog to reopen a live source. A live source whose first open raises SourceUnavailable
    is waited for by the watchdog when `wait_at_start` (else the error is raised here).
    `name_of(backend)` names the frame just read (an image folder names each file); by default
    every frame is called `name`. `rate` (files only): read that many frames per second, the
    schedule kept across a loop's restart.
    """

    def __init__(
        self,
        opener: Opener,
        name: str,
        *,
        live: bool,
        mode: Literal["latest", "every"] = "latest",
        watchdog: Optional[WatchdogConfig] = None,
        loop: bool = False,
        log: Optional[Log] = None,
        name_of: Optional[Callable[[Backend], str]] = None,
        queue_size: int = 4,
        wait_at_start: bool = False,
        rate: Optional[float] = None,
    ):
        self.name = name
        self.live = live
        self.mode = mode
        self.loop = loop
        self.watchdog = watchdog or WatchdogConfig()
        self._opener = opener
        self._log = log or _stderr
        self._name_of = name_of
        self._pace = Paced(rate)  # one schedule for the whole run: a looping video keeps its rate
        self._mailbox = LatestMailbox() if mode == "latest" else EveryMailbox(queue_size)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._gen = 0  # reader generation: a reader whose generation is stale is abandoned
        # (generation, monotonic time its read() began) / (generation, why it gave up): tagged with
        # the generation so a late, abandoned reader cannot clear or fake its successor's state.
        self._read_started: tuple[int, float] | None = None
        self._reader_failed: tuple[int, str] | None = None
        self._eos = False
        self.error: Optional[str] = None  # why the source ended, when it was not simply its end
        self.frames_read = 0
        self.reopens = 0  # successful reopens
        self.reopen_failures = 0  # attempts that did not open
        self.loops = 0  # times a looping video started again
        self.left_behind = 0  # threads still inside a driver when stop() gave up waiting for them
        self._frames_since_open = 0
        self._supervisor: Optional[threading.Thread] = None
        self._workers: list[threading.Thread] = []  # readers and openers: the threads that enter drivers
        self._started = False
        self._prepare: Optional[tuple[Callable[[np.ndarray], Any], Any]] = None
        self._not_there_at_start: Optional[str] = None  # why the first open failed, while waiting for it
        self._backend: Optional[Backend] = self._open_at_start(opener, wait_at_start and live)

    def _open_at_start(self, opener: Opener, wait: bool) -> Optional[Backend]:
        try:
            return opener()
        except SourceUnavailable as exc:
            if not wait:
                raise
            self._not_there_at_start = str(exc)
            self._log(f"{self.name}: not there at start ({exc}); waiting for it (source.fail_fast: true exits instead)")
            return None
        except EdgeError:
            raise
        except Exception as exc:  # cv2.error and the like: still one line for the operator
            raise EdgeError(f"cannot open {self.name} ({type(exc).__name__}: {exc})") from None

    # -- consumer side -------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return self._mailbox.dropped

    @property
    def ended(self) -> bool:
        """No frame will come any more (end of file/folder, gave up, or stopped) and none is waiting."""
        return (self._eos or self._stop.is_set()) and self._mailbox.empty()

    def set_prepare(self, fn: Optional[Callable[[np.ndarray], Any]], key: Any = None) -> None:
        """Run `fn(image)` in the capture thread on every frame read from now on; the result rides
        in `Frame.prepared` (tagged `key`). The inspection loop then only runs the model: with two
        cores, resizing the next frame overlaps the current invoke. A frame `fn` raises on is
        handed over unprepared (the consumer prepares it and reports what was wrong). None: stop.
        """
        self._prepare = None if fn is None else (fn, key)

    def start(self) -> "Capture":
        if self._started:
            return self
        self._started = True
        backend, self._backend = self._backend, None
        if self.live:
            self._supervisor = threading.Thread(
                target=self._supervise, args=(backend,), name=f"edge-watchdog {self.name}", daemon=True
            )
            self._supervisor.start()
        else:
            assert backend is not None
            self._gen += 1
            self._start_worker(self._read, (self._gen, backend))
        return self

    def get(self, timeout: float = 0.2) -> Optional[Frame]:
        """The next frame, or None when none came within `timeout` (check `ended`)."""
        if not self._started:
            self.start()
        return self._mailbox.get(timeout)

    def stop(self, join_timeout: Optional[float] = None) -> None:
        """Stop reading, release the backend and wait for every thread that may be inside a driver.

        The wait is bounded (by default the OpenCV read/open timeout plus a second, which FFmpeg
        honours); a thread still blocked after it (a driver that ignores timeouts) is left behind
        and counted in `left_behind`.
        """
        self._stop.set()
        with self._lock:
            self._gen += 1
        self._mailbox.wake()
        if join_timeout is None:
            join_timeout = self.driver_timeout() + 1.0
        deadline = time.monotonic() + join_timeout
        for t in [self._supervisor, *self._workers]:
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        self._workers = [t for t in self._workers if t.is_alive()]
        if self._workers and self.left_behind == 0:
            self.left_behind = len(self._workers)
            self._log(f"{self.name}: {self.left_behind} capture thread(s) still in the driver after {join_timeout:g} s")
        if self._backend is not None:  # never started
            _release_quietly(self._backend)
            self._backend = None

    def driver_timeout(self) -> float:
        """Seconds a read() or open() may take before OpenCV's own timeout ends it (live sources)."""
        if not self.live:
            return 1.0
        return max(self.watchdog.read_timeout_ms, self.watchdog.open_timeout_ms) / 1000

    def _start_worker(self, target: Callable, args: tuple) -> threading.Thread:
        self._workers = [t for t in self._workers if t.is_alive()]
        t = threading.Thread(target=target, args=args, name=f"edge-capture {self.name}", daemon=True)
        self._workers.append(t)
        t.start()
        return t

    # -- reader thread -------------------------------------------------------------------------
    def _stale(self, gen: int) -> bool:
        return self._stop.is_set() or gen != self._gen

    def _read(self, gen: int, backend: Backend) -> None:
        try:
            while not self._stale(gen):
                self._pace.wait(self._stop.wait)
                if self._stale(gen):
                    return
                self._read_started = (gen, time.monotonic())
                try:
                    ok, image = backend.read()
                    problem = None if ok and image is not None else "read failed"
                except Exception as exc:  # a driver or a fake backend raising: same as a failed read
                    ok, image, problem = False, None, f"read raised {type(exc).__name__}: {exc}"
                if self._stale(gen):
                    return  # abandoned while blocked: what it read is not fresh any more
                self._read_started = None
                if problem is not None:
                    if self.live:
                        self._reader_failed = (gen, problem)
                        return
                    again = self._end_of_file(backend, problem)
                    if again is None:
                        return
                    backend = again
                    continue
                self._hand_over(gen, backend, image)
        finally:
            _release_quietly(backend)

    def _end_of_file(self, backend: Backend, problem: str) -> Optional[Backend]:
        """A file or folder ended: the reopened backend when looping, else None (the input's end)."""
        if problem != "read failed":
            self._log(f"{self.name}: {problem}; treating it as the end of the input")
        if not (self.loop and self._frames_since_open > 0):
            self._end()
            return None
        _release_quietly(backend)
        try:
            backend = self._opener()
        except Exception as exc:
            self.error = f"{self.name}: cannot start the video again ({exc})"
            self._log(self.error)
            self._end()
            return None
        self._frames_since_open = 0
        self.loops += 1
        return backend

    def _hand_over(self, gen: int, backend: Backend, image: np.ndarray) -> None:
        name = self._name_of(backend) if self._name_of else self.name
        frame = Frame(self.frames_read, image, name, time.time())
        prepare = self._prepare
        if prepare is not None:
            self._run_prepare(frame, prepare)
        self.frames_read += 1
        self._frames_since_open += 1
        self._mailbox.put(frame, lambda: self._stale(gen))

    @staticmethod
    def _run_prepare(frame: Frame, prepare: tuple[Callable[[np.ndarray], Any], Any]) -> None:
        fn, key = prepare
        t0 = time.perf_counter()
        try:
            frame.prepared = fn(frame.image)
            frame.prepared_by = key
        except Exception:  # noqa: BLE001 - a bad frame is the consumer's to report, not the reader's end
            frame.prepared = None
        frame.prepare_seconds = time.perf_counter() - t0

    def _end(self) -> None:
        self._eos = True
        self._mailbox.wake()

    # -- watchdog (live sources) ---------------------------------------------------------------
    def _supervise(self, backend: Optional[Backend]) -> None:
        """Read from `backend` until it fails or stalls, then reopen it with backoff; None: not open yet."""
        backoff = _Backoff(self.watchdog)
        why = self._not_there_at_start
        while not self._stop.is_set():
            if backend is None:
                backend = self._reopen(backoff, why or "not open")
                if backend is None:  # stopped, or gave up
                    return
            why = self._read_until_it_fails(backend)
            if why is None:  # stopped
                return
            backend = None
            if self._frames_since_open > 0:
                backoff.reset()
            self._log(f"{self.name}: {why}; reopening in {backoff.delay:g} s")

    def _read_until_it_fails(self, backend: Backend) -> Optional[str]:
        with self._lock:
            self._gen += 1
            gen = self._gen
        self._reader_failed = None
        self._read_started = None
        self._frames_since_open = 0
        self._start_worker(self._read, (gen, backend))
        why = self._watch(gen)
        with self._lock:
            self._gen += 1  # abandon the reader; if it is blocked, it stays blocked, harmlessly
        return why

    def _reopen(self, backoff: "_Backoff", why: str) -> Optional[Backend]:
        """Open again after the backoff delay, until it opens; None when stopped or past max_reopens."""
        wd = self.watchdog
        while not self._stop.is_set():
            if wd.max_reopens is not None and backoff.failed >= wd.max_reopens:
                self.error = f"{self.name}: gave up after {backoff.failed} reopen attempts ({why})"
                self._log(self.error)
                self._end()
                return None
            if self._stop.wait(backoff.next_delay()):
                return None
            opening = _Opening(self._opener, self.name)
            self._workers.append(opening.thread)
            try:
                backend = opening.result(wd.open_timeout_ms / 1000 + wd.stall_seconds, self._stop)
            except Exception as exc:
                self.reopen_failures += 1
                self._log(f"{self.name}: reopen failed ({_message(exc)}); next try in {backoff.delay:g} s")
                continue
            if backend is None or self._stop.is_set():
                if backend is not None:
                    _release_quietly(backend)
                return None
            self.reopens += 1
            self._log(f"{self.name}: reopened (reopen #{self.reopens})")
            return backend
        return None

    def _watch(self, gen: int) -> Optional[str]:
        """Wait until the reader needs replacing; the reason, or None when stopping."""
        stall = self.watchdog.stall_seconds
        while not self._stop.wait(0.05):
            failed = self._reader_failed
            if failed is not None and failed[0] == gen:
                return failed[1]
            started = self._read_started
            if started is not None and started[0] == gen and time.monotonic() - started[1] > stall:
                return f"no frame for {stall:g} s (read blocked)"
        return None


class _Backoff:
    """The doubling delay between reopen attempts and how many failed in a row."""

    def __init__(self, watchdog: WatchdogConfig):
        self._wd = watchdog
        self.delay = watchdog.backoff_initial  # the wait before the next attempt
        self.failed = 0  # attempts since the source last delivered a frame

    def next_delay(self) -> float:
        """The wait before this attempt; counts it and doubles the next one (up to backoff_max)."""
        delay = self.delay
        self.failed += 1
        self.delay = min(self.delay * 2, self._wd.backoff_max)
        return delay

    def reset(self) -> None:
        self.delay, self.failed = self._wd.backoff_initial, 0
