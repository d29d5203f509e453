"""Helpers the benchmark suite and the tests share; not part of the device package.

    from benchmarks.helpers import quick_bundle

(the repository root is on sys.path: benchmarks/run_perf.py puts it there, and the tests run with
`python -m pytest` from the root.)
"""

from __future__ import annotations

from pathlib import Path

from edge.bundle import Bundle, Manifest, ModelInfo, TensorSpec, Threshold, read_card, write_bundle
from edge.model import TFLiteModel


def quick_bundle(model_path: str | Path, out_dir: str | Path, threshold: float, method: str = "hand-set") -> Bundle:
    """A bundle around an exported .tflite (its card `<model>.json` beside it) with a given threshold.

    For benchmarks and tests, where the threshold does not matter; real bundles come from
    `edge calibrate`.
    """
    model_path = Path(model_path)
    card = read_card(model_path)
    model = TFLiteModel(model_path, num_threads=1)

    def spec(t) -> TensorSpec:
        return TensorSpec(name=t.name, shape=list(t.shape), dtype=t.dtype, scale=t.scale, zero_point=t.zero_point)

    manifest = Manifest(
        model=ModelInfo(
            file=model_path.name,
            sha256="",
            kind=card.kind,
            quantization=card.quantization,
            input=spec(model.input),
            outputs=[spec(o) for o in model.outputs],
        ),
        preprocessing=card.preprocessing,
        score=card.score,
        threshold=Threshold(value=float(threshold), method=method),
        extra=card.extra,
    )
    return write_bundle(out_dir, manifest, model_path)
