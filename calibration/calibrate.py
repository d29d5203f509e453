"""`calibrate()`: an exported .tflite + real images → a deployable bundle with its report.

Steps: read the model's sidecar card (preprocessing, kind, default score) → list the images
(calibration.data) → score them in batches with the .tflite through the device's own code
(calibration.scoring) → pick the threshold (calibration.thresholds) → statistics and metrics
(calibration.metrics) → write the bundle with edge.bundle.write_bundle and BUNDLE/report/.

With a frame geometry (ROI, inspection mask, tiles: edge.tiling.GeometryConfig) every image is
scored by the device's own FrameScorer + Tiler, exactly as edge.pipeline scores a frame, and the
bundle records it: the ROI in `preprocessing.roi`, tiling and mask in `geometry` (the mask copied
into the bundle as mask.png), so `edge run` with the bundle alone inspects the same way.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from calibration import data as cal_data
from calibration.confidence import check_precision, threshold_record
from calibration.health_reference import write_health_reference
from calibration.manifest import manifest_from_card
from calibration.metrics import detection_metrics, false_alarm_rate, score_stats
from calibration.report import ReportData, describe_geometry, write_report
from calibration.scoring import BatchScorer, ScoredImages, kind_spec, score_files, score_frames
from calibration.thresholds import (
    Method,
    check_anomalous,
    check_normal_count,
    compute_threshold,
    parse_method,
    resolution_note,
)
from calibration.variants import (
    check_onnx_card,
    check_same_tensors,
    keep_other_scores,
    log_variant_summary,
    onnx_only,
    runtimes_for,
    write_variant_scores,
)
from edge.bundle import (
    MANIFEST,
    Bundle,
    Manifest,
    ModelCard,
    ScoreStats,
    Threshold,
    VariantCalibration,
    load_bundle,
    read_card,
    sha256_file,
    write_bundle,
)
from edge.errors import EdgeError
from edge.messages import to_stderr as _stderr
from edge.model import ModelBase
from edge.preprocess import Preprocessing, Preprocessor
from edge.runtime import RuntimeOptions, open_model, options_for_file
from edge.schema import first_problem
from edge.scoring import ScoreConfig
from edge.tiling import FrameScorer, GeometryConfig, Tiler, load_mask

REPORT_DIR = "report"
MASK_FILE = "mask.png"  # the inspection mask inside the bundle (PNG: lossless, read back bit for bit)
FEW_NORMAL = 20
REPORT_SKIPPED = (
    "report skipped: matplotlib is not installed (a device install); "
    "pip install 'edge-inspect[desktop]' for report/ with its plots and index.html"
)
MANY_FLAGGED = 0.25  # fraction of normal images over the threshold worth a warning


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
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
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
        old_mask = old.manifest.geometry.mask if old.manifest.geometry is not None else None
        if old_mask is not None and not Path(old_mask).is_absolute() and (out / old_mask).is_file():
            (out / old_mask).unlink()  # a new mask is written from memory; none is stale
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
    error: Optional[str] = None,
    batch_size: int = 32,
    threads: Optional[int] = None,
    progress: bool = True,
    log: Callable[[str], None] = _stderr,
    geometry: Optional[GeometryConfig] = None,
    card: Optional[ModelCard] = None,
    confidence: float = 0.95,
    precision: Optional[float] = None,
    runtime: Optional[RuntimeOptions] = None,
    variants: Optional[dict[str, Path]] = None,
    keep: Optional[Bundle] = None,
) -> Bundle:
    """Calibrate the threshold of an exported model and write a bundle folder.

    model_path: the .tflite from `edge export`, with its sidecar card `<model>.json` beside it.
    normal:     folder of good images, or an MVTec AD root (its test/good; see calibration.data).
    anomalous:  optional folder of defective images (or an MVTec root: its test/<defect> folders).
    method:     "quantile:Q", "meanstd:K", "fpr:R" or "f1" (see calibration.thresholds).
    out:        the bundle folder to write (created; an old bundle there is replaced).
    score:      "mean", "max_blur" or "topk_mean" to override the card's score kind;
                blur_sigma / topk override its parameters; error ("squared" or "ssim") how an
                autoencoder's reconstruction is compared with its input.
    geometry:   ROI, inspection mask (a path relative to the working directory) and tiling, as
                `edge run --roi/--mask/--tile` (edge.tiling.geometry_with_options builds it from
                those strings). Given: images are scored frame by frame by the device's
                FrameScorer; None: the faster batched path (the same numbers without geometry).
    card:       the model card to use instead of the sidecar beside the model (a bundle's own,
                Manifest.card(), when a bundle is recalibrated: calibration.recalibrate).
    confidence: of the intervals in the threshold record, and of fpr-upper's bound.
    precision:  fpr-type methods: the ± half-width the record's "normal images needed" is for
                (default: half the target rate).
    runtime:    how the model runs (edge.runtime; default: LiteRT for a .tflite, ONNX Runtime for an .onnx).
    variants:   accelerator -> model file kept in the bundle beside MODEL ("edgetpu": the
                edgetpu_compiler output, which scores the images when runtime.delegate is edgetpu;
                "onnxruntime": the .onnx of the same run, scored through ONNX Runtime for its own
                threshold, Manifest.variant_calibration; `runtime.providers` are its providers).
    keep:       recalibrating (calibration.recalibrate): the parent bundle. Only the model `runtime`
                runs is scored again (the ONNX model with runtime onnxruntime, else the main one);
                the other's threshold and scores are kept from it.
    Returns the written Bundle (already re-read and hash-checked with edge.bundle.load_bundle).
    """
    model_path, out = Path(model_path), Path(out)
    method = parse_method(method, confidence) if isinstance(method, str) else method
    check_precision(method, precision)
    card = card if card is not None else read_card(model_path)
    spec = kind_spec(card.kind)
    score_config = _score_config(card, score=score, blur_sigma=blur_sigma, topk=topk, error=error)
    images = cal_data.resolve(normal, anomalous)
    check_anomalous(method, len(images.anomalous))  # fail before minutes of scoring, not after
    check_normal_count(method, len(images.normal))
    _check_out(out)
    preprocessing, stored_geometry, mask = _geometry(card.preprocessing, geometry)
    for note in images.notes:
        log(f"note: {note}")

    variants = {k: Path(v) for k, v in (variants or {}).items()}
    onnx_path = variants.get("onnxruntime")  # an ONNX model beside MODEL: scored too, for its own threshold
    if onnx_path is not None and keep is None:
        onnx_card = check_onnx_card(model_path, card, onnx_path)  # before minutes of scoring
    main_runtime, onnx_runtime = runtimes_for(runtime, onnx_path)
    # Recalibrating (`keep`: the parent bundle): only the model of the runtime asked for is scored again;
    # the other calibration is kept. Otherwise every model is scored.
    score_main = not onnx_only(keep, onnx_path, runtime)
    score_onnx = onnx_path is not None and (keep is None or not score_main)
    model = _open_model(model_path, main_runtime, variants, threads, log)
    model.check_frame_shape(card.preprocessing.input_shape)
    onnx_model = open_model(onnx_path, onnx_runtime, threads, log) if onnx_path is not None else None
    if onnx_model is not None:
        check_same_tensors(model, onnx_model)
    scoring = _Scoring(card, score_config, preprocessing, stored_geometry, mask, geometry, batch_size, spec)
    if geometry is not None:
        log(f"geometry: {describe_geometry(preprocessing, stored_geometry)}")
    if score_main:
        main = _calibrate_on(model, model_path, scoring, images, method, precision, progress, log)
    else:
        main = _kept(keep)  # type: ignore[arg-type]  # keep is set when the main model is not scored
    manifest = manifest_from_card(
        card,
        model,
        model_path.name,
        main.record,
        preprocessing=preprocessing,
        score=score_config,
        normal_scores=main.normal_stats,
        anomalous_scores=main.anomalous_stats,
        metrics=main.metrics,
        geometry=stored_geometry,
    )
    onnx = None
    if score_onnx:
        onnx = _calibrate_on(onnx_model, onnx_path, scoring, images, method, precision, progress, log)  # type: ignore[arg-type]
        # its quantization: from its card, or from the parent when recalibrating (no card in a bundle)
        quantization = onnx_card.quantization if keep is None else _onnx_quantization(keep)
        manifest.variant_calibration["onnxruntime"] = onnx.variant_calibration(quantization)
    elif onnx_path is not None and keep is not None:
        manifest.variant_calibration.update(keep.manifest.variant_calibration)
    _add_variants(out, manifest, variants, model_path)
    bundle = _write_bundle(out, manifest, model_path, mask)
    write_health_reference(bundle.path, images.normal)  # what edge/health.py compares with
    report = None
    if main.scored is not None:
        notes = [*images.notes, *main.notes]
        report = _write_report(bundle, images, main.scored, spec.score_label, notes, main.frame_scorer, main.tiler)
    if onnx is not None:
        write_variant_scores(bundle, "onnxruntime", onnx.scored)
    if keep is not None:
        keep_other_scores(keep, bundle, score_main)
    if main.scored is not None:
        _summary(bundle, main.scored.normal.scores, report, log)
    if onnx is not None:
        log_variant_summary(bundle, "onnxruntime", onnx.scored.normal.scores, log)
    return load_bundle(bundle.path)


@dataclass
class Calibrated:
    """One model's calibration: its threshold record, score statistics and metrics; what scored it
    (None when it was kept from the parent bundle: calibrate's `keep`)."""

    record: Threshold
    normal_stats: Optional[ScoreStats]
    anomalous_stats: Optional[ScoreStats]
    metrics: Optional[dict]
    scored: Optional[_Scored] = None
    notes: list[str] = field(default_factory=list)
    frame_scorer: Optional[FrameScorer] = None
    tiler: Optional[Tiler] = None

    def variant_calibration(self, quantization: Optional[str]) -> VariantCalibration:
        return VariantCalibration(
            threshold=self.record,
            normal_scores=self.normal_stats,
            anomalous_scores=self.anomalous_stats,
            metrics=self.metrics,
            quantization=quantization,  # type: ignore[arg-type]  # a card's, already validated
        )


def _onnx_quantization(parent: Bundle) -> Optional[str]:
    own = parent.manifest.variant_calibration.get("onnxruntime")
    return own.quantization if own is not None else None


def _kept(parent: Bundle) -> Calibrated:
    """The parent's main calibration, kept while its ONNX model is recalibrated."""
    m = parent.manifest
    return Calibrated(m.threshold, m.normal_scores, m.anomalous_scores, m.metrics)


@dataclass
class _Scoring:
    """How every model of the bundle scores the images: one card, score, geometry and batch size."""

    card: ModelCard
    score: ScoreConfig
    preprocessing: Preprocessing
    stored_geometry: Optional[GeometryConfig]
    mask: Optional[np.ndarray]
    geometry: Optional[GeometryConfig]  # as asked: None scores whole images in batches
    batch_size: int
    spec: object  # calibration.scoring.KindSpec


def _calibrate_on(
    model: ModelBase,
    model_path: Path,
    how: _Scoring,
    images: cal_data.CalibrationSet,
    method: Method,
    precision: Optional[float],
    progress: bool,
    log: Callable[[str], None],
) -> Calibrated:
    """Score the images with `model` through the device's code and set its threshold on its own scores."""
    spec = how.spec
    # The device's own frame path (edge.pipeline.Pipeline builds the same two objects): it scores
    # when a geometry is given, and draws the maps of the report's thumbnails either way.
    tiler = Tiler(how.preprocessing, how.stored_geometry, mask=how.mask)
    frame_scorer = FrameScorer(spec.make_detector(model, how.card, how.score), tiler)  # type: ignore[attr-defined]
    if how.geometry is None:
        batch = spec.make_scorer(model, how.card, how.score)  # type: ignore[attr-defined]
        scorer = _batch_scorer(Preprocessor(how.preprocessing), batch, how.batch_size)
    else:
        scorer = _frame_by_frame_scorer(frame_scorer)
    log(
        f"calibrating {model_path.name} ({how.card.kind}, {how.card.quantization}, on {model.runtime}) on "
        f"{_image_counts(images)} images, score {_describe(how.card, how.score)}, method {method}"
    )
    scored = _score_images(images, scorer, progress)
    threshold, metrics, notes = _threshold(method, scored)
    for n in notes:
        log(f"note: {n}")
    anomalous_scores = scored.anomalous.scores if scored.anomalous.paths else None
    record = threshold_record(method, threshold, scored.normal.scores, anomalous_scores, precision)
    record.runtime = model.runtime  # which runtime's scores set it: calibrate what you deploy
    return Calibrated(
        record=record,
        normal_stats=score_stats(scored.normal.scores),
        anomalous_stats=score_stats(scored.anomalous.scores) if scored.anomalous.paths else None,
        metrics=metrics,
        scored=scored,
        notes=notes,
        frame_scorer=frame_scorer,
        tiler=tiler,
    )


def _open_model(
    model_path: Path, runtime: Optional[RuntimeOptions], variants: dict[str, Path], threads: Optional[int], log
) -> ModelBase:
    """The model that scores the calibration images: the deployed one, through the runtime it will run on.

    With --delegate edgetpu and a compiled model given, the compiled model through the Edge TPU (the
    CPU model when the delegate cannot load and the fallback is allowed); otherwise MODEL itself.
    """
    runtime = runtime or options_for_file(model_path)
    path = model_path
    if runtime.delegate == "edgetpu" and "edgetpu" in variants:
        path = Path(variants["edgetpu"])
    model = open_model(path, runtime, threads, log, cpu_path=model_path)
    if "edgetpu" in variants and model.path == model_path:
        log(
            "note: the threshold is calibrated on the CPU model; the Edge-TPU-compiled model gives slightly "
            "different scores: recalibrate on the device with `edge calibrate --from BUNDLE --delegate edgetpu`"
        )
    return model


def _add_variants(out: Path, manifest: Manifest, variants: dict[str, Path], model_path: Path) -> None:
    """Copy the accelerator models into the bundle beside the CPU model; bundle.json names and hashes each."""
    for accelerator, source in variants.items():
        source = Path(source)
        if not source.is_file():
            raise EdgeError(f"{accelerator} model not found: {source}")
        if source.name == model_path.name:
            raise EdgeError(f"the {accelerator} model {source} has the CPU model's file name; rename one of them")
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / source.name)
        manifest.model.variants[accelerator] = source.name  # type: ignore[index]
        manifest.files[source.name] = sha256_file(out / source.name)


