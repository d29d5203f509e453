"""Which runtime runs a model, on what: the one seam between a bundle's model file and its Detector.

    RuntimeOptions (edge run --runtime/--delegate, the config file, edge bench, edge calibrate)
        │  model_file_for(bundle, options): the bundle's CPU model, its Edge-TPU-compiled one, its ONNX one
        │  for_runtime(bundle, options): the threshold in force (the ONNX model's own, when it runs)
        ▼
    open_model(path, options) ──► TFLiteModel (LiteRT; a delegate: edgetpu, gpu or a library PATH)
                              └─► OnnxModel   (ONNX Runtime; CUDA/TensorRT providers when present, else CPU)

Both models take uint8 frames and give float32 outputs (edge.model.ModelBase), so every detector
(edge.detector.DETECTOR_FACTORIES) and calibration score the same way whichever runs. A delegate
that cannot load is one line saying why; with `delegate_fallback: cpu` the model runs on the CPU
instead and the run says so (`Model.runtime`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from edge.bundle import Bundle
from edge.errors import EdgeError
from edge.messages import Log
from edge.model import DelegateError, ModelBase, TFLiteModel, interpreter_backend
from edge.schema import StrictModel

Runtime = Literal["litert", "onnxruntime"]
# Named delegates and their libraries on Linux; anything else given to --delegate is a library path.
DELEGATE_LIBRARIES = {
    "edgetpu": "libedgetpu.so.1",
    "gpu": "libtensorflowlite_gpu_delegate.so",
}
# What edgetpu_compiler puts in a model: the ops it maps to the Edge TPU become this one custom op.
EDGETPU_OP = b"edgetpu-custom-op"
ONNX_SUFFIX = ".onnx"


class RuntimeOptions(StrictModel):
    """How the model runs: `edge run --runtime/--delegate`, the run config's keys of the same names."""

    runtime: Runtime = Field("litert", description="litert: the .tflite through LiteRT; onnxruntime: the .onnx")
    delegate: Optional[str] = Field(
        None, description="LiteRT delegate: edgetpu (Coral), gpu, or the path of a delegate library"
    )
    delegate_fallback: Optional[Literal["cpu"]] = Field(
        None, description="cpu: when the delegate cannot load, run on the CPU (and say so); unset: stop"
    )
    providers: Optional[list[str]] = Field(
        None,
        description="ONNX Runtime execution providers in order of preference (tensorrt, cuda, cpu or full "
        "names); default: TensorRT, then CUDA, when this onnxruntime has them, then the CPU",
    )

    @field_validator("delegate")
    @classmethod
    def _delegate_name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in DELEGATE_LIBRARIES and "/" not in v and ".so" not in v:
            raise ValueError(f"unknown delegate {v!r}: give edgetpu, gpu or the path of a delegate library (.so)")
        return v

    @model_validator(mode="after")
    def _settings_of_the_runtime(self):
        if self.runtime == "onnxruntime" and self.delegate is not None:
            raise ValueError("delegates are LiteRT settings; ONNX Runtime takes providers (--provider cuda)")
        if self.runtime == "litert" and self.providers:
            raise ValueError("providers are ONNX Runtime settings; give them with --runtime onnxruntime")
        return self


def _quiet(_message: str) -> None:
    pass


def is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ONNX_SUFFIX


def options_for_file(path: str | Path) -> RuntimeOptions:
    """The CPU runtime of a model file by its kind: ONNX Runtime for an .onnx, LiteRT otherwise."""
    return RuntimeOptions(runtime="onnxruntime" if is_onnx(Path(path)) else "litert")


def compiled_for_edgetpu(path: Path) -> bool:
    """True when edgetpu_compiler made this model (its Edge TPU ops are one custom op, named in the file)."""
    try:
        return EDGETPU_OP in path.read_bytes()
    except OSError:
        return False


def model_file_for(bundle: Bundle, options: RuntimeOptions) -> Path:
    """The bundle's model file for this runtime: its main model, or the one it keeps for the accelerator."""
    variants = bundle.manifest.model.variants
    main = bundle.model_path
    for accelerator, name in variants.items():
        if name not in bundle.manifest.files:  # load_bundle checks the hash of every file listed there
            raise EdgeError(
                f"bundle {bundle.path} keeps {name} for {accelerator} but lists no hash for it; re-run `edge calibrate`"
            )
    if options.runtime == "onnxruntime":
        if is_onnx(main):
            return main
        if "onnxruntime" in variants:
            return bundle.path / variants["onnxruntime"]
        raise EdgeError(
            f"bundle {bundle.path} has no ONNX model ({main.name} is TFLite): run it without --runtime onnxruntime, "
            "or calibrate the .onnx from `edge export --format onnx` into a bundle"
        )
    if options.delegate == "edgetpu" and "edgetpu" in variants:
        return bundle.path / variants["edgetpu"]
    return main


