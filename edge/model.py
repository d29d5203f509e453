"""The TFLite interpreter on the device: backend choice, quantization, batched invoke.

Backends, in order: ai-edge-litert (tflite-runtime's successor), tflite-runtime, and
tensorflow.lite as a last resort on a desktop. The device installs only the first.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edge.errors import EdgeError

_BACKENDS = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow.lite", "tensorflow.lite"),
)


class DelegateError(EdgeError):
    """A delegate cannot run this model here: its library is missing or broken, or the model is not for it.

    edge.runtime runs the model on the CPU instead when the run allows it (delegate_fallback: cpu).
    """


@contextlib.contextmanager
def _native_stderr_silenced():
    """The interpreter's C++ side prints an INFO line per model load; keep the operator's terminal clean."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def interpreter_backend() -> tuple[str, type]:
    """(name, Interpreter class) of the first interpreter that imports."""
    forced = os.environ.get("EDGE_INTERPRETER")
    for name, module_name in _BACKENDS:
        if forced and forced != name:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return name, module.Interpreter
    raise EdgeError("no TFLite interpreter found; install one: pip install 'edge-inspect[edge]' (ai-edge-litert)")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in ("uint8", "int8") and self.scale > 0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


def _tensor_info(detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale),
        zero_point=int(zero_point),
    )


class ModelBase:
    """A model fed with uint8 frames in [0, 255] whose outputs come back as float32, whatever runs it.

    The model's own input may be float32 (expects [0, 1]) or uint8/int8 quantized; the
    conversion is done here, once per call, with no per-frame Python loops. Subclasses (one per
    runtime: TFLiteModel here, edge.onnx_model.OnnxModel) set `path`, `input`, `outputs`,
    `fixed_batch`, `backend` and `runtime`, and implement set_input / invoke / get_outputs.
    edge.runtime.open_model picks the subclass.
    """

    path: Path
    input: TensorInfo
    outputs: list[TensorInfo]
    fixed_batch: Optional[int] = None
    _identity_input: bool = False  # set by the subclass: takes_bytes_as_they_are(self.input)
    backend: str = ""  # the library: ai-edge-litert, tflite-runtime, tensorflow.lite, onnxruntime
    runtime: str = ""  # what runs it, said at start: "ai-edge-litert on the CPU", "... + Edge TPU delegate"

    @property
    def input_hwc(self) -> tuple[int, int, int]:
        return tuple(self.input.shape[1:4])  # type: ignore[return-value]

    def quantize_input(self, batch_u8: np.ndarray) -> np.ndarray:
        info = self.input
        if info.dtype == "float32":
            return batch_u8.astype(np.float32) * np.float32(1.0 / 255.0)
        if self._identity_input:
            return batch_u8
        if info.quantized:
            real = batch_u8.astype(np.float32) * np.float32(1.0 / 255.0)
            q = np.round(real / info.scale + info.zero_point)
            lo, hi = (0, 255) if info.dtype == "uint8" else (-128, 127)
            return np.clip(q, lo, hi).astype(info.dtype)
        raise EdgeError(f"unsupported model input type {info.dtype}; export with `edge export`")

    @staticmethod
    def takes_bytes_as_they_are(info: TensorInfo) -> bool:
        """uint8 input with scale 1/255 and zero point 0 takes the frame bytes as they are."""
        return info.dtype == "uint8" and abs(info.scale * 255.0 - 1.0) < 1e-3 and info.zero_point == 0

    @staticmethod
    def dequantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
        if info.quantized:
            return (values.astype(np.float32) - np.float32(info.zero_point)) * np.float32(info.scale)
        return values.astype(np.float32, copy=False)

    def check_frame_shape(self, hwc: tuple[int, int, int]) -> None:
        if tuple(hwc) != self.input_hwc:
            h, w, c = self.input_hwc
            raise EdgeError(
                f"model {self.path.name} takes {w}x{h}x{c} inputs but preprocessing gives "
                f"{hwc[1]}x{hwc[0]}x{hwc[2]}; the bundle's preprocessing does not fit its model"
            )

    def set_input(self, batch_u8: np.ndarray) -> None:
        raise NotImplementedError

    def invoke(self) -> None:
        raise NotImplementedError

    def get_outputs(self) -> list[np.ndarray]:
        raise NotImplementedError

    def predict(self, batch_u8: np.ndarray) -> list[np.ndarray]:
        """uint8 (N, H, W, C) frames → each output as float32, dequantized."""
        if batch_u8.ndim == 3:
            batch_u8 = batch_u8[None]
        if self.fixed_batch == 1 and len(batch_u8) != 1:
            return self._predict_one_by_one(batch_u8)
        self.set_input(batch_u8)
        self.invoke()
        return self.get_outputs()

    def _predict_one_by_one(self, batch_u8: np.ndarray) -> list[np.ndarray]:
        n = len(batch_u8)
        if n == 0:
            return [np.empty((0, *info.shape[1:]), np.float32) for info in self.outputs]
        outs: list[np.ndarray] = []
        for i in range(n):
            self.set_input(batch_u8[i : i + 1])
            self.invoke()
            for j, value in enumerate(self.get_outputs()):
                if i == 0:
                    outs.append(np.empty((n, *value.shape[1:]), np.float32))
                outs[j][i] = value[0]
        return outs


