"""Options several commands share, defined once so their flags and help read the same everywhere."""

from __future__ import annotations

import typer


def interpreter_threads():
    """--threads for commands that run the .tflite (run, calibrate, eval)."""
    return typer.Option(
        None,
        "--threads",
        min=1,
        help="Interpreter threads (default: the interpreter's own, "
        "one XNNPACK thread; a second helps only when a core is idle).",
    )


def tensorflow_threads():
    """--threads for commands that train with TensorFlow."""
    return typer.Option(None, "--threads", min=1, help="CPU threads for TensorFlow (default: all).")
