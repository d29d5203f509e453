"""The device loop: source -> geometry (ROI, tiles) -> model -> score -> decide -> sinks.

Each stage is its own module; this one only wires them and keeps the books (frames, alerts,
per-stage latency in edge.metrics). A sink or the snapshot writer failing is one line on
stderr and a count, never the end of the run. Where the source has a capture thread, that thread
also prepares the model input (edge.capture.Capture.set_prepare), so with two cores the resize
of the next frame overlaps the model of this one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.alert import Alert
from edge.annotate import annotate
from edge.bundle import Bundle
from edge.capture import Frame
from edge.decide import Decider, Decision, DecisionConfig, LiveThreshold, PartTrigger, SaturationWatch
from edge.detection import Detector
from edge.detector import make_detector
from edge.health import small_grey
from edge.messages import Log, to_stderr
from edge.metrics import Metrics, MetricsConfig
from edge.runtime import RuntimeOptions, for_runtime
from edge.second_stage import SecondStage, tile_around
from edge.signal_plot import signal_plot
from edge.sinks.base import Sink
from edge.sinks.dispatch import AlertDispatcher, Render
from edge.sources import FrameSource, as_frame_source
from edge.tiling import FrameScorer, GeometryConfig, Scored, Tiler
from edge.watch import Watch

SCORES_KEPT = 100_000  # recent scores kept in the summary; bounded for runs that last months
FLUSH_AT_END_S = 30.0  # at the end of run(), wait this long for the alert worker to catch up


@dataclass
class RunSummary:
    frames: int = 0  # frames read from the source
    inspected: int = 0  # frames scored (frames minus those with no part in view)
    alerts: int = 0
    skipped: int = 0  # unreadable images
    dropped: int = 0  # frames the model never saw (latest-frame mode)
    reopens: int = 0
    truncated: int = 0  # times a video file ended cut short (edge.sources.VideoFileBackend)
    parts: int = 0  # parts seen by the part trigger
    sink_errors: int = 0
    stopped_by: str = ""  # end of input, max-frames, duration, signal, source lost
    error: Optional[str] = None  # why the source was lost
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    scores: deque = field(default_factory=lambda: deque(maxlen=SCORES_KEPT))

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = {
            "frames": self.frames,
            "inspected": self.inspected,
            "alerts": self.alerts,
            "skipped": self.skipped,
            "dropped": self.dropped,
            "reopens": self.reopens,
            "stopped_by": self.stopped_by,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "stage_ms_per_frame": {
                k: round(1000 * v / max(self.inspected, 1), 3) for k, v in self.stage_seconds.items()
            },
        }
        if self.parts:
            d["parts"] = self.parts
        if self.sink_errors:
            d["sink_errors"] = self.sink_errors
        if self.truncated:
            d["truncated"] = self.truncated
        if self.error:
            d["error"] = self.error
        return d


def resolve_geometry(
    bundle: Bundle, override: Optional[GeometryConfig], log: Optional[Log] = None
) -> tuple[GeometryConfig, Optional[Path]]:
    """The bundle's geometry with run-time settings laid over it, and the folder a mask path is relative to.

    Fields set in `override` win. Tiling that differs from the one the threshold was calibrated
    with is allowed (a camera with a new resolution) but logged: the scores will not match.
    """
    stored: Optional[GeometryConfig] = getattr(bundle.manifest, "geometry", None)
    base: Optional[Path] = bundle.path if stored is not None and stored.mask is not None else None
    if override is None:
        return stored or GeometryConfig(), base
    merged = (stored or GeometryConfig()).model_dump()
    for name in override.model_fields_set:
        merged[name] = getattr(override, name)
    if "mask" in override.model_fields_set:
        base = None  # a mask given at run time is relative to the working directory
    result = GeometryConfig.model_validate(merged)
    calibrated_roi = bundle.manifest.preprocessing.roi
    if (
        log is not None
        and "roi" in override.model_fields_set
        and result.roi is not None
        and result.roi != calibrated_roi
    ):
        log(
            f"note: roi {','.join(map(str, result.roi))} replaces the calibrated "
            f"{','.join(map(str, calibrated_roi)) if calibrated_roi else 'whole frame'}; "
            "keep its size (the scale the model sees) or calibrate again"
        )
    if (
        log is not None
        and "tiling" in override.model_fields_set
        and (stored.tiling if stored else None) != result.tiling
    ):
        calibrated = stored.tiling if stored else None
        log(
            f"warning: tiling {_describe_tiling(result)} differs "
            f"from the calibrated {_describe_tiling_cfg(calibrated)}; "
            "scores will not match the threshold: calibrate with the same tiling"
        )
    return result, base


def _describe_tiling_cfg(tiling) -> str:
    if tiling is None:
        return "none (whole frame resized)"
    size = f"{tiling.tile[0]}x{tiling.tile[1]}" if tiling.tile else "model-size"
    return f"{size} tiles, overlap {tiling.overlap:g}"


def _describe_tiling(geometry: GeometryConfig) -> str:
    return _describe_tiling_cfg(geometry.tiling)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def _keep(payload):
    # The stitched map is a reused buffer: copy it when the decider holds on to a frame.
    frame, scored = payload
    return frame, Scored(scored.score, scored.map.copy())


@dataclass
class CapturePrepared:
    """What the capture thread prepares for one frame (Capture.set_prepare): the model input, and
    the small grey copy the health checks read (None when health is off). Both are per-frame image
    work that need not take the inspection loop's time."""

    batch: np.ndarray
    grey: Optional[np.ndarray]


