"""The whole `edge run` pipeline under measurement: the real Pipeline, its default alert sinks and capture.

The pipeline and sinks are assembled by edge.app, as `edge run` does; only the source (a video
looped, or synthetic frames) and the scratch output folder are the benchmark's own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from edge.app import attach_sinks, build_pipeline
from edge.bench.frames import SourceSpec
from edge.bench.machine import peak_rss_mb, reset_peak_rss
from edge.bench.stats import latency_stats, metric_stats
from edge.bundle import Bundle
from edge.config import RunConfig, SinksConfig
from edge.messages import Log
from edge.metrics import Metrics, MetricsConfig
from edge.pipeline import RunSummary
from edge.runtime import RuntimeOptions
from edge.tiling import GeometryConfig

WARMUP_FRAMES = 5  # pipeline frames left out of the steady-state throughput
# --alerting: the decision threshold for the pipeline runs (None: the bundle's own)
ALERTING = {"bundle": None, "all": float("-inf"), "none": float("inf")}
STAGES = ("preprocess", "model", "score", "decide", "alert")


def _quiet(_message: str) -> None:
    pass


class SteadyStateClock:
    """The pipeline's on_frame hook: when each frame was done, and the CPU clocks over the steady state.

    The first WARMUP_FRAMES frames are left out of throughput and CPU time.
    """

    def __init__(self, total: int):
        self.total = total
        self.stamps = np.zeros(total, np.float64)
        self.cpu = np.zeros(total, np.float64)  # process: every thread (capture included)
        self.main_cpu = np.zeros(total, np.float64)  # this thread: the inference loop alone
        self.count = 0

    def __call__(self, _index: int, _score: float, _alert: bool) -> None:
        i = self.count
        if i < self.total:
            self.stamps[i] = time.perf_counter()
            if i == WARMUP_FRAMES or i == self.total - 1:
                # CPU clocks are system calls: read them at the two ends of the window only.
                self.cpu[i] = time.process_time()
                self.main_cpu[i] = time.thread_time()
        self.count = i + 1

    def figures(self) -> dict:
        """Steady-state fps, CPU ms per frame (process, inference thread) and the frame-to-frame cycle."""
        n = min(self.count, self.total)
        first = min(WARMUP_FRAMES, max(n - 2, 0))
        steady = n - 1 - first
        span = self.stamps[n - 1] - self.stamps[first] if steady > 0 else 0.0
        fps = steady / span if span > 0 else 0.0
        whole = steady > 0 and n == self.total and first == WARMUP_FRAMES
        cpu_ms = 1000 * (self.cpu[n - 1] - self.cpu[first]) / steady if whole else None
        main_ms = 1000 * (self.main_cpu[n - 1] - self.main_cpu[first]) / steady if whole else None
        return {"fps": fps, "cpu_ms": cpu_ms, "main_ms": main_ms, "cycle": latency_stats(np.diff(self.stamps[:n]))}


def _bench_config(
    bundle: Bundle,
    threads: int,
    out_dir: Path,
    geometry: Optional[GeometryConfig],
    runtime: Optional[RuntimeOptions] = None,
) -> RunConfig:
    """edge run's config for this bundle with its default sinks, minus stdout, under out_dir."""
    config = RunConfig(bundle=bundle.path, out=out_dir, threads=threads, sinks=SinksConfig(stdout=False))
    if runtime is not None:  # how the model runs: edge bench --runtime/--delegate (edge.runtime)
        for name, value in runtime.model_dump().items():
            setattr(config, name, value)
    if geometry is not None:
        config.geometry = geometry
    return config