def _describe(card: ModelCard, score: ScoreConfig) -> str:
    return card.model_copy(update={"score": score}).describe_score()


def _image_counts(images: cal_data.CalibrationSet) -> str:
    return f"{len(images.normal)} normal" + (f" + {len(images.anomalous)} anomalous" if images.anomalous else "")


def _score_config(
    card: ModelCard,
    *,
    score: Optional[str],
    blur_sigma: Optional[float],
    topk: Optional[float],
    error: Optional[str],
) -> ScoreConfig:
    """The card's score with the options given on the command line in its place."""
    overrides = {
        k: v
        for k, v in (("kind", score), ("blur_sigma", blur_sigma), ("topk", topk), ("error", error))
        if v is not None
    }
    if error is not None and card.kind != "autoencoder":
        raise EdgeError(
            f"--error {error} applies to autoencoders (a reconstruction to compare); this model is {card.kind}"
        )
    try:
        return ScoreConfig(**{**card.score.model_dump(), **overrides})
    except ValueError as exc:
        raise EdgeError(f"bad score option: {first_problem(exc)}") from None


# (files, what they are, progress hook) → their scores
ImageScorer = Callable[[list[Path], str, Optional[Callable[[int], None]]], ScoredImages]


def _batch_scorer(preprocessor: Preprocessor, batch_scorer: BatchScorer, batch_size: int) -> ImageScorer:
    """Without a geometry: whole images resized to the model input, scored in batches (the faster path)."""
    return lambda files, what, advance: score_files(files, preprocessor, batch_scorer, batch_size, what, advance)