class Pipeline:
    """Wire a bundle to sinks. `run(source)` inspects until the end of input, a limit or `stop()`."""

    def __init__(
        self,
        bundle: Bundle,
        sinks: list[Sink],
        snapshots=None,
        decision: Optional[DecisionConfig] = None,
        num_threads: Optional[int] = None,
        *,
        geometry: Optional[GeometryConfig] = None,
        metrics: Optional[Metrics] = None,
        log: Optional[Log] = None,
        detector: Optional[Detector] = None,
        second_stage: Optional[SecondStage] = None,
        prepare_in_capture: bool = True,
        runtime: Optional[RuntimeOptions] = None,
    ):
        # Its threshold and calibration scores as this runtime runs it (an ONNX model beside the .tflite has its own).
        self.bundle = bundle = for_runtime(bundle, runtime)
        # Optional: a classifier bundle that names what this one flagged (`--classifier`, edge.second_stage).
        self.second_stage = second_stage
        self.log: Log = log or to_stderr
        self.geometry, mask_base = resolve_geometry(bundle, geometry, self.log)
        self.tiler = Tiler(bundle.manifest.preprocessing, self.geometry, base=mask_base)
        # The capture thread's own Tiler (its buffers and layout cache are not shared across
        # threads), made on the capture thread's first frame: it prepares the model input of the
        # next frame while this loop runs the model.
        self._capture_tiler: Optional[Tiler] = None
        self._capture_lock = threading.Lock()
        self._copy_tiles = self.tiler.tiling is not None  # tiles come in a reused buffer
        self.prepare_in_capture = prepare_in_capture  # False: all on the loop (benchmarks compare)
        # How the model runs (edge.runtime: LiteRT, a delegate, ONNX Runtime); a swapped-in bundle runs the same way.
        self.runtime = runtime
        self.detector = detector or make_detector(bundle, num_threads, runtime, self.log)
        self.scorer = FrameScorer(self.detector, self.tiler)
        self.decision = decision or DecisionConfig()
        # The threshold in force: the bundle's, moved at run time by a recorded override (edge/web).
        self.threshold = LiveThreshold(bundle.threshold)
        self.decider = Decider(self.threshold, self.decision, keep=_keep)
        self.trigger = PartTrigger(self.decision.part_trigger, self.tiler.roi) if self.decision.part_trigger else None
        self.saturation = SaturationWatch(self.threshold)
        self.metrics = metrics or Metrics(MetricsConfig(every_seconds=0), log=self.log)
        self.metrics.threshold = bundle.threshold
        self._render_tiler: Optional[Tiler] = None  # the alert worker's own (edge.sinks.dispatch)
        self._render_tiler_of: Optional[Tiler] = None  # the loop's Tiler it is a twin of
        self.attach(sinks, snapshots)
        self.label = self.detector.label
        self.observer = None  # edge run --web: the page's edge.web.observer.Observer
        self.watch: Optional[Watch] = None  # health and drift (edge.watch), set by edge.app
        # A new bundle prepared off the loop (edge.swap.BundleSwap, set by edge.app), taken between two frames.
        self.swap = None
        self.last_image: Optional[np.ndarray] = None  # what a swap's smoke inference runs on
        self.inspection: Optional[str] = None  # its name when one process runs several (edge/inspections.py)
        self._prepared_key: object = self  # the tag of frames the capture thread prepared for this bundle
        self._stop = False
        self._stopped_by_signal = False

    def attach(self, sinks: list[Sink], snapshots=None, dispatcher: Optional[AlertDispatcher] = None) -> None:
        """Where alerts go; `edge run` attaches them last, so a run that fails to start leaves no outputs.

        `dispatcher` (edge run: journal + worker threads, edge.sinks.dispatch) takes the alerts off
        the loop; without one they go to the sinks on this thread, in the same order.
        """
        self.sinks = sinks
        # Sinks marked `immediate` (the GPIO reject line) fire as soon as a frame is flagged, before
        # the classifier, the heatmap, the PNG encodes and the other sinks' fsyncs: the part is
        # moving, and tens of milliseconds of those on a Pi would shift where the gate hits it.
        self._immediate = [s for s in sinks if getattr(s, "immediate", False)]
        after = [s for s in sinks if not getattr(s, "immediate", False)]
        self.snapshots = snapshots
        self.dispatcher = dispatcher or AlertDispatcher(after, snapshots, log=self.log, threaded=False)
        self.dispatcher.metrics = self.metrics

    def stop(self) -> None:
        """Ask the loop to finish after the current frame (signal handlers call this)."""
        self._stop = True
        self._stopped_by_signal = True

    def run(
        self,
        source: FrameSource,
        max_frames: Optional[int] = None,
        on_frame: Optional[Callable[[int, float, bool], None]] = None,
        duration: Optional[float] = None,
    ) -> RunSummary:
        """Inspect frames until the input ends, `max_frames` are read, `duration` seconds pass or stop().

        The source is closed (its capture thread stopped) when this returns; sinks are not: the
        caller closes them, so the alerts queued in them are flushed once, at the end.
        """
        summary = RunSummary(stage_seconds={"preprocess": 0.0, "model": 0.0, "score": 0.0, "decide": 0.0, "alert": 0.0})
        source = as_frame_source(source)
        self.metrics.source = source
        # Preprocessing moves to the capture thread where the source has one (edge.sources.Source);
        # frames that come without it (other sources, a frame it could not prepare) are prepared here.
        prepares = self.prepare_in_capture and source.set_prepare(self._prepare_in_capture, self._prepared_key)
        start = time.perf_counter()
        try:
            while not self._stopped(summary, start, max_frames, duration):
                if self.swap is not None and self.swap.ready is not None:
                    self._take_swap(source, summary, prepares)
                frame = source.poll(0.2)
                if frame is None:
                    if source.ended:
                        summary.error = source.error
                        summary.stopped_by = "source lost" if summary.error else "end of input"
                        break
                    self.metrics.tick()
                    continue
                self.last_image = frame.image
                self._process(frame, summary, on_frame)
                self.metrics.tick()
            last = self.decider.finish()
            if last is not None:
                self._alert(last, summary)
        finally:
            if prepares:
                source.set_prepare(None)
            source.close()
            summary.seconds = time.perf_counter() - start
            self.dispatcher.flush(FLUSH_AT_END_S)  # the summary counts what the sinks did
            self._close_books(summary, source)
        return summary

    def _stopped(self, summary: RunSummary, start: float, max_frames: Optional[int], duration: Optional[float]) -> bool:
        """Whether a stop was asked for or a limit reached; the reason goes in summary.stopped_by."""
        if self._stop:
            summary.stopped_by = "signal" if self._stopped_by_signal else "stop"
        elif max_frames is not None and summary.frames >= max_frames:
            summary.stopped_by = "max-frames"
        elif duration is not None and time.perf_counter() - start >= duration:
            summary.stopped_by = "duration"
        else:
            return False
        return True

    def _take_swap(self, source: FrameSource, summary: RunSummary, prepares: bool) -> None:
        """The bundle edge.swap prepared and checked off the loop takes over here, between two frames:
        only references change hands. The decider keeps its state, and the threshold holder is the same
        object (decider, saturation and drift watches read it), set to the new bundle's threshold."""
        new = self.swap.take()
        if self.trigger is not None and new.tiler.roi != self.tiler.roi:
            last = self.decider.finish()  # a part in view is judged by the bundle that saw it
            if last is not None:
                self._alert(last, summary)
            self.trigger = PartTrigger(self.decision.part_trigger, new.tiler.roi)
        self.bundle, self.geometry, self.tiler = new.bundle, new.geometry, new.tiler
        self.detector, self.scorer, self.label = new.detector, new.scorer, new.detector.label
        self._copy_tiles = new.tiler.tiling is not None
        self._capture_tiler = new.capture_tiler
        if prepares:  # frames the capture thread prepared for the old bundle are prepared again here
            self._prepared_key = new
            source.set_prepare(self._prepare_in_capture, new)
        self.threshold.set(new.threshold)
        self.metrics.threshold = new.threshold
        self.watch = new.watch
        self.swap.adopted(new)

    def _close_books(self, summary: RunSummary, source: FrameSource) -> None:
        """The counts the source, the decider and the metrics kept, into the summary."""
        summary.skipped = int(source.skipped or 0)
        summary.dropped = int(source.dropped or 0)
        summary.reopens = int(source.reopens or 0)
        summary.truncated = int(getattr(source, "truncated", 0) or 0)
        summary.parts = self.decider.parts
        summary.sink_errors = self.metrics.sink_errors

    def _prepare_in_capture(self, image: np.ndarray) -> "CapturePrepared":
        """Model input for one frame, and the health checks' grey copy, made by the capture thread
        (see Capture.set_prepare): the loop only runs the model, scores and decides."""
        with self._capture_lock:  # a reader abandoned by the watchdog could overlap its successor
            if self._capture_tiler is None:
                self._capture_tiler = self.tiler.twin()
            batch = self._capture_tiler.tiles(image)
            batch = batch.copy() if self._copy_tiles else batch
        watch = self.watch
        width = watch.grey_width if watch is not None else None
        return CapturePrepared(batch, small_grey(image, width) if width else None)

    def _process(self, frame: Frame, summary: RunSummary, on_frame) -> None:
        st = summary.stage_seconds
        m = self.metrics
        summary.frames += 1
        t0 = time.perf_counter()
        image = frame.image
        if self.trigger is not None and not self.trigger.update(image):
            # Nothing in view: no inference; a part that just left gets its verdict.
            decision = self.decider.part_left()
            if decision is not None:
                self._alert(decision, summary)
            m.frame_done(float("nan"))
            return
        hw = image.shape[:2]
        prepared = frame.prepared if frame.prepared_by is self._prepared_key else None
        batch = prepared.batch if prepared is not None else None
        if batch is None:
            batch = self.tiler.tiles(image)
            t1 = time.perf_counter()
            prep = t1 - t0
        else:
            # Prepared in the capture thread: the stage is timed where it ran (plus the trigger here).
            t1 = time.perf_counter()
            prep = frame.prepare_seconds + (t1 - t0)
        detection = self.detector.detect(batch)
        t2 = time.perf_counter()
        scored = self.scorer.combine(detection, hw)
        t3 = time.perf_counter()
        decision = self.decider.frame(scored.score, (frame, scored))
        if self.watch is not None:  # before the alert goes out, so it carries the picture's state
            self._watch(frame, scored.score, decision is not None, prepared.grey if prepared is not None else None)
        warning = self.saturation.observe(scored.score)
        if warning:
            self.log(warning)
        if self.observer is not None:  # never waits: a deque append, a frame kept only when a page looks
            self.observer.publish(image, scored.map, scored.score, self.threshold.value, decision is not None)
        t4 = time.perf_counter()
        st["preprocess"] += prep
        st["model"] += t2 - t1
        st["score"] += t3 - t2
        st["decide"] += t4 - t3
        m.observe("preprocess", prep)
        m.observe("model", t2 - t1)
        m.observe("score", t3 - t2)
        m.observe("decide", t4 - t3)
        if decision is not None:
            self._alert(decision, summary)
            t5 = time.perf_counter()
            st["alert"] += t5 - t4
            m.observe("alert", t5 - t4)
        m.observe("total", max(0.0, time.time() - frame.timestamp))
        m.frame_done(scored.score)
        summary.inspected += 1
        summary.scores.append(scored.score)
        if on_frame:
            on_frame(frame.index, scored.score, decision is not None)

    def _alert(self, decision: Decision, summary: RunSummary) -> None:
        frame, scored = decision.payload
        image = frame.image
        hw = image.shape[:2]
        threshold = self.threshold.value
        box = self.tiler.box(scored.map, hw)
        extra = {}
        if decision.part is not None:
            extra = {"part": decision.part, "part_frames": decision.part_frames}
        alert = Alert(
            source=frame.source,
            frame_index=frame.index,
            score=decision.score,
            threshold=threshold,
            label=self.label,
            box=box,
            time=_iso(frame.timestamp),
            extra=extra,
            health=self.watch.unhealthy if self.watch is not None else None,
            bundle_id=self.bundle.id,
            bundle_version=self.bundle.version,
            inspection=self.inspection,
        )
        self._emit(alert, self._immediate)
        drawn, caption = None, self.label
        if self.second_stage is not None:
            alert.label, drawn, caption, alert.box = self._second_stage_verdict(image, hw, box, extra)
            box = alert.box
        render = None
        if self.snapshots is not None:
            # The map is a reused buffer; the frame is not (each read is a new array).
            render = self._renderer(image, scored.map.copy(), decision.score, threshold, box, drawn, caption)
        # From here the alert worker takes over: journal, snapshots, files, network (edge.sinks.dispatch).
        self.dispatcher.submit(alert, render)
        summary.alerts += 1
        self.metrics.alerts += 1

    def _watch(self, frame: Frame, score: float, flagged: bool, grey: Optional[np.ndarray] = None) -> None:
        """Health and drift of this frame; a change of state goes to the sinks as an event (never GPIO).
        `grey`: the health checks' grey copy when the capture thread made it."""
        for event in self.watch.observe(frame.image, score, flagged, frame.timestamp, frame.source, grey):
            self.log(f"{event.kind}: {event.previous} -> {event.state}: {event.advice}")
            event.inspection = self.inspection
            self.metrics.health_event(event)
            self.dispatcher.submit_event(event)

    def _renderer(self, image, heat_map, score: float, threshold: float, box, drawn, caption: str) -> Render:
        """The snapshot pictures of one alert, drawn later on the alert worker (with its own Tiler)."""
        if self.bundle.manifest.signal is not None:  # a window: plotted against its reconstruction
            plot = signal_plot(self.bundle)
            return lambda: plot.render(image, score, threshold, caption)

        tiler = self.tiler  # the bundle that raised it, should a swap come before the worker draws it

        def render():
            if self._render_tiler is None or self._render_tiler_of is not tiler:
                self._render_tiler, self._render_tiler_of = tiler.twin(), tiler
            heat = drawn if drawn is not None else self._render_tiler.frame_map(heat_map, image.shape[:2])
            return image, annotate(image, heat, score, threshold, box, label=caption)

        return render

    def _emit(self, alert: Alert, sinks: list[Sink]) -> None:
        for sink in sinks:
            try:
                sink.emit(alert)
            except Exception as exc:
                self.metrics.sink_errors += 1
                self.log(
                    f"sink {getattr(sink, 'name', type(sink).__name__)} failed "
                    f"on alert {alert.id[:8]}: {type(exc).__name__}: {exc}"
                )

    def _second_stage_verdict(self, image, hw, box, extra: dict):
        """Classify the flagged frame (or the tile around the anomaly): (label, map to draw, caption, box).

        A crack gets its class activation map drawn and its box; anything else is "unknown
        anomaly" with the reconstruction-error map. A failing classifier never costs the alert.
        """
        stage = self.second_stage
        try:
            region = None
            if self.tiler.tiling is not None:
                region = tile_around(self.tiler.layout(hw).tiles, self.tiler.roi, box)
            verdict = stage.classify(image, region)
        except Exception as exc:  # noqa: BLE001 - the first stage's alert goes out regardless
            self.log(
                f"classifier failed on a flagged frame ({type(exc).__name__}: {exc}); alert kept as {self.label!r}"
            )
            return self.label, None, self.label, box
        extra["classifier"] = verdict.to_dict()
        if not verdict.positive:
            return verdict.label, None, verdict.label, box
        caption = f"{verdict.label} p={verdict.probability:.2f}"
        return verdict.label, stage.frame_map(verdict, hw), caption, verdict.box
