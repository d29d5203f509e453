"""`edge demo`: the whole device loop on a small sample of real magnetic-tile images shipped in the repo."""

from __future__ import annotations

from pathlib import Path

import typer

from edge.commands.run import inspect

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("edge-demo-out"), "--out", "-o", help="Where events and snapshots go."),
    ) -> None:
        """Run `edge run` over the shipped magnetic-tile sample with the shipped int8 bundle.

        Images: Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects", The Visual Computer 2020.
        """
        images = DEMO_DIR / "images"
        bundle = DEMO_DIR / "bundle"
        summary = inspect(bundle, None, None, str(images), out)
        typer.echo(
            f"demo: {summary.frames} images inspected, {summary.alerts} alerts "
            f"(file names say which samples are defective: see {images}); "
            f"events in {out / 'events.jsonl'}, snapshots in {out / 'snapshots'}",
            err=True,
        )
