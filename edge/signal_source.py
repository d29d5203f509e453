"""Signal windows as a frame source: a file replayed, lines on standard input, a serial port.

Each window, normalised as the bundle says (edge.signal_data.to_frame), is handed to the pipeline
as a 1 x length uint8 frame, so the device loop, the decision logic and the sinks are the image
models' own. The reading runs in the capture thread of edge.capture, so a serial port that vanishes
is reopened by the same watchdog as a camera (and waited for at start unless --fail-fast).

  --signal FILE   every window of the file, in order (a recording is cut every `hop` samples);
                  `rate` windows per second when given (the capture thread paces it,
                  edge.pace), else as fast as the model goes.
                  A bad file (rows of different lengths, a value that is not a number, windows
                  of another length than the model's) is refused at start, in one line.
  --signal -      lines on standard input until it ends: a window per line, or a sample per line.
  --serial PORT   the same lines from a serial port (pyserial, `baud`), e.g. a microcontroller
                  printing one sample per line. A garbled line (a stream joined mid-line) is
                  skipped, counted and said on stderr, never the end of the run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.capture import Backend, SourceUnavailable
from edge.errors import EdgeError
from edge.messages import Log
from edge.signal_data import SignalSpec, WindowAssembler, parse_values, read_signal_file, to_frame
from edge.sources import Source, SourceConfig, open_source

SIGNAL_KINDS = ("signal", "serial")
BAD_LINES_SAID = 3  # the first bad lines are each one line on stderr; after that every 100th


def check_source_fits(config: SourceConfig, spec: Optional[SignalSpec], bundle: str = "the bundle") -> None:
    """A signal source needs a signal bundle and a camera an image one: one line saying which to give."""
    if config.kind in SIGNAL_KINDS and spec is None:
        raise EdgeError(
            f"--{config.kind} needs a signal bundle, but {bundle} is an image model; "
            "give it --camera, --video or --images, or train one on a signal file (see docs/signals.md)"
        )
    if config.kind not in SIGNAL_KINDS and spec is not None:
        raise EdgeError(
            f"{bundle} is a signal model ({spec.describe()}): give it --signal FILE, --signal - "
            f"or --serial PORT, not --{config.kind}"
        )


def open_run_source(
    config: SourceConfig, spec: Optional[SignalSpec], bundle: str = "the bundle", log: Optional[Log] = None
) -> Source:
    """The source of a run: a SignalSource for a signal model's --signal/--serial, else edge.sources.open_source.

    `spec` is the bundle's window spec (None for an image model); a source that does not suit the
    model (a camera for a signal model, --signal for an image model) is one line naming `bundle`.
    """
    check_source_fits(config, spec, bundle)
    if spec is not None:
        return SignalSource(config, spec, log=log)
    return open_source(config=config, log=log)


class FileWindows:
    """Backend: the windows of a signal file, read and normalised when it opens (a bad file fails at start)."""

    def __init__(self, path: str, spec: SignalSpec, hop: Optional[int]):
        data = read_signal_file(path, spec.length, hop or spec.hop)
        self.frames = to_frame(data.windows, spec)[:, 0, :, 0]  # (N, L) uint8
        self.names = data.rows
        self.skipped = 0
        self.current = ""
        self._next = 0

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        if self._next >= len(self.frames):
            return False, None
        i, self._next = self._next, self._next + 1
        self.current = self.names[i]
        return True, self.frames[i][None]

    def release(self) -> None:
        pass


class LineWindows:
    """Backend: windows assembled from text lines (standard input, a serial port); bad lines skipped and said."""

    def __init__(
        self,
        readline: Callable[[], Optional[str]],
        name: str,
        spec: SignalSpec,
        hop: Optional[int],
        log: Log,
        close: Callable[[], None] = lambda: None,
    ):
        self._readline = readline
        self._close = close
        self.name = name
        self.spec = spec
        self.assembler = WindowAssembler(spec.length, hop or spec.hop)
        self.log = log
        self.lines = 0
        self.skipped = 0
        self.current = ""

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        while True:
            line = self._readline()
            if line is None:
                return False, None  # end of input, or a port with nothing to say (the watchdog decides)
            self.lines += 1
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{self.name} line {self.lines}"
            try:
                window = self.assembler.feed(parse_values(line, where), where)
            except EdgeError as exc:
                self._bad(str(exc))
                continue
            if window is not None:
                self.current = f"{self.name}:{self.lines}"
                return True, to_frame(window, self.spec)

    def _bad(self, why: str) -> None:
        self.skipped += 1
        if self.skipped <= BAD_LINES_SAID or self.skipped % 100 == 0:
            self.log(f"skipped: {why} ({self.skipped} bad line(s) so far)")

    def release(self) -> None:
        self._close()


def stdin_lines() -> Callable[[], Optional[str]]:
    def readline() -> Optional[str]:
        line = sys.stdin.readline()
        return line if line else None

    return readline


def open_serial(port: str, baud: int, idle_seconds: float, spec: SignalSpec, hop: Optional[int], log: Log) -> Backend:
    """A serial port as a LineWindows backend; a port that is not there may come (SourceUnavailable)."""
    try:
        import serial  # pyserial: the serial extra
    except ImportError:
        raise EdgeError("--serial needs pyserial: pip install 'edge-inspect[serial]'") from None
    if not Path(port).exists():
        raise SourceUnavailable(f"serial port {port} not found (unplugged? list ports with `ls /dev/serial/by-id/`)")
    try:
        link = serial.Serial(port, baudrate=baud, timeout=min(1.0, idle_seconds / 2))
    except (serial.SerialException, OSError, ValueError) as exc:
        raise SourceUnavailable(f"cannot open serial port {port} at {baud} baud ({exc})") from None

    def readline() -> Optional[str]:
        # A read that times out returns b"": keep waiting, up to the watchdog's stall time, then let
        # it reopen the port (a reader it abandoned returns here and lets the port go).
        quiet_since = time.monotonic()
        while True:
            raw = link.readline()  # SerialException when the device vanishes: the watchdog reopens
            if raw:
                return raw.decode("ascii", errors="replace")
            if time.monotonic() - quiet_since > idle_seconds:
                return None

    return LineWindows(readline, f"serial:{port}", spec, hop, log, close=link.close)


class SignalSource(Source):
    """A Source (capture thread, watchdog, counts) whose frames are the windows of a signal file or stream."""

    def __init__(self, config: SourceConfig, spec: SignalSpec, log: Optional[Log] = None, opener=None):
        self.spec = spec
        self._signal_backend: Optional[LineWindows | FileWindows] = None
        super().__init__(config, log=log, opener=opener)

    def _default_opener(self):
        config, spec = self.config, self.spec

        def remember(backend):
            self._signal_backend = backend
            return backend

        if config.kind == "serial":
            idle = config.watchdog.stall_seconds
            return lambda: remember(open_serial(config.serial, config.baud, idle, spec, config.hop, self._log))  # type: ignore[arg-type]
        if config.signal == "-":
            return lambda: remember(LineWindows(stdin_lines(), "stdin", spec, config.hop, self._log))
        return lambda: remember(FileWindows(config.signal, spec, config.hop))  # type: ignore[arg-type]

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self._signal_backend.skipped if self._signal_backend is not None else 0

    def poll(self, timeout: float = 0.2):
        frame = self.capture.get(timeout)
        if frame is not None:
            self._delivered += 1
        elif self.capture.ended and self._delivered == 0 and not self.config.live and self.capture.error is None:
            raise EdgeError(f"{self.name} gave no window (nothing on standard input?)")
        return frame