def _run_measured(
    config: RunConfig,
    bundle: Bundle,
    spec: SourceSpec,
    metrics: Metrics,
    clock: SteadyStateClock,
    log: Log,
    prepare_in_capture: bool,
    threshold: Optional[float] = None,
) -> RunSummary:
    """Assemble the pipeline and sinks as edge run does, warm them, and run `clock.total` frames."""
    pipeline = build_pipeline(config, log, bundle=bundle, metrics=metrics, prepare_in_capture=prepare_in_capture)
    if threshold is not None:  # --alerting all|none: every frame (or none) raises an alert
        pipeline.decider.threshold = threshold
    built = attach_sinks(config, pipeline)
    try:
        warm = spec.first_frame()
        for _ in range(3):  # interpreter and buffers warm, as after the first seconds of a run
            pipeline.scorer.score(warm)
        return pipeline.run(spec.open(), max_frames=clock.total, on_frame=clock)
    finally:
        built.close()


def bench_pipeline(
    bundle: Bundle,
    spec: SourceSpec,
    threads: int,
    frames: int,
    out_dir: Path,
    geometry: Optional[GeometryConfig] = None,
    log: Optional[Log] = None,
    prepare_in_capture: bool = True,
    threshold: Optional[float] = None,
    runtime: Optional[RuntimeOptions] = None,
) -> dict:
    """`frames` frames through the real Pipeline with edge run's default sinks under `out_dir`.

    `threshold` replaces the bundle's for the decision (ALERTING: -inf, every frame alerts; +inf, none).

    The model input is prepared in the capture thread, as in `edge run`; `prepare_in_capture=False`
    prepares it on the inference loop (the benchmark suite compares the two).
    """
    quiet: Log = log or _quiet
    out_dir.mkdir(parents=True, exist_ok=True)
    config = _bench_config(bundle, threads, out_dir, geometry, runtime)
    metrics = Metrics(MetricsConfig(every_seconds=0), log=quiet, window=frames + 16)
    clock = SteadyStateClock(frames + WARMUP_FRAMES)
    rss_window = reset_peak_rss()
    summary = _run_measured(config, bundle, spec, metrics, clock, quiet, prepare_in_capture, threshold)
    timing = clock.figures()
    stages = {stage: metric_stats(metrics, stage) for stage in STAGES}
    stages["cycle"] = timing["cycle"]
    stages["latency"] = metric_stats(metrics, "total")
    cpu_ms, main_ms = timing["cpu_ms"], timing["main_ms"]
    return {
        "source": spec.label,
        "frame_size": spec.frame_size,
        "frames": summary.frames,
        "inspected": summary.inspected,
        "alerts": summary.alerts,
        "dropped": summary.dropped,
        "fps": round(timing["fps"], 2),
        "cpu_ms_per_frame": round(cpu_ms, 3) if cpu_ms is not None else None,
        "main_thread_cpu_ms_per_frame": round(main_ms, 3) if main_ms is not None else None,
        # Peak RSS while this pipeline ran (model, pipeline, sinks: what `edge run` holds), when
        # the peak could be reset; the whole bench's peak is in the result's peak_rss_mb.
        "peak_rss_mb": peak_rss_mb() if rss_window else None,
        "stages_ms": stages,
    }


def profile_pipeline(
    bundle: Bundle,
    spec: SourceSpec,
    threads: int,
    frames: int,
    out_dir: Path,
    geometry: Optional[GeometryConfig] = None,
    top: int = 25,
) -> str:
    """One pipeline run under cProfile (main thread: the capture thread's decode is not in it);
    the functions that take the most time, by own time, as text."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        bench_pipeline(bundle, spec, threads, frames, out_dir, geometry)
    finally:
        profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    lines = text.getvalue().splitlines()
    # Keep the table, not pstats' preamble; paths shortened to the package.
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    total = next((line.strip() for line in lines if "function calls" in line), "")
    return "\n".join([total, *(_short_path(line) for line in lines[start:] if line.strip())])


def _short_path(line: str) -> str:
    for marker in ("/site-packages/", "/edge/", "/lib/python"):
        i = line.find(marker)
        if i >= 0:
            j = line.rfind(" ", 0, i) + 1
            return line[:j] + line[i + 1 :]
    return line