def _frame_by_frame_scorer(frame_scorer: FrameScorer) -> ImageScorer:
    """With a geometry: each image scored as `edge run` scores a frame (ROI, tiles, mask)."""
    return lambda files, what, advance: score_frames(files, frame_scorer, what, advance)


@dataclass
class _Scored:
    """The scores of both image sets, with the defect type (folder name) of each scored anomalous image."""

    normal: ScoredImages
    anomalous: ScoredImages
    anomalous_groups: list[str]


def _score_images(images: cal_data.CalibrationSet, scorer: ImageScorer, progress: bool) -> _Scored:
    with _Progress(len(images.normal) + len(images.anomalous), progress) as bar:
        normal = scorer(images.normal, "normal images", bar.stage("normal"))
        anomalous = scorer(images.anomalous, "anomalous images", bar.stage("anomalous")) if images.anomalous else None
    anomalous = anomalous or ScoredImages()
    groups_by_path = dict(zip(images.anomalous, images.anomalous_groups, strict=True))
    return _Scored(normal, anomalous, [groups_by_path[p] for p in anomalous.paths])


def _threshold(method: Method, scored: _Scored) -> tuple[float, Optional[dict], list[str]]:
    """(threshold, metrics when anomalous images were scored, notes for the report)."""
    normal, anomalous = scored.normal.scores, scored.anomalous.scores if scored.anomalous.paths else None
    notes = []
    for what, images in (("normal", scored.normal), ("anomalous", scored.anomalous)):
        if images.skipped:
            notes.append(
                f"skipped {len(images.skipped)} unreadable or truncated {what} file(s), e.g. {images.skipped[0]}"
            )
    if len(normal) < FEW_NORMAL:
        notes.append(f"only {len(normal)} normal images: the threshold is rough; calibrate on a few hundred if you can")
    note = resolution_note(method, len(normal))
    if note:
        notes.append(note)
    threshold = compute_threshold(method, normal, anomalous)
    metrics = None
    if anomalous is not None:
        metrics = detection_metrics(normal, anomalous, threshold, scored.anomalous_groups)
    flagged = false_alarm_rate(normal, threshold)
    if flagged > MANY_FLAGGED:
        note = f"{flagged:.0%} of the normal images score above the threshold: expect about that many false alarms"
        if metrics is not None and metrics["image_auroc"] < 0.7:
            note += (
                f"; the scores barely separate normal from anomalous images (AUROC {metrics['image_auroc']:.2f}): "
                "try another --score or a better model"
            )
        notes.append(note)
    return threshold, metrics, notes


