"""A device run assembled from its config: the one place that wires the stages together.

    RunConfig ──► build_pipeline: bundle, second stage, detector, geometry, decision, metrics
              ──► open_run_source (before any output exists: a wrong path leaves no OUT/ behind)
              ──► attach_sinks: stdout, files, SQLite, snapshots, network sinks
              ──► Pipeline.run until the source ends, a limit, or SIGINT/SIGTERM

`edge run` (edge_cli/commands/run.py) turns its flags into a RunConfig and calls `run_device`;
`edge demo` calls `run_with_default_sinks`; `edge bench` (edge/bench/pipeline.py) builds the same
pipeline and sinks with `build_pipeline` and `attach_sinks` and feeds them its own sources. The
CLI modules only parse arguments and print.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Callable, Optional

from edge.bundle import Bundle, load_bundle
from edge.bundle_command import attach_commands, commands_for_run
from edge.config import RunConfig
from edge.decide import DecisionConfig
from edge.errors import EdgeError
from edge.messages import Log, to_stderr
from edge.metrics import Metrics
from edge.model import interpreter_backend
from edge.pipeline import Pipeline, RunSummary
from edge.signal_source import open_run_source
from edge.sinks.factory import BuiltSinks, build_sinks
from edge.sources import FrameSource, SourceConfig
from edge.swap import swap_for_run
from edge.watch import Watch
from edge.web.sensitivity import apply_recorded_override
from edge.web.service import prepare_web


def _quiet(_message: str) -> None:
    pass


def check_inputs(config: RunConfig) -> None:
    """A run needs a bundle and a source; say how to give each."""
    if config.bundle is None:
        raise EdgeError("no bundle: give --bundle DIR or `bundle:` in the config file")
    if config.source is None:
        raise EdgeError(
            "no source: give --camera N, --video FILE, --images DIR (--signal FILE for a signal model), "
            "or a `source:` section in the config file"
        )


def build_pipeline(
    config: RunConfig,
    log: Log,
    *,
    bundle: Optional[Bundle] = None,
    metrics: Optional[Metrics] = None,
    prepare_in_capture: bool = True,
) -> Pipeline:
    """The bundle, the optional second stage and the pipeline, with no outputs yet: every input checked.

    `bundle` skips loading `config.bundle` (edge bench holds it already, and brings its own source).
    """
    if bundle is None:
        check_inputs(config)
        bundle = load_bundle(config.bundle)  # type: ignore[arg-type]  # checked just above
    second_stage = None
    if config.classifier is not None:
        from edge.second_stage import SecondStage

        second_stage = SecondStage(load_bundle(config.classifier), config.threads)
    pipeline = Pipeline(
        bundle,
        [],
        None,
        config.decision,
        config.threads,
        geometry=config.geometry if config.geometry.model_fields_set else None,
        metrics=metrics or Metrics(config.metrics, log=log),
        log=log,
        second_stage=second_stage,
        prepare_in_capture=prepare_in_capture,
        runtime=config.runtime_options(),
    )
    # A threshold an operator moved on the page (recorded beside the bundle) holds for later runs too.
    apply_recorded_override(pipeline, config.web.override, log)
    # A signal window is no picture: the health checks (covered, blur, camera moved) do not apply.
    health = config.health if bundle.manifest.signal is None else config.health.model_copy(update={"enabled": False})
    # pipeline.bundle: with the threshold and calibration scores in force on this runtime (edge.runtime.for_runtime)
    pipeline.watch = Watch.for_bundle(pipeline.bundle, health, config.drift, pipeline.threshold, pipeline.log)
    return pipeline


def attach_sinks(config: RunConfig, pipeline: Pipeline) -> BuiltSinks:
    """Build the configured sinks under config.out and hand them to the pipeline; the caller closes them."""
    built = build_sinks(config.sinks, config.out, config.state_dir)
    # The sinks are handed over one by one: the pipeline logs and counts a sink that raises. The
    # dispatcher journals each alert and hands it to them off the loop (edge.sinks.dispatch).
    if built.dispatcher is not None:
        built.dispatcher.log = pipeline.log
    pipeline.attach(list(built.group), built.snapshots, built.dispatcher)
    built.bind_run(pipeline)  # MQTT metrics, Sparkplug, OPC UA read the run's counters from beside the loop
    return built


def describe_run(
    pipeline: Pipeline, source: FrameSource, built: BuiltSinks, port: Optional[int], config: RunConfig, log: Log
) -> None:
    """The lines `edge run` starts with: model, second stage, where alerts go, metrics endpoint."""
    bundle, second, m = pipeline.bundle, pipeline.second_stage, pipeline.bundle.manifest
    model = getattr(pipeline.detector, "model", None)
    runner = getattr(model, "runtime", "") or interpreter_backend()[0]
    log(
        f"edge run: {source.name} with {bundle.path} ({m.signal.describe() + ', ' if m.signal else ''}"
        f"{m.model.kind}, {m.model.quantization}, "
        f"score {m.describe_score()}, threshold {m.threshold.value:.6g} by {m.threshold.method}"
        f"{' [calibrated on ' + m.threshold.runtime + ']' if m.threshold.runtime else ''}); "
        f"model {model.path.name if model is not None else m.model.file} on {runner}"
    )
    if second is not None:
        log(
            f"second stage: {second.bundle.path} labels alerts {second.label!r} when its probability > "
            f"{second.threshold:.4g}, else {second.unknown_label!r}"
        )
    log("alerts to: " + ("; ".join(built.described) if built.described else "nowhere (all sinks off)"))
    if port is not None:
        log(f"prometheus metrics on http://{config.metrics.prometheus_host}:{port}/metrics")


def stop_on_signals(pipeline: Pipeline, log: Log) -> Callable[[], None]:
    """SIGINT and SIGTERM finish the current frame and end the run, SIGHUP swaps the bundle in again
    (edge.swap); returns what puts the old handlers back.

    The caller restores them only after the sinks are closed, so a second Ctrl-C while queued
    alerts are being delivered does not cut the delivery short.
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _stop(signum, _frame):
        log("stopping (signal received) …")
        pipeline.stop()

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    for sig in previous:
        signal.signal(sig, _stop)
    hup = getattr(signal, "SIGHUP", None)  # SIGHUP: load the bundle again and swap it in (edge/swap.py)
    swap = getattr(pipeline, "swap", None)  # edge collect hands in a stop flag, which has no bundle to swap
    if hup is not None and swap is not None:
        previous[hup] = signal.getsignal(hup)
        signal.signal(hup, lambda _signum, _frame: swap.request("SIGHUP"))
    return restore


