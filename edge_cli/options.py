"""Options several commands share, defined once so their flags and help read the same everywhere."""

from __future__ import annotations

from typing import Optional

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


def runtime():
    """--runtime for commands that run a bundle's model (run, bench, calibrate, eval)."""
    return typer.Option(
        None,
        "--runtime",
        help="litert: the .tflite through LiteRT (default); onnxruntime: the .onnx through ONNX Runtime "
        "(CUDA/TensorRT when present, else the CPU; the onnx extra). See docs/runtime.md.",
    )


def delegate():
    return typer.Option(
        None,
        "--delegate",
        help="Run the .tflite through a LiteRT delegate: edgetpu (Coral; the bundle's Edge-TPU-compiled model), "
        "gpu, or the PATH of a delegate library. Says which runs, or why it could not load.",
    )


def delegate_fallback():
    return typer.Option(
        None,
        "--delegate-fallback",
        help="cpu: when the delegate cannot load, run on the CPU and say so (default: stop with the reason).",
    )


def providers():
    return typer.Option(
        None,
        "--provider",
        help="With --runtime onnxruntime: an execution provider to use (tensorrt, cuda, cpu or its full name); "
        "repeatable, in order of preference (default: TensorRT, then CUDA, when present, then the CPU).",
    )


def runtime_options(base, runtime: Optional[str], delegate: Optional[str], fallback: Optional[str], providers):
    """`base` (edge.runtime.RuntimeOptions, e.g. from the config file) with the flags given in its place;
    a bad value is one line naming the flag."""
    from pydantic import ValidationError

    from edge.errors import EdgeError
    from edge.runtime import RuntimeOptions
    from edge.schema import first_problem

    given = {"runtime": runtime, "delegate": delegate, "delegate_fallback": fallback, "providers": providers or None}
    flags = {"runtime": "--runtime", "delegate": "--delegate", "delegate_fallback": "--delegate-fallback"}
    merged = {**(base or RuntimeOptions()).model_dump(), **{k: v for k, v in given.items() if v is not None}}
    try:
        return RuntimeOptions.model_validate(merged)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"] if exc.errors() else ()
        flag = flags.get(str(loc[0]), "--provider") if loc else ""
        raise EdgeError(f"{flag}: {first_problem(exc)}" if flag else first_problem(exc)) from None
