"""`edge calibrate` for a signal model: its threshold from the windows of a labelled signal file.

Calibrate what you deploy: the windows are normalised by edge.signal_data (the device's own
function), and scored with the exported .tflite by the device's detector (calibration.scoring,
from edge.detector.DETECTOR_FACTORIES): the numbers `edge run --signal` compares to the threshold.

`--normal FILE`: in a labelled file the normal label's windows (the label the model was trained
on as normal, unless --normal-label says) are the normal set and all the others the anomalous set; in an unlabelled
file every window is normal. `--anomalous FILE` adds windows that are all anomalous.
The tutorials' threshold is `meanstd:1` (mean + 1 std of the normal windows' errors).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from calibration.calibrate import _check_out, _clear_old_bundle
from calibration.manifest import manifest_from_card
from calibration.metrics import detection_metrics, false_alarm_rate, score_stats
from calibration.scoring import kind_spec
from calibration.thresholds import Method, check_anomalous, compute_threshold, parse_method, resolution_note
from edge.bundle import Bundle, Calibration, ModelCard, Threshold, load_bundle, write_bundle
from edge.decide import flagged
from edge.errors import EdgeError
from edge.messages import to_stderr as _stderr
from edge.model import TFLiteModel
from edge.signal_data import SignalSpec, read_signal_file, to_frame

FEW_NORMAL = 20


def labelled_windows(
    spec: SignalSpec, data: str | Path, anomalous: Optional[str | Path] = None, normal_label: Optional[float] = None
) -> tuple[np.ndarray, np.ndarray, Optional[float]]:
    """(normal windows, anomalous windows, the normal label used) of the files, as float (N, L)."""
    signal_set = read_signal_file(data, spec.length, spec.hop)
    if normal_label is None and signal_set.labels is not None:
        normal_label = spec.normal_label  # the label the model was trained on as normal
    normal, rest = signal_set.split(normal_label)
    parts = [signal_set.windows[rest]]
    if anomalous is not None:
        parts.append(read_signal_file(anomalous, spec.length, spec.hop).windows)
    return signal_set.windows[normal], np.concatenate(parts), signal_set.normal_label(normal_label)


def window_scorer(model: TFLiteModel, card: ModelCard) -> Callable[[np.ndarray], np.ndarray]:
    """float windows (N, L) → the device's scores (N,): normalised, 8-bit, the bundle's detector and score."""
    score_batch = kind_spec(card.kind).make_scorer(model, card, card.score)
    spec: SignalSpec = card.signal  # type: ignore[assignment]

    def score(windows: np.ndarray, batch: int = 256) -> np.ndarray:
        if len(windows) == 0:
            return np.empty(0, np.float64)
        frames = to_frame(windows, spec)
        return np.concatenate(
            [np.asarray(score_batch(frames[i : i + batch]), np.float64) for i in range(0, len(frames), batch)]
        )

    return score


def calibrate_signal(
    model_path: str | Path,
    data: str | Path,
    anomalous: Optional[str | Path] = None,
    method: str | Method = "meanstd:1",
    out: str | Path = "bundle",
    *,
    normal_label: Optional[float] = None,
    threads: Optional[int] = None,
    card: Optional[ModelCard] = None,
    log: Callable[[str], None] = _stderr,
) -> Bundle:
    """Score the windows of `data` (and `anomalous`) with the exported model; write the bundle `out`."""
    from edge.bundle import read_card

    model_path, out = Path(model_path), Path(out)
    method = parse_method(method) if isinstance(method, str) else method
    card = card if card is not None else read_card(model_path)
    if card.signal is None:
        raise EdgeError(f"{model_path.name} is an image model: calibrate it on folders of images (--normal DIR)")
    normal, abnormal, label = labelled_windows(card.signal, data, anomalous, normal_label)
    check_anomalous(method, len(abnormal))
    if len(normal) == 0:
        raise EdgeError(f"{Path(data).name} has no window of the normal label {label:g}; pass --normal-label")
    _check_out(out)
    model = TFLiteModel(model_path, num_threads=threads)
    model.check_frame_shape(card.preprocessing.input_shape)
    log(
        f"calibrating {model_path.name} ({card.signal.describe()}, {card.quantization}, interpreter "
        f"{model.backend}) on {len(normal)} normal + {len(abnormal)} anomalous windows"
        + (f" (normal label {label:g})" if label is not None else "")
        + f", score {card.score.describe()}, method {method}"
    )
    score = window_scorer(model, card)
    normal_scores, abnormal_scores = score(normal), score(abnormal)
    threshold = compute_threshold(method, normal_scores, abnormal_scores if len(abnormal) else None)
    notes = [resolution_note(method, len(normal))]
    if len(normal) < FEW_NORMAL:
        notes.append(f"only {len(normal)} normal windows: the threshold is rough")
    for note in filter(None, notes):
        log(f"note: {note}")
    metrics = detection_metrics(normal_scores, abnormal_scores, threshold) if len(abnormal) else None
    manifest = manifest_from_card(
        card,
        model,
        model_path.name,
        Threshold(value=threshold, method=str(method)),
        normal_scores=score_stats(normal_scores),
        anomalous_scores=score_stats(abnormal_scores) if len(abnormal) else None,
        metrics=metrics,
        calibration=Calibration(method=str(method), data=str(Path(data).resolve()), normal=len(normal), on="desktop"),
    )
    _clear_old_bundle(out, model_path)
    bundle = write_bundle(out, manifest, model_path)
    write_scores(bundle.path, normal_scores, abnormal_scores, threshold)
    _summary(bundle, normal_scores, log)
    return load_bundle(bundle.path)


def write_scores(bundle_dir: Path, normal: np.ndarray, abnormal: np.ndarray, threshold: float) -> Path:
    """BUNDLE/report/scores.csv as the image report writes it: the page's sensitivity dial and the drift
    watch read the exact calibration scores from it (edge/web/sensitivity.py)."""
    path = bundle_dir / "report" / "scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "group", "score", "over_threshold"])
        for label, scores in (("normal", normal), ("anomalous", abnormal)):
            for i, s in enumerate(scores):
                writer.writerow([f"window {i}", label, label, repr(float(s)), int(flagged(s, threshold))])
    return path


def _summary(bundle: Bundle, normal_scores: np.ndarray, log: Callable[[str], None]) -> None:
    m = bundle.manifest
    t = m.threshold.value
    log(
        f"threshold {t:.6g} by {m.threshold.method}; {false_alarm_rate(normal_scores, t):.2%} of normal windows over it"
    )
    if m.metrics:
        k = m.metrics
        accuracy = (k["tp"] + k["tn"]) / max(1, k["tp"] + k["tn"] + k["fp"] + k["fn"])
        log(
            f"AUROC {k['image_auroc']:.4f}; at the threshold: accuracy {accuracy:.3f}, precision {k['precision']:.3f}, "
            f"recall {k['recall']:.3f} (tp {k['tp']}, fp {k['fp']}, tn {k['tn']}, fn {k['fn']})"
        )
    else:
        log("no anomalous windows: no AUROC (give a labelled file, or --anomalous FILE)")
    log(f"bundle: {bundle.path}")