def _write_bundle(out: Path, manifest: Manifest, model_path: Path, mask: Optional[np.ndarray]) -> Bundle:
    """Replace an old bundle in `out` with this one: the model, bundle.json and the mask it names."""
    _clear_old_bundle(out, model_path)
    if mask is not None:
        out.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out / MASK_FILE), mask):
            raise EdgeError(f"could not write {out / MASK_FILE}; check the folder is writable and the disk not full")
    return write_bundle(out, manifest, model_path)


def _write_report(
    bundle: Bundle,
    images: cal_data.CalibrationSet,
    scored: _Scored,
    score_label: str,
    notes: list[str],
    frame_scorer: FrameScorer,
    tiler: Tiler,
) -> Optional[Path]:
    """BUNDLE/report/ when matplotlib is installed (the desktop extra); on a device install, None."""
    if not _has_matplotlib():
        return None
    sources = {"normal images": str(images.normal_source)}
    if images.anomalous_sources:
        sources["anomalous images"] = ", ".join(str(s) for s in images.anomalous_sources)
    return write_report(
        ReportData(
            manifest=bundle.manifest,
            normal_paths=scored.normal.paths,
            normal_scores=scored.normal.scores,
            anomalous_paths=scored.anomalous.paths,
            anomalous_scores=scored.anomalous.scores,
            anomalous_groups=scored.anomalous_groups,
            score_label=score_label,
            sources=sources,
            skipped={"normal": len(scored.normal.skipped), "anomalous": len(scored.anomalous.skipped)},
            notes=notes,
            frame_map=_frame_map(frame_scorer, tiler),
        ),
        bundle.path / REPORT_DIR,
    )


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401  (the desktop extra; a device install goes without)
    except ImportError:
        return False
    return True


