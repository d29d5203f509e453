"""`edge demo`: the whole device loop on a small sample of real magnetic-tile images shipped in the repo."""

from __future__ import annotations

import json
from pathlib import Path

import typer

import edge
from edge.app import run_with_default_sinks
from edge.imaging import list_images
from edge.messages import to_stderr
from edge.sources import SourceConfig

DEMO_DIR = Path(edge.__file__).resolve().parent / "demo"  # package data of the device package


def _new_alert_sources(events: Path, skip_lines: int) -> set[str]:
    if not events.is_file():
        return set()
    lines = events.read_text(encoding="utf-8").splitlines()[skip_lines:]
    return {json.loads(line)["source"] for line in lines if line.strip()}


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("edge-demo-out"), "--out", "-o", help="Where events and snapshots go."),
    ) -> None:
        """Run `edge run` over the shipped magnetic-tile sample with the shipped int8 bundle.

        The sample (edge/demo/images) holds good tiles and tiles with each defect type, named
        after the folder they came from (good_…, blowhole_…, crack_…); the bundle (edge/demo/bundle)
        was fitted and calibrated on other images of the same data set (scripts/build_demo.py).
        At the end the demo says which samples raised an alert.

        Images: Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects", The Visual Computer 2020.
        """
        images = DEMO_DIR / "images"
        events = out / "events.jsonl"
        before = len(events.read_text(encoding="utf-8").splitlines()) if events.is_file() else 0
        summary = run_with_default_sinks(DEMO_DIR / "bundle", SourceConfig(images=str(images)), out)

        flagged = _new_alert_sources(events, before)
        names = [p.name for p in list_images(images)]
        good = [n for n in names if n.startswith("good_")]
        bad = [n for n in names if not n.startswith("good_")]
        # the verdicts go to stderr: stdout stays JSON lines only
        to_stderr("")
        for name in names:
            verdict = "ALERT" if name in flagged else "ok"
            truth = "good" if name in good else "defective"
            to_stderr(f"  {verdict:5}  {truth:9}  {name}")
        to_stderr(
            f"demo: {summary.frames} images, {summary.alerts} alerts: "
            f"{len(flagged & set(bad))} of {len(bad)} defective samples flagged, "
            f"{len(flagged & set(good))} of {len(good)} good ones."
        )
        to_stderr(f"events: {events}; snapshots (raw + error heatmap): {out / 'snapshots'}")
