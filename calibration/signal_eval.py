"""`edge eval BUNDLE --data SIGNAL_FILE`: how well signal bundles tell abnormal windows from normal ones.

Each bundle scores the windows of a labelled file with its exported model through the device's
own code (calibration.signal.window_scorer: the device's normalisation, interpreter and detector),
so an int8 bundle and its float twin (`--compare`) are measured on the very same windows. Per
bundle: AUROC (no threshold involved), and accuracy, precision, recall and F1 at the bundle's own
calibrated threshold (the device's rule, score > threshold). numpy only: no scikit-learn needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from calibration.metrics import detection_metrics
from calibration.signal import window_scorer
from edge.bundle import Bundle, load_bundle
from edge.errors import EdgeError
from edge.model import TFLiteModel
from edge.signal_data import read_signal_file


@dataclass
class SignalEval:
    bundle: Path
    quantization: str
    threshold: float
    metrics: dict

    @property
    def accuracy(self) -> float:
        m = self.metrics
        return (m["tp"] + m["tn"]) / max(1, m["tp"] + m["tn"] + m["fp"] + m["fn"])

    def row(self) -> str:
        m = self.metrics
        return (
            f"| {self.bundle} | {self.quantization} | {m['image_auroc']:.4f} | {self.accuracy:.4f} | "
            f"{m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {self.threshold:.6g} | "
            f"{m['tp']} / {m['fp']} / {m['tn']} / {m['fn']} |"
        )


HEADER = (
    "| bundle | quantization | AUROC | accuracy | precision | recall | F1 | threshold | tp / fp / tn / fn |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def _signal_bundle(path: Path) -> Bundle:
    bundle = load_bundle(path)
    if bundle.manifest.signal is None:
        raise EdgeError(f"{path} is an image bundle: evaluate it on an MVTec-style folder, not a signal file")
    return bundle


def evaluate_bundle(
    bundle: Bundle, data: str | Path, normal_label: Optional[float] = None, threads: Optional[int] = None
) -> SignalEval:
    """Score the labelled windows of `data` with `bundle`; the metrics at its threshold."""
    spec = bundle.manifest.signal
    assert spec is not None
    signal_set = read_signal_file(data, spec.length, spec.hop)
    if signal_set.labels is None:
        raise EdgeError(
            f"{Path(data).name} has no labels: evaluation needs a class label first on each line "
            "(normal and abnormal windows), as the UCR files have"
        )
    label = normal_label if normal_label is not None else spec.normal_label
    normal, abnormal = signal_set.split(label)
    if not normal.any() or not abnormal.any():
        raise EdgeError(
            f"{Path(data).name} needs both normal (label {signal_set.normal_label(label):g}) and abnormal windows"
        )
    score = window_scorer(TFLiteModel(bundle.model_path, num_threads=threads), bundle.manifest.card())
    scores = score(signal_set.windows)
    metrics = detection_metrics(scores[normal], scores[abnormal], bundle.threshold)
    return SignalEval(bundle.path, bundle.manifest.model.quantization, bundle.threshold, metrics)


def evaluate_signal(
    bundles: list[Path],
    data: Path,
    out: Optional[Path] = None,
    *,
    normal_label: Optional[float] = None,
    threads: Optional[int] = None,
    command: str = "",
    log: Callable[[str], None] = print,
) -> list[SignalEval]:
    """Every bundle on the same file; a table on `log`, and in OUT (a .md file or a folder's quality.md)."""
    loaded = [_signal_bundle(Path(b)) for b in bundles]  # every path checked before any scoring
    results = [evaluate_bundle(b, data, normal_label, threads) for b in loaded]
    first = results[0].metrics
    lines = [
        f"{first['n_normal']} normal + {first['n_anomalous']} abnormal windows of {data}",
        "",
        HEADER,
        *(r.row() for r in results),
    ]
    for line in lines:
        log(line)
    if out is not None:
        target = out if out.suffix == ".md" else out / "quality.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        head = ["# Signal evaluation", ""] + ([f"Command: `{command}`", ""] if command else [])
        target.write_text("\n".join(head + lines) + "\n")
        log(f"wrote {target}")
    return results
