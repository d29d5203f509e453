"""`edge info`: what a bundle holds and which interpreter this machine would use."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge import __version__
from edge.bundle import Bundle, Threshold, load_bundle
from edge.errors import EdgeError
from edge.model import interpreter_backend


def register(app: typer.Typer) -> None:
    @app.command("info")
    def info(bundle: Optional[Path] = typer.Argument(None, help="A bundle folder to describe and verify.")) -> None:
        """Print the edge-inspect version, the TFLite interpreter in use, and a bundle's contents."""
        try:
            backend, _ = interpreter_backend()
        except EdgeError as exc:
            backend = f"none ({exc})"
        typer.echo(f"edge-inspect {__version__}; interpreter: {backend}")
        if bundle is not None:
            b = load_bundle(bundle)
            m = b.manifest
            typer.echo(f"bundle {b.path}: hash verified")
            typer.echo(m.model_dump_json(indent=2, exclude={"extra"}))
            for line in m.threshold.describe_confidence():
                typer.echo(f"threshold {m.threshold.value:.6g} ({m.threshold.method}): {line}")
            for line in _models_and_thresholds(b):
                typer.echo(line)


def _models_and_thresholds(bundle: Bundle) -> list[str]:
    """Which model runs on which runtime, with the threshold it is compared with and what set it."""
    m = bundle.manifest
    lines = [f"model {m.model.file} (default runtime): {_threshold(m.threshold)}"]
    for variant, name in m.model.variants.items():
        how = "--runtime onnxruntime" if variant == "onnxruntime" else f"--delegate {variant}"
        own = m.variant_calibration.get(variant) if variant == "onnxruntime" else None
        if own is not None:
            lines.append(f"model {name} ({how}): its own {_threshold(own.threshold)}")
            t = own.threshold
            lines += [f"threshold {t.value:.6g} ({t.method}, {name}): {c}" for c in t.describe_confidence()]
        elif variant == "onnxruntime":
            lines.append(f"model {name} ({how}): no threshold of its own; recalibrate it with --runtime onnxruntime")
        else:
            lines.append(f"model {name} ({how}): the main threshold")
    return lines


def _threshold(t: Threshold) -> str:
    return f"threshold {t.value:.6g} by {t.method}" + (f", calibrated on {t.runtime}" if t.runtime else "")
