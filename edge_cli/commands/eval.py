"""`edge eval`: image and pixel AUROC, recall at 5 % FPR, F1 at the threshold, per defect type, worst misses."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from edge_cli import options

_BUNDLE = typer.Argument(..., help="Bundle folder made by `edge calibrate`.")
_DATA = typer.Option(
    ...,
    "--data",
    "-d",
    help="Test data in MVTec AD layout: test/good, test/<defect>, "
    "ground_truth/<defect>/<name>_mask.png (masks optional: pixel AUROC needs them). "
    "For a classifier bundle: one folder per class (e.g. crack/, no_crack/).",
)
_COMPARE = typer.Option(
    None,
    "--compare",
    "-c",
    help="Another bundle to put side by side (e.g. the float export of the same model); repeat for more. "
    "Each is compared with the first by a paired bootstrap over the same images: the difference of each "
    "figure with its interval, 'within noise' when the interval holds 0.",
)
_BOOTSTRAP = typer.Option(
    1000,
    "--bootstrap",
    "-B",
    min=0,
    help="Bootstrap resamples for the 95 % intervals of image AUROC, pixel AUROC and recall at 5 % FPR "
    "(good and defective images resampled separately; 0: no intervals).",
)
_SEED = typer.Option(0, "--seed", help="Seed of the bootstrap resamples (the same seed gives the same intervals).")
_OUT = typer.Option(
    None,
    "--out",
    "-o",
    help="Folder for quality.md and the worst-miss PNGs, "
    "or a .md file name (PNGs go beside it). Without it only the summary prints.",
)
_BATCH_SIZE = typer.Option(16, "--batch-size", min=1, help="Images per interpreter call.")
_WORST = typer.Option(6, "--worst", min=0, help="Missed defects and false alarms shown in the PNG grid.")
_PIXEL_MAX_SIDE = typer.Option(
    1024,
    "--pixel-max-side",
    min=0,
    help="Pixel AUROC at each image's own size, reduced when its long side is larger (0: never reduce).",
)
_EXCLUDE = typer.Option(
    None,
    "--exclude",
    "-x",
    help="Leave out a defect type "
    "(a test/ folder name, e.g. uneven); repeat for more. "
    "The report says what was left out.",
)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)


def eval_(
    bundle: Path = _BUNDLE,
    data: Path = _DATA,
    compare: Optional[list[Path]] = _COMPARE,
    out: Optional[Path] = _OUT,
    batch_size: int = _BATCH_SIZE,
    threads: Optional[int] = options.interpreter_threads(),
    worst: int = _WORST,
    pixel_max_side: int = _PIXEL_MAX_SIDE,
    exclude: Optional[list[str]] = _EXCLUDE,
    resamples: int = _BOOTSTRAP,
    seed: int = _SEED,
    normal_label: Optional[float] = typer.Option(
        None, "--normal-label", help="Signal bundles: the label of normal windows (default: the one trained on)."
    ),
    runtime: Optional[str] = options.runtime(),
    provider: Optional[list[str]] = options.providers(),
) -> None:
    """Measure how well bundles find real defects: the exported .tflite run through edge's own code.

    Prints image AUROC, pixel AUROC (anomaly map resized to each image vs its ground-truth mask),
    recall at 5 % FPR (defective images found when at most 5 % of good ones may be flagged: no
    threshold involved) and F1 at each bundle's calibrated threshold; with --out writes a markdown table (per defect
    type too) and a PNG grid of the worst misses per bundle. Each headline figure comes with its
    bootstrap interval (how much it would move on another test set of the same size), and each
    --compare bundle with a paired difference that says whether it is within that noise.

    A classifier bundle is evaluated on a folder per class instead: accuracy at argmax and at its
    calibrated threshold, each with its confusion matrix, and the positive-class AUROC. Needs the desktop extras
    (scikit-learn, matplotlib); the model runs in the device's TFLite interpreter.

    Signal bundles (docs/signals.md): --data is a labelled signal file; AUROC, and accuracy,
    precision, recall and F1 at each bundle's threshold (e.g. --compare its float export).
    """
    if data.is_file():  # a signal file (calibration/signal_eval.py; numpy only)
        from calibration.signal_eval import evaluate_signal

        command = "edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        bundles = [bundle, *(compare or [])]
        evaluate_signal(bundles, data, out, normal_label=normal_label, threads=threads, command=command, log=typer.echo)
        return
    require_sklearn()
    from calibration.classifier_eval import classifier_bundles, evaluate_classifiers
    from calibration.evaluate import evaluate

    # --runtime onnxruntime: a bundle's .onnx (kept beside its .tflite too), judged by that model's own threshold
    chosen = options.runtime_options(None, runtime, None, None, provider) if runtime or provider else None
    command = "edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    classifiers = classifier_bundles([bundle, *(compare or [])])
    if classifiers is not None:  # accuracy at argmax and at the threshold, confusion matrices
        evaluate_classifiers(
            classifiers, data, out, batch_size=batch_size, threads=threads, command=command,
            log=lambda msg: typer.echo(msg), resamples=resamples, seed=seed,
        )  # fmt: skip
        return
    evaluate(
        [bundle, *(compare or [])],
        data,
        out,
        batch_size=batch_size,
        threads=threads,
        worst=worst,
        pixel_max_side=pixel_max_side,
        command=command,
        progress=sys.stderr.isatty(),
        log=lambda msg: typer.echo(msg),
        exclude=exclude or (),
        resamples=resamples,
        seed=seed,
        runtime=chosen,
    )


def require_sklearn() -> None:
    import importlib.util

    from edge.errors import EdgeError

    missing = [m for m in ("sklearn", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise EdgeError(f"`edge eval` needs {', '.join(missing)}: pip install 'edge-inspect[desktop]'")