def for_runtime(bundle: Bundle, options: Optional[RuntimeOptions]) -> Bundle:
    """The bundle with the threshold in force on this runtime: its ONNX model's own when `--runtime
    onnxruntime` runs the ONNX model it keeps beside a .tflite, else its main one (a delegate's model
    is calibrated into the main threshold). One line, saying to recalibrate, when that ONNX model has none."""
    if bundle.variant is not None or options is None or options.runtime != "onnxruntime":
        return bundle
    if is_onnx(bundle.model_path) or "onnxruntime" not in bundle.manifest.model.variants:
        return bundle
    return bundle.for_variant("onnxruntime")


def open_model(
    path: str | Path,
    options: Optional[RuntimeOptions] = None,
    num_threads: Optional[int] = None,
    log: Log = _quiet,
    cpu_path: Optional[Path] = None,
) -> ModelBase:
    """The model at `path`, run as `options` say (default: LiteRT on the CPU).

    `cpu_path`: the model to run on the CPU when the delegate cannot load and the fallback is
    allowed (a bundle keeps its CPU model beside the Edge-TPU-compiled one); default `path`.
    """
    options = options or RuntimeOptions()
    path = Path(path)
    if options.runtime == "onnxruntime":
        if not is_onnx(path):
            raise EdgeError(
                f"{path.name} is not an ONNX model (.onnx); --runtime onnxruntime runs the .onnx of "
                "`edge export --format onnx`; a .tflite runs with the default runtime (litert)"
            )
        from edge.onnx_model import OnnxModel

        return OnnxModel(path, num_threads=num_threads, providers=options.providers, log=log)
    if is_onnx(path):
        raise EdgeError(
            f"{path.name} is an ONNX model: run it with --runtime onnxruntime (pip install 'edge-inspect[onnx]'), "
            "or give the .tflite of `edge export`"
        )
    if options.delegate is None:
        return _cpu_model(path, num_threads)
    try:
        return _delegated_model(path, options.delegate, num_threads)
    except DelegateError as exc:
        if options.delegate_fallback != "cpu":
            raise EdgeError(f"{exc}; or let it run on the CPU instead: --delegate-fallback cpu") from None
        fallback = cpu_path or path
        log(f"{exc}: running on the CPU instead (delegate_fallback: cpu)")
        model = _cpu_model(fallback, num_threads)
        model.runtime = f"{model.runtime} (CPU fallback: delegate {options.delegate} did not load)"
        return model


def _cpu_model(path: Path, num_threads: Optional[int]) -> TFLiteModel:
    if path.is_file() and compiled_for_edgetpu(path):
        raise EdgeError(
            f"{path.name} is compiled for the Edge TPU and runs only with it: give --delegate edgetpu "
            "(with a Coral attached), or run the CPU model it was compiled from"
        )
    return TFLiteModel(path, num_threads=num_threads)


def _delegated_model(path: Path, delegate: str, num_threads: Optional[int]) -> TFLiteModel:
    if delegate == "edgetpu" and path.is_file() and not compiled_for_edgetpu(path):
        raise DelegateError(
            f"{path.name} is not compiled for the Edge TPU (run edgetpu_compiler on it, see docs/runtime.md, "
            "and put the compiled model in the bundle with `edge calibrate --edgetpu-model`)"
        )
    loaded = load_delegate(delegate)
    model = TFLiteModel(path, num_threads=num_threads, delegates=[loaded])
    model.runtime = f"{model.backend} + {delegate_label(delegate)} delegate"
    return model


def delegate_label(delegate: str) -> str:
    return {"edgetpu": "Edge TPU", "gpu": "GPU"}.get(delegate, delegate)


def delegate_library(delegate: str) -> str:
    """edgetpu / gpu → their library's name (found on the loader's path); anything else is a path."""
    if delegate in DELEGATE_LIBRARIES:
        return DELEGATE_LIBRARIES[delegate]
    if not Path(delegate).expanduser().is_file():
        raise DelegateError(f"delegate library not found: {delegate}")
    return str(Path(delegate).expanduser())


def load_delegate(delegate: str):
    """The LiteRT delegate object; a library that is missing or is not a delegate is one line saying which."""
    library = delegate_library(delegate)
    backend, _ = interpreter_backend()
    module = sys.modules.get(
        {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}.get(
            backend, "tensorflow.lite.experimental"
        )
    )
    loader = getattr(module, "load_delegate", None)
    if loader is None:
        raise EdgeError(f"interpreter {backend} cannot load delegates; install ai-edge-litert")
    problem = None
    # A library that fails half-way leaves a Delegate whose __del__ raises; its "Exception ignored"
    # would print a traceback after our one line.
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _info: None
    try:
        try:
            return loader(library)
        except (OSError, ValueError, RuntimeError) as exc:
            problem = str(exc).strip() or type(exc).__name__
    finally:
        sys.unraisablehook = hook
    hint = {
        "edgetpu": "install the Edge TPU runtime (apt install libedgetpu1-std) and plug the Coral in",
        "gpu": "build or install the LiteRT GPU delegate (see docs/install-pi-jetson.md)",
    }.get(delegate, "check the path is a LiteRT delegate library for this machine")
    named = f"delegate {delegate} ({library})" if library != delegate else f"delegate library {delegate}"
    raise DelegateError(f"{named} could not load: {problem}; {hint}")
