"""Progress and problems go to stderr, one line each; stdout is kept for results (paths, alerts)."""

from __future__ import annotations

import io
import os
import sys
import time
from typing import Callable

from edge.redact import printable, redact_text

Log = Callable[[str], None]  # where a long-running function reports, e.g. to_stderr or a list's append


def to_stderr(message: str) -> None:
    # The last guard for secrets: an error from OpenCV, urllib or paho may echo a URL with credentials.
    # Control characters are written out: a file name's escape sequences never reach the terminal.
    print(printable(redact_text(message)), file=sys.stderr, flush=True)


class Steps:
    """Progress of a slow loop: `advance(n)` per n items done, as `with Steps("int8 ranges", 260) as step:`.

    On a terminal: a rich bar on stderr. Otherwise a line "what: done/total" at the start, every
    `every` seconds and at the end, so a log shows the work is moving. Lines go to a copy of stderr
    taken at the start: inside train.tfenv.native_output_captured() (fd 2 pointed at a file while the
    TFLite converter runs) they still reach the user. A `log` other than to_stderr (a list, a quiet
    test) gets the lines instead, never a bar.
    """

    def __init__(self, what: str, total: int, log: Log = to_stderr, every: float = 10.0):
        self.what, self.total, self.log, self.every = what, total, log, every
        self.done, self._stream, self._bar = 0, None, None

    def __enter__(self) -> "Steps":
        if self.log is to_stderr:
            self._stream = _stderr_copy()
            self.log = self._line
            if self._stream.isatty():
                self._bar = self._start_bar()
        if self._bar is None:
            self._report()
        return self

    def advance(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)  # the converter may read its frames more than once
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self.done == self.total or time.monotonic() - self._last >= self.every:
            self._report()

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.done < self.total and exc[0] is None:
            self._report()
        if self._stream is not None and self._stream is not sys.stderr:
            self._stream.close()

    def _report(self) -> None:
        self._last = time.monotonic()
        self.log(f"{self.what}: {self.done}/{self.total}")

    def _line(self, message: str) -> None:
        print(message, file=self._stream, flush=True)

    def _start_bar(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=self._stream),
            transient=True,
            # not rich's own capture of sys.stdout/stderr: it would let through the
            # converter's prints that native_output_captured() keeps from the user
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = bar.add_task(self.what, total=self.total)
        bar.start()
        return bar


def _stderr_copy():
    """A new file on fd 2 as it is now; sys.stderr itself where it has no descriptor (CliRunner)."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w")
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return sys.stderr
