"""An .onnx model through ONNX Runtime (`edge run --runtime onnxruntime`; the `onnx` extra).

The same contract as edge.model.TFLiteModel (uint8 frames in, float32 outputs), so the detectors
and calibration cannot tell which runs. Execution providers: the ones asked for, in order, or by
default TensorRT, then CUDA, when this onnxruntime has them (a Jetson with JetPack's
onnxruntime-gpu), then the CPU. The providers the session really got are said in `runtime`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from edge.errors import EdgeError
from edge.messages import Log
from edge.model import ModelBase, TensorInfo

# Short names accepted in --provider / `providers:`; full names are accepted as they are.
PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise EdgeError(
            "--runtime onnxruntime needs ONNX Runtime: pip install 'edge-inspect[onnx]' "
            "(on a Jetson, the onnxruntime-gpu wheel for your JetPack: docs/install-pi-jetson.md)"
        ) from None
    return onnxruntime


def choose_providers(available: list[str], asked: Optional[list[str]]) -> list[str]:
    """The providers to ask the session for; one that this onnxruntime does not have is one line."""
    if not asked:
        return [p for p in PREFERRED if p in available] or list(available)
    chosen = []
    for name in asked:
        full = PROVIDER_NAMES.get(name.lower(), name)
        if full not in available:
            raise EdgeError(
                f"execution provider {name!r} is not in this onnxruntime (it has: {', '.join(available)}); "
                "install the onnxruntime build that has it (onnxruntime-gpu for CUDA/TensorRT) or name another"
            )
        chosen.append(full)
    return chosen


def _shape(dims) -> tuple[int, ...]:
    # A free dimension (the batch) is a name or None in ONNX: 1, as TFLite reports a free batch.
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)


class OnnxModel(ModelBase):
    """An .onnx whose input is float [0, 1] NHWC (`edge export --format onnx`; int8 is QDQ inside)."""

    def __init__(
        self,
        path: str | Path,
        num_threads: Optional[int] = None,
        providers: Optional[list[str]] = None,
        log: Optional[Log] = None,
    ):
        ort = _import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise EdgeError(f"model file not found: {path}")
        self.path = path
        self.backend = f"onnxruntime {ort.__version__}"
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers etc. are not for the operator
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        wanted = choose_providers(ort.get_available_providers(), providers)
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EdgeError(f"{path} is not a valid ONNX model for this onnxruntime ({first})") from None
        got = self._session.get_providers()
        self.runtime = f"{self.backend}, {', '.join(got)}"
        if log is not None and wanted[0] not in got:
            log(f"onnxruntime: {wanted[0]} did not start; running with {', '.join(got)}")
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise EdgeError(f"{path.name} has {len(inputs)} inputs; an edge-inspect model has one (the frame)")
        self._input_name = inputs[0].name
        self.input = self._info(inputs[0])
        self._output_names = [o.name for o in self._session.get_outputs()]
        self.outputs = [self._info(o) for o in self._session.get_outputs()]
        dims = inputs[0].shape
        self.fixed_batch = int(dims[0]) if isinstance(dims[0], int) and dims[0] > 0 else None
        self._identity_input = self.takes_bytes_as_they_are(self.input)
        self._feed: Optional[np.ndarray] = None
        self._results: list[np.ndarray] = []

    def _info(self, arg) -> TensorInfo:
        dtype = _DTYPES.get(arg.type)
        if dtype is None:
            raise EdgeError(f"{self.path.name}: tensor {arg.name} is {arg.type}; edge-inspect takes float or uint8")
        # QDQ models keep float inputs and outputs: no scale to apply here.
        return TensorInfo(name=arg.name, shape=_shape(arg.shape), dtype=dtype, scale=0.0, zero_point=0)

    def set_input(self, batch_u8: np.ndarray) -> None:
        if batch_u8.ndim == 3:
            batch_u8 = batch_u8[None]
        self.check_frame_shape(batch_u8.shape[1:4])
        if self.fixed_batch is not None and len(batch_u8) != self.fixed_batch:
            raise EdgeError(
                f"model {self.path.name} was exported with a fixed batch of {self.fixed_batch}; "
                f"give it {self.fixed_batch} frame(s) at a time (predict() does this for you)"
            )
        self._feed = self.quantize_input(batch_u8)

    def invoke(self) -> None:
        if self._feed is None:
            raise EdgeError("set_input() before invoke()")
        self._results = self._session.run(self._output_names, {self._input_name: self._feed})

    def get_outputs(self) -> list[np.ndarray]:
        return [np.asarray(r, np.float32) for r in self._results]
