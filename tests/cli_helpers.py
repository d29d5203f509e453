"""Run the `edge` command line as a user does: a subprocess of this interpreter (python -m edge_cli).

One helper for every test file, so the command, the captured output and the time limit read the
same everywhere. `env` adds to the environment (a user's shell), it does not replace it.

`run_edge_in_process` calls the same entry point (`edge_cli.app.main`) inside the test process:
for desktop commands that train or export, a fresh interpreter spends ~10 s of a 2-core machine
importing TensorFlow again, which the test process has already done. What concerns the process
itself (exit on signals, what it imports, a traceback-free exit status) stays with run_edge.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
EDGE = [sys.executable, "-m", "edge_cli"]


def run_edge(*args, cwd: Path = REPO, timeout: float = 300, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """`edge ARGS…` (each arg str()-ed), stdout and stderr captured as text; never waits past `timeout`."""
    return subprocess.run(
        [*EDGE, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )


def run_edge_case(*args, real_process: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    """One case of a bad-input sweep: `edge ARGS…` in this process (its assertions read only the exit
    status and the output; a fresh interpreter per case costs about a CPU-second), or, with
    `real_process`, as a real subprocess: the one case per command that checks the process itself."""
    return run_edge(*args, timeout=timeout) if real_process else run_edge_in_process(*args)


@contextlib.contextmanager
def _working_directory(path: Path):
    """contextlib.chdir, which Python 3.10 does not have."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_edge_in_process(*args, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`edge ARGS…` through edge_cli.app.main in this interpreter; the result reads like run_edge's.

    Captured at the file descriptors, as a subprocess's pipes would be: what TensorFlow's C++ writes
    to fd 2 is in `stderr` too, so "no native log noise" assertions still see it. An exception that
    escapes main() is printed as a traceback with exit status 1, as Python itself would do.
    """
    from edge_cli.app import main

    argv = [str(a) for a in args]
    code: int = 0
    saved_argv = sys.argv
    sys.argv = ["edge", *argv]  # as a real process has it (a report records the command from it)
    with _working_directory(cwd), _captured_fds() as (out, err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
    return subprocess.CompletedProcess([*EDGE, *argv], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _captured_fds():
    """fd 1 and 2 (and sys.stdout/err on them) into two temp files; yields two StringIOs filled at the end."""
    results = io.StringIO(), io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        files = out_file, err_file
        for fd, file in zip((1, 2), files, strict=True):
            os.dup2(file.fileno(), fd)
        texts = [open(fd, "w", buffering=1, encoding="utf-8", closefd=False) for fd in (1, 2)]
        try:
            with contextlib.redirect_stdout(texts[0]), contextlib.redirect_stderr(texts[1]):
                yield results
        finally:
            for text in texts:
                text.flush()
                text.close()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)
            for file, result in zip(files, results, strict=True):
                file.seek(0)
                result.write(file.read().decode("utf-8", errors="replace"))
