"""`edge run`: inspect frames from a camera, video or image folder with a bundle."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Optional

import typer

from edge.bundle import load_bundle
from edge.decide import DecisionConfig
from edge.errors import EdgeError
from edge.model import interpreter_backend
from edge.pipeline import Pipeline, RunSummary, SnapshotWriter
from edge.sinks.console import ConsoleSink
from edge.sinks.jsonl import JsonlSink
from edge.sources import open_source


def inspect(
    bundle_path: Path,
    camera: Optional[str],
    video: Optional[str],
    images: Optional[str],
    out: Path,
    max_frames: Optional[int] = None,
    threads: Optional[int] = None,
    decision: Optional[DecisionConfig] = None,
    quiet: bool = False,
) -> RunSummary:
    bundle = load_bundle(bundle_path)
    source = open_source(camera=camera, video=video, images=images)
    events_path = out / "events.jsonl"
    sinks = [ConsoleSink(), JsonlSink(events_path)]
    pipeline = Pipeline(bundle, sinks, SnapshotWriter(out / "snapshots"), decision, threads)
    backend, _ = interpreter_backend()
    m = bundle.manifest
    log = (lambda *a: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    log(
        f"edge run: {source.name} with {bundle.path} ({m.model.kind}, {m.model.quantization}, "
        f"score {m.score.kind}, threshold {m.threshold.value:.6g} by {m.threshold.method}); "
        f"interpreter: {backend}"
    )

    previous = signal.getsignal(signal.SIGINT)

    def _stop(signum, _frame):
        log("stopping (signal received) …")
        pipeline.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        summary = pipeline.run(source, max_frames=max_frames)
    finally:
        signal.signal(signal.SIGINT, previous)
        source.close()
        for sink in sinks:
            sink.close()
    log(
        f"done: {summary.frames} frames, {summary.alerts} alerts, {summary.skipped} unreadable skipped, "
        f"{summary.fps:.1f} fps; events: {events_path}; snapshots: {out / 'snapshots'}"
    )
    log("summary " + json.dumps(summary.to_dict()))
    return summary


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        bundle: Path = typer.Option(..., "--bundle", "-b", help="Bundle folder made by `edge calibrate`."),
        camera: Optional[str] = typer.Option(None, "--camera", help="Camera index (0) or device path (/dev/v4l/by-id/...)."),
        video: Optional[str] = typer.Option(None, "--video", help="Video file to inspect frame by frame."),
        images: Optional[str] = typer.Option(None, "--images", help="Folder of images to inspect in name order."),
        out: Path = typer.Option(Path("edge-out"), "--out", "-o", help="Where events.jsonl and snapshots/ go."),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
        threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Interpreter threads (default: all cores)."),
        votes: int = typer.Option(1, "--votes", min=1, help="Alert when this many of the last --window frames are over threshold."),
        window: int = typer.Option(1, "--window", min=1, help="Frames considered for --votes."),
        cooldown: int = typer.Option(0, "--cooldown", min=0, help="Frames to stay quiet after an alert."),
    ) -> None:
        """Inspect a camera, a video or an image folder; one JSON line per alert on stdout.

        Each alert is also appended to OUT/events.jsonl with a raw and an annotated snapshot
        (error heatmap over the frame) in OUT/snapshots/. Ctrl-C stops cleanly.
        """
        try:
            decision = DecisionConfig(votes=votes, window=window, cooldown=cooldown)
        except ValueError as exc:
            raise EdgeError(f"bad decision options: {exc.errors()[0]['msg']}") from None  # type: ignore[attr-defined]
        inspect(bundle, camera, video, images, out, max_frames, threads, decision)
