"""`edge calibrate`: set the anomaly threshold on real images with the exported model → a bundle.

The work is done by the package `calibration` (numpy; matplotlib draws the report when it is
installed), imported inside the command so `edge run` never loads it. It runs on a device
install too; `--from BUNDLE` writes a new version of a bundle (calibration.recalibrate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.errors import EdgeError
from edge.tiling import geometry_with_options
from edge_cli import options

_METHOD_HELP = (
    "How the threshold is set (the device alerts when score > threshold): "
    "quantile:Q = Q-quantile of the normal scores; "
    "meanstd:K = mean + K*std of the normal scores; "
    "fpr:R = smallest threshold that flags at most a fraction R of the normal images; "
    "fpr-upper:R = smallest threshold whose false-alarm rate is at most R with --confidence "
    "(the exact upper bound of the rate; needs enough normal images, e.g. 59 for 0.05 at 95 %); "
    "f1 = F1-optimal on normal + anomalous images (needs anomalous images)."
)


_MODEL = typer.Argument(
    None,
    help="The .tflite from `edge export`; its card <model>.json must sit beside it. "
    "With --from: optional, and then it must be the bundle's model.",
)
_FROM = typer.Option(
    None,
    "--from",
    help="Recalibrate this bundle (or history of bundle versions) on the device's frames: a new version "
    "with the same model, a new threshold, its parent and why recorded; added to the history (BUNDLE itself, "
    "or --out for a plain bundle) and made current. See `edge bundles`.",
)
_NORMAL = typer.Option(
    ...,
    "--normal",
    "-n",
    help="Folder of good images NOT used in training, or an MVTec AD root (then test/good is the normal "
    "set and every other test/<defect> folder the anomalous set, unless --anomalous is given; "
    "train/good is never used: it trained the model).",
)
_ANOMALOUS = typer.Option(
    None,
    "--anomalous",
    "-a",
    help="Folder of defective images (or an MVTec AD root: its test/<defect> folders). Enables AUROC, "
    "precision/recall/F1 and the ROC plot; required by --method f1.",
)
_METHOD = typer.Option("quantile:0.999", "--method", "-m", help=_METHOD_HELP)
_OUT = typer.Option(
    None,
    "--out",
    "-o",
    help="Bundle folder to write (an old bundle there is replaced). With --from: the history of versions "
    "(default: the --from history).",
)
_SCORE = typer.Option(
    None,
    "--score",
    help="Score of a frame from its error map: mean (whole-image MSE), max_blur (max of the smoothed "
    "map: small defects) or topk_mean (mean of the worst pixels). Default: the model card's.",
)
_BLUR_SIGMA = typer.Option(None, "--blur-sigma", help="Gaussian sigma in model pixels for max_blur.")
_TOPK = typer.Option(None, "--topk", help="Fraction of pixels averaged by topk_mean, more than 0 and at most 1.")
_ERROR = typer.Option(
    None,
    "--error",
    metavar="squared|ssim",
    help="Autoencoders: the error map "
    "compares input and reconstruction by squared difference (the tutorials') or "
    "by 1 - SSIM (structure: local mean, contrast, correlation). Default: squared.",
)
_BATCH_SIZE = typer.Option(
    32,
    "--batch-size",
    min=1,
    help="Images per interpreter call (without --tile/--mask/--roi; "
    "with them each image is one call holding its tiles).",
)
_ROI = typer.Option(
    None,
    "--roi",
    help="x,y,w,h region of each image to inspect, in image pixels; stored as the bundle's roi (as `edge run --roi`).",
)
_MASK = typer.Option(
    None,
    "--mask",
    help="Mask image at image (or ROI) size: white is inspected, "
    "black is ignored in the score; copied into the bundle as mask.png (as `edge run --mask`).",
)
_TILE = typer.Option(
    None,
    "--tile",
    help="Cut each image into overlapping tiles instead of shrinking it: 'model' "
    "(tiles of the model input size, full resolution) or WxH in image pixels; "
    "stored in the bundle so `edge run` tiles the same way (as `edge run --tile`).",
)
_TILE_OVERLAP = typer.Option(
    None,
    "--tile-overlap",
    min=0.0,
    max=0.89,
    help="With --tile: fraction of a tile shared with its neighbour (default: 0.25).",
)
_CONFIDENCE = typer.Option(
    0.95,
    "--confidence",
    help="Confidence of the intervals reported for the false-alarm rate and recall, and of fpr-upper:R's bound.",
)
_PRECISION = typer.Option(
    None,
    "--precision",
    help="fpr:R / fpr-upper:R: the ± half-width of the false-alarm rate you want known; the report says how "
    "many normal images that needs (default: half of R).",
)
_NO_PROGRESS = typer.Option(False, "--no-progress", help="No progress bar (for logs).")
_NORMAL_LABEL = typer.Option(
    None,
    "--normal-label",
    help="Signal models: the class label of normal windows in a labelled --normal FILE (default: the label the "
    "model was trained on as normal); its other windows are the anomalous set. See docs/signals.md.",
)
_EDGETPU_MODEL = typer.Option(
    None,
    "--edgetpu-model",
    help="The Edge-TPU-compiled MODEL (edgetpu_compiler's *_edgetpu.tflite): kept in the bundle beside MODEL, "
    "both hashed, and run by `edge run --delegate edgetpu`. With --delegate edgetpu (a Coral attached) it "
    "scores the images too. See docs/runtime.md.",
)

_ONNX_MODEL = typer.Option(
    None,
    "--onnx-model",
    help="The .onnx of the same run (`edge export RUN --format onnx`): kept in the bundle beside MODEL (the .tflite), "
    "hashed, and scored through ONNX Runtime on the same images for its own threshold (its scores are not the "
    "TFLite model's). `edge run --runtime onnxruntime` runs it with that threshold; the default runtime runs MODEL "
    "with the main one. --provider chooses its execution providers. See docs/runtime.md.",
)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)


def calibrate(
    model: Optional[Path] = _MODEL,
    normal: Path = _NORMAL,
    anomalous: Optional[Path] = _ANOMALOUS,
    method: str = _METHOD,
    out: Optional[Path] = _OUT,
    from_bundle: Optional[Path] = _FROM,
    score: Optional[str] = _SCORE,
    blur_sigma: Optional[float] = _BLUR_SIGMA,
    topk: Optional[float] = _TOPK,
    error: Optional[str] = _ERROR,
    batch_size: int = _BATCH_SIZE,
    roi: Optional[str] = _ROI,
    mask: Optional[Path] = _MASK,
    tile: Optional[str] = _TILE,
    tile_overlap: Optional[float] = _TILE_OVERLAP,
    threads: Optional[int] = options.interpreter_threads(),
    confidence: float = _CONFIDENCE,
    precision: Optional[float] = _PRECISION,
    no_progress: bool = _NO_PROGRESS,
    normal_label: Optional[float] = _NORMAL_LABEL,
    runtime: Optional[str] = options.runtime(),
    delegate: Optional[str] = options.delegate(),
    delegate_fallback: Optional[str] = options.delegate_fallback(),
    provider: Optional[list[str]] = options.providers(),
    edgetpu_model: Optional[Path] = _EDGETPU_MODEL,
    onnx_model: Optional[Path] = _ONNX_MODEL,
) -> None:
    """Calibrate a model's anomaly threshold on real images and write a deployable bundle.

    Every image is scored with the exported .tflite through the device's own code (the same
    preprocessing, interpreter and score as `edge run`), so int8 effects are calibrated in.
    Unreadable or truncated images are skipped and counted; images of any size are resized.

    Frame geometry (--roi, --mask, --tile, --tile-overlap; same meaning as in `edge run`):
    calibrate on images the size of the camera frames, with the geometry the device will use.
    Each image is then scored by the device's own frame scorer (tiles batched, error maps
    stitched, mask applied) and the bundle records the geometry, so `edge run` with the bundle
    alone inspects the same way and its scores match the calibration scores.

    The bundle holds the model, bundle.json (hash, preprocessing, score, threshold, score
    statistics, metrics when anomalous images were given) and report/ (scores.png, roc.png,
    scores.csv, index.html). A summary goes to stderr; the bundle path is the last line on stdout.

    Example: edge calibrate run/export/model_int8.tflite --normal data/magnetic-tile --method f1 --out bundle

    How sure the threshold is: the false-alarm rate on the normal images (and recall on the anomalous
    ones) with its exact binomial interval at --confidence, printed and kept in bundle.json. A rate
    measured on 100 images is loose (5/100: 1.6-11.3 %); fpr-upper:R picks the threshold whose rate
    is at most R with that confidence.

    Tiled: edge calibrate model_int8.tflite --normal frames/good --anomalous frames/bad --tile model \
