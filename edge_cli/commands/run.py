"""`edge run`: inspect frames from a camera, video or image folder with a bundle.

Settings come from a YAML config (`--config`, see edge/config.py and deploy/edge.example.yaml);
command-line options override the file. This module only turns the flags into a RunConfig;
edge/app.py assembles and runs the device loop from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.app import run_device
from edge.config import MqttConfig, RunConfig, WebhookConfig, load_config
from edge.decide import DecisionConfig
from edge.errors import EdgeError
from edge.inspections import run_inspections
from edge.schema import one_line_errors
from edge.sources import source_from_options
from edge.tiling import geometry_with_options
from edge.web.config import WebConfig
from edge_cli import options


def _mqtt_from_flag(value: str, current: Optional[MqttConfig]) -> MqttConfig:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, ""
    if not host or (port and not port.isdigit()):
        raise EdgeError(f"--mqtt {value}: give HOST or HOST:PORT")
    data = current.model_dump() if current is not None else {}
    data.update(host=host, port=int(port) if port else data.get("port"))
    return MqttConfig.model_validate(data)


def _flag_model(flag: str, make):
    with one_line_errors(flag):
        return make()


def _set_given(cfg: RunConfig, **values) -> None:
    """Command-line values that were given replace the config file's."""
    for key, value in values.items():
        if value is not None:
            setattr(cfg, key, value)


def _apply_decision_flags(cfg: RunConfig, flags: dict, part_trigger: bool) -> None:
    given = {k: v for k, v in flags.items() if v is not None}
    if part_trigger and cfg.decision.part_trigger is None:
        given["part_trigger"] = {}
    if given:
        cfg.decision = _flag_model(
            "decision options", lambda: DecisionConfig.model_validate({**cfg.decision.model_dump(), **given})
        )


