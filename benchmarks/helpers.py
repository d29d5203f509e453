"""Helpers the benchmark suite and the tests share; not part of the device package.

    from benchmarks.helpers import quick_bundle

(the repository root is on sys.path: benchmarks/run_perf.py puts it there, and the tests run with
`python -m pytest` from the root.)
"""

from __future__ import annotations

from pathlib import Path

from calibration.manifest import manifest_from_card
from edge.bundle import Bundle, Threshold, read_card, write_bundle
from edge.model import TFLiteModel


def quick_bundle(model_path: str | Path, out_dir: str | Path, threshold: float, method: str = "hand-set") -> Bundle:
    """A bundle around an exported .tflite (its card `<model>.json` beside it) with a given threshold.

    For benchmarks and tests, where the threshold does not matter; real bundles come from
    `edge calibrate`.
    """
    model_path = Path(model_path)
    card = read_card(model_path)
    model = TFLiteModel(model_path, num_threads=1)
    manifest = manifest_from_card(card, model, model_path.name, Threshold(value=float(threshold), method=method))
    return write_bundle(out_dir, manifest, model_path)
