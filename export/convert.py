"""The TFLite converter, one place for every model kind."""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterable, Literal, Optional

import numpy as np

from edge.errors import EdgeError
from edge.messages import Log, Steps

Quantize = Literal["int8", "float16", "dynamic", "float32"]
QUANTIZE_CHOICES = ("int8", "float16", "dynamic", "float32")


def export_target(run_dir: str | Path, quantize: str, out: Optional[str | Path] = None, stem: str = "model") -> Path:
    """Where an export writes: OUT, OUT/<stem>_<quantize>.tflite when OUT is a folder, or
    RUN_DIR/export/<stem>_<quantize>.tflite; its folder is created."""
    name = f"{stem}_{quantize}.tflite"
    target = Path(run_dir) / "export" / name if out is None else Path(out)
    if target.is_dir():
        target = target / name
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def with_batch_of_one(model):
    """The same model (same weights) with its batch dimension fixed to 1.

    With a free batch, the shapes of transposed convolutions are computed at run time and
    XNNPACK leaves those layers to the slow reference kernels, splitting the graph; fixed, the
    whole graph runs in XNNPACK: int8 invokes 2.7x faster (benchmarks/results/performance.md).
    The device feeds tiles to such a model one by one (edge.model.TFLiteModel.predict).
    """
    import keras

    inputs = [keras.Input(shape=tuple(t.shape[1:]), batch_size=1, dtype=t.dtype) for t in model.inputs]
    outputs = model(inputs[0] if len(inputs) == 1 else inputs)
    return keras.Model(inputs, outputs, name=model.name)


def convert_keras(
    model,
    quantize: Quantize,
    representative: np.ndarray | None = None,
    fixed_batch: bool = True,
    progress: Optional[Callable[[int], None]] = None,
) -> bytes:
    """Convert a Keras model whose input is float [0, 1].

    int8 is full-integer with uint8 input and output (what an Edge TPU accepts); it needs
    `representative`, uint8 (N, H, W, C) frames from the training images, to set the ranges.
    `fixed_batch` exports with a batch of one, the fast form on a CPU (see with_batch_of_one).
    `progress(1)` is called per representative frame the converter runs (its slow part).
    """
    import tensorflow as tf

    if quantize not in QUANTIZE_CHOICES:
        raise EdgeError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    converter = _converter(tf, with_batch_of_one(model) if fixed_batch else model)
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        if representative is None or len(representative) == 0:
            raise EdgeError(
                "--quantize int8 needs representative images to set the integer ranges; "
                "none were found (keep the training images, or pass --representative DIR)"
            )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _representative(representative, progress)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def _converter(tf, model):
    """A converter for the model's inference function, traced once with its variables frozen in.

    `from_keras_model` first writes and reads back a SavedModel (its every function traced, a
    checkpoint built): 19.4 CPU-s of a MobileNetV2 conversion against 3.5 s this way, 1.6 against
    0.4 s for the tests' tiny autoencoder (benchmarks/results/export_time.md), the same outputs.
    TensorFlow calls this frozen path deprecated, so where a release has dropped it the SavedModel
    path converts instead; the export's parity check on validation images judges the result either
    way (tests/test_export.py runs both against Keras).
    """
    names = ["input"] if len(model.inputs) == 1 else [f"input_{i}" for i in range(len(model.inputs))]
    specs = [tf.TensorSpec(t.shape, t.dtype, name=name) for t, name in zip(model.inputs, names, strict=True)]
    forward = tf.function(lambda *xs: model(xs[0] if len(xs) == 1 else list(xs), training=False))
    try:
        concrete = forward.get_concrete_function(*specs)
        with _deprecation_notice_hidden():
            return tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    except (AttributeError, TypeError, ValueError):
        return tf.lite.TFLiteConverter.from_keras_model(model)


@contextmanager
def _deprecation_notice_hidden():
    """Keep TensorFlow's "providing without the trackable_obj argument is deprecated" off the user's
    terminal: it is about the path chosen on purpose above, not something they can act on."""
    loggers = [logging.getLogger(name) for name in ("absl", "tensorflow")]  # absl's when absl is set up

    def not_the_notice(record: logging.LogRecord) -> bool:
        return "trackable_obj" not in record.getMessage()

    for logger in loggers:
        logger.addFilter(not_the_notice)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(not_the_notice)


def _representative(
    frames_u8: np.ndarray, progress: Optional[Callable[[int], None]] = None
) -> Iterable[list[np.ndarray]]:
    for frame in frames_u8:
        yield [frame[None].astype(np.float32) / 255.0]
        if progress is not None:
            progress(1)


def convert_quietly(
    model,
    quantize: Quantize,
    representative: np.ndarray | None = None,
    log: Optional[Log] = None,
    what: str = "int8 ranges",
) -> bytes:
    """convert_keras with TensorFlow's native chatter captured and, for int8, the representative
    frames counted through `log` (edge.messages.Steps: a bar on a terminal, else a line now and then)."""
    from train.tfenv import native_output_captured

    counting = representative is not None and quantize == "int8" and log is not None
    # Steps before the capture: its copy of stderr must be the terminal, not the capture file
    with Steps(what, len(representative), log) if counting else nullcontext() as steps:  # type: ignore[arg-type]
        with native_output_captured():
            return convert_keras(model, quantize, representative, progress=steps.advance if counting else None)
