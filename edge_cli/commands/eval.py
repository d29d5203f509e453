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
    "ground_truth/<defect>/<name>_mask.png (masks optional: pixel AUROC needs them).",
)
_COMPARE = typer.Option(
    None,
    "--compare",
    "-c",
    help="Another bundle to put side by side (e.g. the float export of the same model); repeat for more.",
)
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
) -> None:
    """Measure how well bundles find real defects: the exported .tflite run through edge's own code.

    Prints image AUROC, pixel AUROC (anomaly map resized to each image vs its ground-truth mask),
    recall at 5 % FPR (defective images found when at most 5 % of good ones may be flagged: no
    threshold involved) and F1 at each bundle's calibrated threshold; with --out writes a markdown table (per defect
    type too) and a PNG grid of the worst misses per bundle. Needs the desktop extras
    (scikit-learn, matplotlib); the model runs in the device's TFLite interpreter.
    """
    require_sklearn()
    from calibration.evaluate import evaluate

    command = "edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
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
    )


def require_sklearn() -> None:
    import importlib.util

    from edge.errors import EdgeError

    missing = [m for m in ("sklearn", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise EdgeError(f"`edge eval` needs {', '.join(missing)}: pip install 'edge-inspect[desktop]'")