def _apply_network_flags(cfg: RunConfig, mqtt: Optional[str], webhook: Optional[str]) -> None:
    if mqtt is not None:
        cfg.sinks.mqtt = _flag_model("--mqtt", lambda: _mqtt_from_flag(mqtt, cfg.sinks.mqtt))
    if webhook is not None:
        current = cfg.sinks.webhook.model_dump() if cfg.sinks.webhook is not None else {}
        cfg.sinks.webhook = _flag_model("--webhook", lambda: WebhookConfig.model_validate({**current, "url": webhook}))


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Optional[Path] = typer.Option(
            None,
            "--config",
            "-c",
            help="YAML run config (see deploy/edge.example.yaml); the options below override it.",
        ),
        bundle: Optional[Path] = typer.Option(None, "--bundle", "-b", help="Bundle folder made by `edge calibrate`."),
        classifier: Optional[Path] = typer.Option(
            None,
            "--classifier",
            help="Second stage: a classifier bundle (e.g. crack). Each alert of --bundle is classified (the tile "
            "around the anomaly when tiling) and labelled 'crack' with its class activation map, or 'unknown anomaly'.",
        ),
        camera: Optional[str] = typer.Option(
            None, "--camera", help="Camera index (0) or device path (/dev/v4l/by-id/...)."
        ),
        video: Optional[str] = typer.Option(None, "--video", help="Video file to inspect frame by frame."),
        images: Optional[str] = typer.Option(None, "--images", help="Folder of images to inspect in name order."),
        out: Optional[Path] = typer.Option(
            None, "--out", "-o", help="Where events.jsonl, events.db and snapshots/ go (default: edge-out)."
        ),
        state: Optional[Path] = typer.Option(
            None, "--state", help="Where the network sinks keep undelivered alerts (default: OUT/state)."
        ),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
        threads: Optional[int] = options.interpreter_threads(),
        runtime: Optional[str] = options.runtime(),
        delegate: Optional[str] = options.delegate(),
        delegate_fallback: Optional[str] = options.delegate_fallback(),
        provider: Optional[list[str]] = options.providers(),
        votes: Optional[int] = typer.Option(
            None,
            "--votes",
            min=1,
            help="Alert when this many of the last --window frames are over threshold (default: 1).",
        ),
        window: Optional[int] = typer.Option(
            None, "--window", min=1, help="Frames considered for --votes (default: 1)."
        ),
        cooldown: Optional[int] = typer.Option(
            None, "--cooldown", min=0, help="Frames to stay quiet after an alert (default: 0)."
        ),
        mqtt: Optional[str] = typer.Option(
            None,
            "--mqtt",
            help="Also publish alerts to this MQTT broker, HOST or HOST:PORT (topic edge-inspect/alerts).",
        ),
        webhook: Optional[str] = typer.Option(None, "--webhook", help="Also POST each alert as JSON to this URL."),
        url: Optional[str] = typer.Option(
            None,
            "--url",
            help="Network stream (rtsp://user:pass@host/stream, http://...); reopened by the watchdog when it stalls.",
        ),
        gstreamer: Optional[str] = typer.Option(
            None,
            "--gstreamer",
            help="GStreamer pipeline ending in appsink (Jetson CSI camera); needs an OpenCV built with GStreamer.",
        ),
        picamera2: Optional[int] = typer.Option(
            None, "--picamera2", min=0, help="Raspberry Pi camera number, via Picamera2."
        ),
        loop: bool = typer.Option(False, "--loop", help="With --video: start again at the end (demos, soak tests)."),
        signal: Optional[str] = typer.Option(
            None,
            "--signal",
            help="Signal bundles: a signal file replayed one window a step (UCR text, CSV, a recording), or - for "
            "lines on standard input (a window or a sample per line). See docs/signals.md.",
        ),
        serial: Optional[str] = typer.Option(
            None,
            "--serial",
            help="Signal bundles: a serial port (/dev/ttyUSB0) streaming a sample or a window per line (pyserial); "
            "reopened by the watchdog when it vanishes.",
        ),
        baud: Optional[int] = typer.Option(None, "--baud", min=1, help="With --serial: the port's speed (115200)."),
        rate: Optional[float] = typer.Option(
            None,
            "--rate",
            min=0.0,
            help="With --video or --images: frames per second, as a camera would deliver them (a model too slow "
            "for it drops frames, counted, unless --mode every); with --signal FILE: windows per second. "
            "Default: as fast as the model takes them.",
        ),
        hop: Optional[int] = typer.Option(
            None, "--hop", min=1, help="Signals: samples between windows of a stream or recording (default: a window)."
        ),
        fail_fast: bool = typer.Option(
            False,
            "--fail-fast",
            help="Exit at once (status 2) when a camera or stream does not open at start, instead of waiting "
            "for it with the watchdog's backoff (source.fail_fast).",
        ),
        mode: Optional[str] = typer.Option(
            None,
            "--mode",
            help="latest: inspect the newest frame, drop (and count) the rest, so a slow model never lags; "
            "every: inspect every frame. (default: every for --video/--images, latest for cameras, streams "
            "and a --rate replay)",
        ),
        duration: Optional[float] = typer.Option(None, "--duration", min=0.0, help="Stop after this many seconds."),
        roi: Optional[str] = typer.Option(
            None, "--roi", help="x,y,w,h region of the frame to inspect, in frame pixels (replaces the bundle's)."
        ),
        mask: Optional[str] = typer.Option(
            None,
            "--mask",
            help="Mask image at frame (or ROI) size: white is inspected, black is ignored in the score and heatmap.",
        ),
        tile: Optional[str] = typer.Option(
            None,
            "--tile",
            help="Cut the frame into overlapping tiles instead of shrinking it: 'model' "
            "(tiles of the model input size, full resolution) or WxH in frame pixels. "
            "All tiles go through the model in one batch; calibrate with the same tiling.",
        ),
        tile_overlap: Optional[float] = typer.Option(
            None,
            "--tile-overlap",
            min=0.0,
            max=0.89,
            help="With --tile: fraction of a tile shared with its neighbour (default: 0.25).",
        ),
        part_trigger: bool = typer.Option(
            False,
            "--part-trigger",
            help="One alert per part: detect parts entering and leaving the ROI "
            "against the empty belt learned at start (start with the belt empty); "
            "alert on the part's worst frame. Tune in the config file (decision.part_trigger).",
        ),
        cooldown_seconds: Optional[float] = typer.Option(
            None, "--cooldown-seconds", min=0.0, help="Seconds to stay quiet after an alert (default: 0)."
        ),
        metrics_every: Optional[float] = typer.Option(
            None,
            "--metrics-every",
            min=0.0,
            help="Print a metrics line (fps, latency p50/p95/p99 per stage, dropped frames, "
            "reopens, alerts) to stderr every N seconds; 0: off (default: 60).",
        ),
        web: Optional[str] = typer.Option(
            None,
            "--web",
            help="Serve a page at http://HOST:PORT/ (127.0.0.1:8080): live view, score trace, alerts to review, "
            "threshold. Beyond loopback it needs a token in EDGE_WEB_TOKEN (web.token_env); reviews and threshold "
            "changes always do. Needs the web extra.",
        ),
        prometheus_port: Optional[int] = typer.Option(
            None,
            "--prometheus-port",
            min=0,
            max=65535,
            help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (needs prometheus-client).",
        ),
        watch_bundles: Optional[Path] = typer.Option(
            None,
            "--watch-bundles",
            help="Swap in a new bundle without stopping the camera when this folder offers one: a bundle history "
            "(edge calibrate --from ... --out DIR) whose current version changes, or a folder bundles are copied "
            "into (swap.watch). SIGHUP swaps --bundle in again. The new bundle is checked first; a bad one is "
            "one line and the old one runs on.",
        ),
    ) -> None:
        """Inspect a camera, a video or an image folder; one JSON line per alert on stdout.

        By default each alert also goes to OUT/events.jsonl (rotated), the SQLite store OUT/events.db (query it with \
`edge events`) and OUT/snapshots/ (raw and annotated frame; the oldest are deleted past the retention limits).

        MQTT, webhook and GPIO outputs are set in the --config file (see docs/alerts.md); MQTT and webhook alerts are \
queued on disk and delivered at least once, across broker outages and restarts. A bad config is one line naming the \
file, line and key. Ctrl-C or SIGTERM stops cleanly.
        """
        cfg = load_config(config) if config is not None else RunConfig()
        _set_given(cfg, bundle=bundle, classifier=classifier, out=out, state=state, threads=threads)
        chosen = options.runtime_options(cfg.runtime_options(), runtime, delegate, delegate_fallback, provider)
        _set_given(cfg, **chosen.model_dump())
        source_flags = {
            "camera": camera,
            "video": video,
            "images": images,
            "url": url,
            "gstreamer": gstreamer,
            "picamera2": picamera2,
            "signal": signal,
            "serial": serial,
            "baud": baud,
            "rate": rate,
            "hop": hop,
            "loop": loop or None,
            "fail_fast": fail_fast or None,
            "mode": mode,
        }
        if cfg.source is not None or any(v is not None for v in source_flags.values()):
            cfg.source = source_from_options(cfg.source, **source_flags)
        if any(v is not None for v in (roi, mask, tile, tile_overlap)):
            cfg.geometry = geometry_with_options(cfg.geometry, roi, mask, tile, tile_overlap)
        if metrics_every is not None or prometheus_port is not None:
            given = {"every_seconds": metrics_every, "prometheus_port": prometheus_port}
            cfg.metrics = cfg.metrics.model_copy(update={k: v for k, v in given.items() if v is not None})
        decision_flags = {"votes": votes, "window": window, "cooldown": cooldown, "cooldown_seconds": cooldown_seconds}
        _apply_decision_flags(cfg, decision_flags, part_trigger)
        _apply_network_flags(cfg, mqtt, webhook)
        if web is not None:
            cfg.web = _flag_model("--web", lambda: WebConfig.model_validate({**cfg.web.model_dump(), "listen": web}))
        if watch_bundles is not None:
            cfg.swap = cfg.swap.model_copy(update={"watch": watch_bundles})
        if cfg.inspections is not None:  # several cameras in one process (edge/inspections.py)
            run_inspections(cfg, max_frames=max_frames, duration=duration)
        else:
            run_device(cfg, max_frames=max_frames, duration=duration)