class TFLiteModel(ModelBase):
    """A .tflite model through LiteRT, on the CPU (XNNPACK) or through `delegates` (edge.runtime loads them)."""

    def __init__(self, path: str | Path, num_threads: Optional[int] = None, delegates: Optional[list] = None):
        path = Path(path)
        if not path.is_file():
            raise EdgeError(f"model file not found: {path}")
        self.path = path
        self.backend, interpreter_cls = interpreter_backend()
        self.runtime = f"{self.backend} on the CPU"
        kwargs = {"experimental_delegates": delegates} if delegates else {}
        try:
            with _native_stderr_silenced():
                self._interpreter = interpreter_cls(model_path=str(path), num_threads=num_threads, **kwargs)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            if "edgetpu-custom-op" in str(exc):
                raise EdgeError(
                    f"{path.name} is compiled for the Edge TPU and runs only with it: give --delegate edgetpu"
                ) from None
            if delegates:
                raise DelegateError(f"{path.name} could not be prepared for the delegate: {exc}") from None
            raise EdgeError(f"{path} is not a valid TFLite model ({exc}); re-export it with `edge export`") from None
        self._input_detail = self._interpreter.get_input_details()[0]
        self._output_details = self._interpreter.get_output_details()
        self.input = _tensor_info(self._input_detail)
        self.outputs = [_tensor_info(d) for d in self._output_details]
        self._identity_input = self.takes_bytes_as_they_are(self.input)
        self._batch = self.input.shape[0]
        # A model exported with a fixed batch (shape signature [1, H, W, C]) cannot be resized:
        # predict() feeds it the frames one by one. Such a graph lets XNNPACK take every op
        # (with a free batch, the transposed convolutions' output shape is computed at run time
        # and they fall back to slower built-in kernels): see benchmarks/results/performance.md.
        signature = self._input_detail.get("shape_signature")
        self.fixed_batch: Optional[int] = (
            int(signature[0]) if signature is not None and len(signature) and int(signature[0]) > 0 else None
        )

    def _ensure_batch(self, n: int) -> None:
        if n != self._batch:
            if self.fixed_batch is not None:
                raise EdgeError(
                    f"model {self.path.name} was exported with a fixed batch of {self.fixed_batch}; "
                    f"give it {self.fixed_batch} frame(s) at a time (predict() does this for you)"
                )
            self._interpreter.resize_tensor_input(self._input_detail["index"], [n, *self.input_hwc])
            self._interpreter.allocate_tensors()
            self._input_detail = self._interpreter.get_input_details()[0]
            self._output_details = self._interpreter.get_output_details()
            self._batch = n

    def set_input(self, batch_u8: np.ndarray) -> None:
        """Put uint8 (N, H, W, C) frames (or one (H, W, C) frame) into the model's input tensor."""
        if batch_u8.ndim == 3:
            batch_u8 = batch_u8[None]
        self.check_frame_shape(batch_u8.shape[1:4])
        self._ensure_batch(batch_u8.shape[0])
        index = self._input_detail["index"]
        if self.input.dtype == "float32" or self._identity_input:
            # Written straight into the interpreter's own input buffer: no temporary per frame.
            # The view must be gone before invoke(), which refuses to run while one is held.
            view = self._interpreter.tensor(index)()
            if self._identity_input:
                np.copyto(view, batch_u8)
            else:
                np.multiply(batch_u8, np.float32(1.0 / 255.0), out=view, dtype=np.float32)
            del view
        else:
            self._interpreter.set_tensor(index, self.quantize_input(batch_u8))

    def invoke(self) -> None:
        """Run the model on what set_input() put in."""
        self._interpreter.invoke()

    def get_outputs(self) -> list[np.ndarray]:
        """Each output of the last invoke() as a new float32 array, dequantized."""
        return [
            self.dequantize(self._interpreter.get_tensor(d["index"]), info)
            for d, info in zip(self._output_details, self.outputs, strict=True)
        ]
