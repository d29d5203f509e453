"""`calibrate()`: an exported .tflite + real images → a deployable bundle with its report.

Steps: read the model's sidecar card (preprocessing, kind, default score) → list the images
(calibration.data) → score them in batches with the .tflite through the device's own code
(calibration.scoring) → pick the threshold (calibration.thresholds) → statistics and metrics
(calibration.metrics) → write the bundle with edge.bundle.write_bundle and BUNDLE/report/.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.bundle import (
    MANIFEST,
    Bundle,
    Manifest,
    ModelInfo,
    TensorSpec,
    Threshold,
    load_bundle,
    read_card,
    write_bundle,
)
from edge.errors import EdgeError
from edge.model import TensorInfo, TFLiteModel
from edge.preprocess import Preprocessor
from edge.scoring import ScoreConfig

from calibration import data as cal_data
from calibration.metrics import detection_metrics, false_alarm_rate, score_stats
from calibration.report import ReportData, write_report
from calibration.scoring import ScoredImages, kind_spec, score_files
from calibration.thresholds import Method, check_anomalous, compute_threshold, parse_method, resolution_note

REPORT_DIR = "report"
FEW_NORMAL = 20
MANY_FLAGGED = 0.25  # fraction of normal images over the threshold worth a warning


def _spec(info: TensorInfo) -> TensorSpec:
    return TensorSpec(**info.to_dict())


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class _Progress:
    """A rich progress bar on stderr over every file to score, or nothing."""

    total: int
    enabled: bool

    def __enter__(self):
        self._bar = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("scoring", total=self.total)
        return self

    def stage(self, name: str) -> Callable[[int], None] | None:
        if self._bar is None:
            return None
        self._bar.update(self._task, description=f"scoring {name}")
        return lambda n: self._bar.advance(self._task, n)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _check_out(out: Path) -> None:
    """Refuse to write into a file or a folder that holds something other than a bundle."""
    if out.exists() and not out.is_dir():
        raise EdgeError(f"--out {out} is a file; pass a folder for the bundle")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise EdgeError(f"--out {out} is not empty and holds no bundle; choose a new or empty folder")


def _clear_old_bundle(out: Path, model_path: Path) -> None:
    """An old bundle in `out` is replaced: drop its model (unless it is the one being calibrated) and report."""
    if not (out / MANIFEST).is_file():
        return
    try:
        old = load_bundle(out, verify=False)
    except EdgeError:
        old = None
    if old is not None:
        old_model = out / old.manifest.model.file
        if old_model.is_file() and old_model.resolve() != model_path.resolve():
            old_model.unlink()
    if (out / REPORT_DIR).is_dir():
        shutil.rmtree(out / REPORT_DIR)


def calibrate(
    model_path: str | Path,
    normal: str | Path,
    anomalous: Optional[str | Path] = None,
    method: str | Method = "quantile:0.999",
    out: str | Path = "bundle",
    *,
    score: Optional[str] = None,
    blur_sigma: Optional[float] = None,
    topk: Optional[float] = None,
    batch_size: int = 32,
    threads: Optional[int] = None,
    progress: bool = True,
    log: Callable[[str], None] = _stderr,
) -> Bundle:
    """Calibrate the threshold of an exported model and write a bundle folder.

    model_path: the .tflite from `edge export`, with its sidecar card `<model>.json` beside it.
    normal:     folder of good images, or an MVTec AD root (its test/good; see calibration.data).
    anomalous:  optional folder of defective images (or an MVTec root: its test/<defect> folders).
    method:     "quantile:Q", "meanstd:K", "fpr:R" or "f1" (see calibration.thresholds).
    out:        the bundle folder to write (created; an old bundle there is replaced).
    score:      "mean", "max_blur" or "topk_mean" to override the card's score kind;
                blur_sigma / topk override its parameters.
    Returns the written Bundle (already re-read and hash-checked with edge.bundle.load_bundle).
    """
    model_path = Path(model_path)
    out = Path(out)
    method = parse_method(method) if isinstance(method, str) else method
    card = read_card(model_path)
    spec = kind_spec(card.kind)
    overrides = {k: v for k, v in (("kind", score), ("blur_sigma", blur_sigma), ("topk", topk)) if v is not None}
    try:
        score_config = ScoreConfig(**{**card.score.model_dump(), **overrides})
    except ValueError as exc:
        raise EdgeError(f"bad score option: {exc.errors()[0]['msg']}") from None  # type: ignore[attr-defined]

    images = cal_data.resolve(normal, anomalous)
    # Fail before minutes of scoring, not after.
    check_anomalous(method, len(images.anomalous))
    _check_out(out)
    for note in images.notes:
        log(f"note: {note}")

    model = TFLiteModel(model_path, num_threads=threads)
    model.check_frame_shape(card.preprocessing.input_shape)
    preprocessor = Preprocessor(card.preprocessing)
    scorer = spec.make_scorer(model, card, score_config)
    log(
        f"calibrating {model_path.name} ({card.kind}, {card.quantization}, interpreter {model.backend}) on "
        f"{len(images.normal)} normal" + (f" + {len(images.anomalous)} anomalous" if images.anomalous else "")
        + f" images, score {score_config.kind}, method {method}"
    )
    with _Progress(len(images.normal) + len(images.anomalous), progress) as bar:
        normal_scored = score_files(images.normal, preprocessor, scorer, batch_size, "normal images", bar.stage("normal"))
        anomalous_scored = (
            score_files(images.anomalous, preprocessor, scorer, batch_size, "anomalous images", bar.stage("anomalous"))
            if images.anomalous else ScoredImages()
        )
    groups_by_path = dict(zip(images.anomalous, images.anomalous_groups))
    anomalous_groups = [groups_by_path[p] for p in anomalous_scored.paths]
    notes = list(images.notes)
    for what, scored in (("normal", normal_scored), ("anomalous", anomalous_scored)):
        if scored.skipped:
            notes.append(f"skipped {len(scored.skipped)} unreadable or truncated {what} file(s), e.g. {scored.skipped[0]}")
    n_normal = len(normal_scored.scores)
    if n_normal < FEW_NORMAL:
        notes.append(f"only {n_normal} normal images: the threshold is rough; calibrate on a few hundred if you can")
    note = resolution_note(method, n_normal)
    if note:
        notes.append(note)
    threshold = compute_threshold(method, normal_scored.scores, anomalous_scored.scores if anomalous_scored.paths else None)
    metrics = (
        detection_metrics(normal_scored.scores, anomalous_scored.scores, threshold, anomalous_groups)
        if anomalous_scored.paths else None
    )
    flagged = false_alarm_rate(normal_scored.scores, threshold)
    if flagged > MANY_FLAGGED:
        note = f"{flagged:.0%} of the normal images score above the threshold: expect about that many false alarms"
        if metrics is not None and metrics["image_auroc"] < 0.7:
            note += (f"; the scores barely separate normal from anomalous images (AUROC {metrics['image_auroc']:.2f}): "
                     "try another --score or a better model")
        notes.append(note)
    for n in notes[len(images.notes):]:
        log(f"note: {n}")
    manifest = Manifest(
        model=ModelInfo(
            file=model_path.name,
            sha256="",  # write_bundle fills it from the copied file
            kind=card.kind,
            quantization=card.quantization,
            input=_spec(model.input),
            outputs=[_spec(o) for o in model.outputs],
        ),
        preprocessing=card.preprocessing,
        score=score_config,
        threshold=Threshold(value=threshold, method=str(method)),
        normal_scores=score_stats(normal_scored.scores),
        anomalous_scores=score_stats(anomalous_scored.scores) if anomalous_scored.paths else None,
        metrics=metrics,
        extra=dict(card.extra),
    )
    _clear_old_bundle(out, model_path)
    bundle = write_bundle(out, manifest, model_path)
    sources = {"normal images": str(images.normal_source)}
    if images.anomalous_sources:
        sources["anomalous images"] = ", ".join(str(s) for s in images.anomalous_sources)
    report = write_report(
        ReportData(
            manifest=manifest,
            normal_paths=normal_scored.paths,
            normal_scores=normal_scored.scores,
            anomalous_paths=anomalous_scored.paths,
            anomalous_scores=anomalous_scored.scores,
            anomalous_groups=anomalous_groups,
            score_label=spec.score_label,
            sources=sources,
            skipped={"normal": len(normal_scored.skipped), "anomalous": len(anomalous_scored.skipped)},
            notes=notes,
        ),
        bundle.path / REPORT_DIR,
    )
    _summary(bundle, normal_scored.scores, report, log)
    return load_bundle(bundle.path)


def _summary(bundle: Bundle, normal_scores: np.ndarray, report: Path, log: Callable[[str], None]) -> None:
    m = bundle.manifest
    t = m.threshold.value
    log(f"threshold {t:.6g} by {m.threshold.method} (score {m.score.kind}); "
        f"{false_alarm_rate(normal_scores, t):.2%} of normal images over it")
    if m.metrics:
        k = m.metrics
        log(f"image AUROC {k['image_auroc']:.4f}; at the threshold: precision {k['precision']:.3f}, "
            f"recall {k['recall']:.3f}, F1 {k['f1']:.3f} (tp {k['tp']}, fp {k['fp']}, tn {k['tn']}, fn {k['fn']})")
    else:
        log("no anomalous images given: no AUROC/F1 (pass --anomalous DIR to measure them)")
    log(f"bundle: {bundle.path} (report: {report})")
