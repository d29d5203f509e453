"""`edge collect`: gather good frames from a camera, stream or video as training images (MVTec AD layout).

This module only turns the flags into a CollectConfig; edge/collect.py does the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.collect import CollectConfig, collect
from edge.config import RunConfig, load_config
from edge.decide import PartTriggerConfig
from edge.errors import EdgeError
from edge.frame_quality import QualityConfig
from edge.schema import one_line_errors
from edge.sources import source_from_options
from edge.tiling import geometry_with_options


def parse_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    """'256' (square) or 'WxH' -> (width, height)."""
    if text is None:
        return None
    w, sep, h = text.lower().partition("x")
    h = h if sep else w
    if not (w.isdigit() and h.isdigit()) or int(w) <= 0 or int(h) <= 0:
        raise EdgeError(f"--size {text!r}: give N (square) or WxH in pixels, e.g. --size 256 or --size 320x240")
    return int(w), int(h)


def _source(cfg: RunConfig, flags: dict):
    given = {k: v for k, v in flags.items() if v is not None}
    if cfg.source is None and not given:
        raise EdgeError(
            "no source: give --camera N, --url URL, --video FILE, --gstreamer PIPELINE, --picamera2 N or --images DIR"
        )
    # A person is at the line: a camera that is not there is said at once, not waited for.
    return source_from_options(cfg.source, **given, fail_fast=True)


def _part_trigger(cfg: RunConfig, wanted: bool) -> Optional[PartTriggerConfig]:
    """edge run's part trigger, with the settings of the config file's decision.part_trigger if any."""
    if not wanted:
        return None
    return cfg.decision.part_trigger or PartTriggerConfig()


def register(app: typer.Typer) -> None:
    @app.command("collect")
    def collect_command(
        out: Path = typer.Option(..., "--out", "-o", help="MVTec AD root to fill: frames go to OUT/train/good."),
        camera: Optional[str] = typer.Option(
            None, "--camera", help="Camera index (0) or device path (/dev/v4l/by-id/...)."
        ),
        url: Optional[str] = typer.Option(None, "--url", help="Network stream (rtsp://..., http://...)."),
        video: Optional[str] = typer.Option(None, "--video", help="Video file (read on its own clock)."),
        gstreamer: Optional[str] = typer.Option(None, "--gstreamer", help="GStreamer pipeline ending in appsink."),
        picamera2: Optional[int] = typer.Option(None, "--picamera2", min=0, help="Raspberry Pi camera number."),
        images: Optional[str] = typer.Option(None, "--images", help="Folder of images (each one considered)."),
        config: Optional[Path] = typer.Option(
            None,
            "--config",
            "-c",
            help="edge run's YAML config: its source, bundle, roi, mask and decision.part_trigger are used; "
            "the options here override them.",
        ),
        bundle: Optional[Path] = typer.Option(
            None, "--bundle", "-b", help="Take ROI, mask, training size and colour from this bundle."
        ),
        every: Optional[float] = typer.Option(
            None, "--every", min=0.0, help="Save one frame every SECONDS (default 1; 0: every frame that passes)."
        ),
        part_trigger: bool = typer.Option(
            False,
            "--part-trigger",
            help="One frame per part instead, with edge run's part trigger (start with the belt empty; "
            "tune it in the --config file's decision.part_trigger).",
        ),
        count: Optional[int] = typer.Option(None, "--count", "-n", min=1, help="Stop after saving this many."),
        size: Optional[str] = typer.Option(
            None, "--size", help="Saved size, N or WxH (default: the bundle's input size, else the full ROI crop)."
        ),
        color: Optional[str] = typer.Option(
            None, "--color", metavar="grey|rgb", help="Default: the bundle's, else what the source gives."
        ),
        roi: Optional[str] = typer.Option(None, "--roi", help="x,y,w,h region of the frame, as edge run's --roi."),
        mask: Optional[str] = typer.Option(
            None, "--mask", help="Mask image (white = inspected), as edge run's --mask: the checks look only there."
        ),
        min_change: Optional[float] = typer.Option(
            None, "--min-change", min=0.0, help="Near-duplicate below this mean grey change (default 2)."
        ),
        min_sharpness: Optional[float] = typer.Option(
            None,
            "--min-sharpness",
            min=0.0,
            help="Blurred below this ratio of edge energy, full to half scale (default 0.6; sharp frames: about 1).",
        ),
        max_clipped: Optional[float] = typer.Option(
            None,
            "--max-clipped",
            min=0.01,
            max=1.0,
            help="Under/over-exposed when more than this share of pixels is clipped (default 0.25).",
        ),
    ) -> None:
        """Gather training images of good parts from a camera, stream or video, in MVTec AD layout.

        Near-duplicates (a stopped belt), blurred, under/over-exposed and frozen frames are skipped and \
counted. Ctrl-C or SIGTERM stops and keeps what was saved. Then: `edge train autoencoder --data OUT`.
        """
        if color is not None and color not in ("grey", "rgb"):
            raise EdgeError(f"--color {color!r} must be grey or rgb")
        cfg = load_config(config) if config is not None else RunConfig()
        flags = {"camera": camera, "url": url, "video": video, "gstreamer": gstreamer}
        source = _source(cfg, {**flags, "picamera2": picamera2, "images": images})
        geometry = cfg.geometry
        if roi is not None or mask is not None:
            geometry = geometry_with_options(cfg.geometry, roi, mask)
        quality = {"min_change": min_change, "min_sharpness": min_sharpness, "max_clipped": max_clipped}
        with one_line_errors("bad collect options"):
            collect_config = CollectConfig(
                source=source,
                out=out,
                bundle=bundle or cfg.bundle,
                geometry=geometry,
                every_seconds=every,
                part_trigger=_part_trigger(cfg, part_trigger),
                count=count,
                size=parse_size(size),
                color=color,
                quality=QualityConfig(**{k: v for k, v in quality.items() if v is not None}),
            )
        summary = collect(collect_config)
        print(summary.folder)