def report_summary(summary: RunSummary, log: Log) -> None:
    """The closing lines; a lost source is an error, so a supervisor (systemd Restart=on-failure) restarts us."""
    log(
        f"done: {summary.frames} frames, {summary.alerts} alerts, {summary.skipped} unreadable skipped, "
        f"{summary.fps:.1f} fps ({summary.stopped_by or 'finished'})"
    )
    log("summary " + json.dumps(summary.to_dict()))
    if summary.stopped_by == "source lost":
        raise EdgeError(f"{summary.error}; check the camera or stream (watchdog.max_reopens in the config)")


def run_device(
    config: RunConfig, max_frames: Optional[int] = None, quiet: bool = False, duration: Optional[float] = None
) -> RunSummary:
    """Run the device loop as `config` says, until the source ends, a limit, or SIGINT/SIGTERM."""
    log: Log = _quiet if quiet else to_stderr
    pipeline = build_pipeline(config, log)
    pipeline.swap = swap_for_run(config, pipeline, log)  # SIGHUP, --watch-bundles, the page (edge/swap.py)
    commands = commands_for_run(config, pipeline.swap, log)  # sinks.mqtt.commands (edge/bundle_command.py)
    metrics = pipeline.metrics
    # The page's port is bound first: a port in use or a missing token is one line before anything opens.
    web = prepare_web(config.web)
    # The source opens before any output is made: a wrong path or a missing camera leaves no OUT/
    # behind. A required broker that is down is found next, and the source closed again.
    try:
        manifest = pipeline.bundle.manifest
        source = open_run_source(config.source, manifest.signal, str(pipeline.bundle.path))
    except BaseException:
        if web is not None:
            web.close()
        raise
    built, restore_signals = None, None
    try:
        port = metrics.serve()
        built = attach_sinks(config, pipeline)
        pipeline.swap.start()
        attach_commands(commands, built)
        if web is not None:
            web.start(pipeline, built, source, config.out, log)
        describe_run(pipeline, source, built, port, config, log)
        restore_signals = stop_on_signals(pipeline, log)
        summary = pipeline.run(source, max_frames=max_frames, duration=duration)
    finally:
        try:
            if commands is not None:
                commands.close()
            pipeline.swap.close()
            source.close()
            metrics.close()
            if web is not None:
                web.close()
        finally:
            # Flushes files, and gives network sinks a bounded time to deliver what is queued.
            if built is not None:
                built.close()
            if restore_signals is not None:
                restore_signals()
    report_summary(summary, log)
    return summary


def run_with_default_sinks(
    bundle_path: Path,
    source: SourceConfig,
    out: Path,
    max_frames: Optional[int] = None,
    threads: Optional[int] = None,
    decision: Optional[DecisionConfig] = None,
    quiet: bool = False,
) -> RunSummary:
    """A run with the default sinks (stdout, events.jsonl, events.db, snapshots/) under `out` (edge demo)."""
    config = RunConfig(bundle=bundle_path, out=out, threads=threads, source=source)
    if decision is not None:
        config.decision = decision
    return run_device(config, max_frames=max_frames, quiet=quiet)