def _frame_map(scorer: FrameScorer, tiler: Tiler) -> Callable[[np.ndarray], np.ndarray]:
    """image -> its anomaly map over the frame, as `edge run` draws it on a snapshot (report thumbnails).

    Only the few images the report shows go through it again, so keeping every map is not needed.
    """
    # a copy: the tiler reuses its buffers for the next frame of the same size
    return lambda image: np.array(tiler.frame_map(scorer.score(image).map, image.shape[:2]), np.float32)


def _geometry(preprocessing: Preprocessing, geometry: Optional[GeometryConfig]):
    """(preprocessing, geometry to store in the bundle, mask array) for a requested geometry.

    The ROI becomes the bundle's `preprocessing.roi` (the one `edge run --roi` replaces); tiling
    and mask go to `geometry`, the mask read now (a bad one fails before any scoring) and stored
    in the bundle as MASK_FILE, a path relative to the bundle as edge.pipeline expects.
    """
    if geometry is None:
        return preprocessing, None, None
    if geometry.roi is not None:
        preprocessing = preprocessing.model_copy(update={"roi": tuple(geometry.roi)})
    mask = load_mask(geometry.mask) if geometry.mask is not None else None
    if geometry.tiling is None and mask is None:
        return preprocessing, None, None
    return preprocessing, GeometryConfig(mask=MASK_FILE if mask is not None else None, tiling=geometry.tiling), mask


def _summary(bundle: Bundle, normal_scores: np.ndarray, report: Optional[Path], log: Callable[[str], None]) -> None:
    m = bundle.manifest
    t = m.threshold.value
    score = m.describe_score() if m.model.kind == "classifier" else m.score.kind
    log(
        f"threshold {t:.6g} by {m.threshold.method} (score {score}); "
        f"{false_alarm_rate(normal_scores, t):.2%} of normal images over it"
    )
    if m.metrics:
        k = m.metrics
        log(
            f"image AUROC {k['image_auroc']:.4f}; at the threshold: precision {k['precision']:.3f}, "
            f"recall {k['recall']:.3f}, F1 {k['f1']:.3f} (tp {k['tp']}, fp {k['fp']}, tn {k['tn']}, fn {k['fn']})"
        )
    else:
        log("no anomalous images given: no AUROC/F1 (pass --anomalous DIR to measure them)")
    for line in m.threshold.describe_confidence():
        log(line)
    if report is None:
        log(REPORT_SKIPPED)
        log(f"bundle: {bundle.path}")
    else:
        log(f"bundle: {bundle.path} (report: {report})")