--mask belt.png --out bundle

    On the device (no scikit-learn or matplotlib needed; the report is then skipped): a new version
    of the running bundle from the frames `edge collect` gathered, e.g.
    edge calibrate --from bundles/line1 --normal collected/train/good

    A signal model (docs/signals.md): --normal is a signal file; labelled, its normal label's windows
    are the normal set and the others the anomalous set. The tutorials' threshold is meanstd:1, e.g.
    edge calibrate runs/ecg/export/model_int8.tflite --normal ecg_test.txt --method meanstd:1 --out ecg-bundle
    """
    _check_choices(score, error)
    given = (runtime, delegate, delegate_fallback, provider)
    chosen = options.runtime_options(None, *given) if any(v is not None for v in given) else None
    if from_bundle is not None:
        if onnx_model is not None or edgetpu_model is not None:
            raise EdgeError("--from keeps the bundle's models; --onnx-model/--edgetpu-model apply to a new bundle")
        _refuse_with_from(anomalous, roi, mask, tile, tile_overlap)
        _refuse_signal_from(from_bundle)
        from calibration.recalibrate import recalibrate

        bundle = recalibrate(
            from_bundle,
            normal,
            method,
            out,
            model=model,
            score=score,
            blur_sigma=blur_sigma,
            topk=topk,
            error=error,
            batch_size=batch_size,
            threads=threads,
            progress=not no_progress,
            confidence=confidence,
            precision=precision,
            runtime=chosen,
        )
        typer.echo(str(bundle.path))
        return
    if model is None or out is None:
        raise EdgeError("pass the MODEL (.tflite) and --out BUNDLE, or --from BUNDLE to recalibrate a bundle")
    if _signal_model(model):  # --normal is a signal file (calibration/signal.py)
        from calibration.signal import calibrate_signal

        bundle = calibrate_signal(model, normal, anomalous, method, out, normal_label=normal_label, threads=threads)
        typer.echo(str(bundle.path))
        return
    geometry = None
    if any(v is not None for v in (roi, mask, tile, tile_overlap)):
        geometry = geometry_with_options(None, roi, str(mask) if mask is not None else None, tile, tile_overlap)
    from calibration import calibrate as run_calibration

    bundle = run_calibration(
        model,
        normal,
        anomalous,
        method,
        out,
        score=score,
        blur_sigma=blur_sigma,
        topk=topk,
        error=error,
        batch_size=batch_size,
        threads=threads,
        progress=not no_progress,
        geometry=geometry,
        confidence=confidence,
        precision=precision,
        runtime=chosen,
        variants=_variants(edgetpu_model, onnx_model),
    )
    typer.echo(str(bundle.path))


def _variants(edgetpu_model: Optional[Path], onnx_model: Optional[Path]) -> Optional[dict[str, Path]]:
    given = {"edgetpu": edgetpu_model, "onnxruntime": onnx_model}
    return {k: v for k, v in given.items() if v is not None} or None


def _check_choices(score: Optional[str], error: Optional[str]) -> None:
    if score is not None and score not in ("mean", "max_blur", "topk_mean"):
        raise EdgeError(f"unknown --score {score!r}; choose mean, max_blur or topk_mean")
    if error is not None and error not in ("squared", "ssim"):
        raise EdgeError(f"unknown --error {error!r}; choose squared or ssim")


def _refuse_with_from(anomalous, roi, mask, tile, tile_overlap) -> None:
    """A new version keeps its parent's geometry and is set on normal frames only."""
    if anomalous is not None:
        raise EdgeError("--from recalibrates on normal frames only; --anomalous is for a desktop calibration")
    if any(v is not None for v in (roi, mask, tile, tile_overlap)):
        raise EdgeError("--from keeps the bundle's ROI, mask and tiling; --roi/--mask/--tile apply to a new bundle")


def _signal_model(model: Path) -> bool:
    """Whether the model's card says it takes signal windows (a missing card is said by the image path)."""
    from edge.bundle import card_path, read_card

    return card_path(model).is_file() and read_card(model).signal is not None


def _refuse_signal_from(from_bundle: Path) -> None:
    """Versions of a signal bundle are not made on the device yet: say what to run instead."""
    from edge.bundle import load_bundle

    if load_bundle(from_bundle, verify=False).manifest.signal is not None:
        raise EdgeError(
            f"--from makes new versions of image bundles; {from_bundle} is a signal model: calibrate its exported "
            "model again, `edge calibrate RUN/export/model_int8.tflite --normal FILE --out NEW_BUNDLE`"
        )
