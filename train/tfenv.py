"""Importing TensorFlow quietly, and keeping its native log noise out of the user's terminal.

TensorFlow and the TFLite converter write to the process's file descriptors from C++ (oneDNN
notices, MLIR converter chatter, absl warnings) and Keras' SavedModel export prints its signature
to stdout. `edge export` promises the .tflite path as the last stdout line, so noisy calls run
inside `native_output_captured()`, which shows what was captured only if the call fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator, Optional

# Must be set before TensorFlow is first imported; harmless if it already was.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _handlers_back_to_stderr(captured) -> None:
    """Logging handlers made inside the capture (TensorFlow's own, on first use) hold its stream:
    point them at the real stderr, or a later log line in the same process is a '--- Logging error ---'."""
    loggers = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is captured:
                handler.setStream(sys.stderr)


@contextlib.contextmanager
def native_output_captured() -> Iterator[None]:
    """Send fd 1 and 2 (C++ and Python writes alike) to a temp file for the duration.

    On an exception the captured text is replayed on stderr so nothing useful is lost.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real file descriptors (embedded interpreter): capture nothing
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        failed = False
        # Python-level prints too (Keras' export prints its signature): where sys.stdout is not fd 1
        # (a notebook, the CLI called in-process) they would otherwise pass the capture by.
        python_text = open(sink.fileno(), "w", closefd=False, encoding="utf-8", errors="replace")
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(python_text),
                contextlib.redirect_stderr(python_text),
            ):
                warnings.simplefilter("ignore")
                yield
        except BaseException:
            failed = True
            raise
        finally:
            for stream in (python_text, sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            _handlers_back_to_stderr(python_text)
            python_text.close()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if failed:
                sink.seek(0)
                text = sink.read().decode(errors="replace").strip()
                if text:
                    print(text[-4000:], file=sys.stderr)


_tf = None


def import_tensorflow(threads: Optional[int] = None):
    """`import tensorflow` without its start-up notices; optionally cap its CPU threads."""
    global _tf
    if _tf is None:
        with native_output_captured():
            import keras  # noqa: F401
            import tensorflow as tf  # noqa: F401
        _tf = tf
    if threads:
        # Only possible before TF runs its first op; later calls keep the first setting.
        with contextlib.suppress(RuntimeError):
            _tf.config.threading.set_intra_op_parallelism_threads(threads)
            _tf.config.threading.set_inter_op_parallelism_threads(threads)
    return _tf
