"""`edge info`: what a bundle holds and which interpreter this machine would use."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge import __version__
from edge.bundle import load_bundle
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
