"""Several cameras in one process: one Pipeline per inspection of `inspections:`, each loop on its thread.

    RunConfig with inspections ──► one RunConfig per inspection (inspection_config: its source, bundle,
                                   geometry, decision, threads; out/<name>/, state/<name>/, MQTT level)
                               ──► edge/app.py's build_pipeline, open_run_source, attach_sinks for each
                               ──► each Pipeline.run on its own thread; SIGINT/SIGTERM stop them all

Each inspection has its own capture thread and watchdog (edge/capture.py), its own interpreter (a
LiteRT interpreter is not thread-safe) and its own sinks, journal and outboxes; a camera that is lost
ends its own inspection only, the others run on. Shared: the process, the event store (one
OUT/events.db, each row names its inspection), the page (it shows the first inspection), SIGHUP
(every inspection loads its bundle again). The exit status is an error when any inspection ended on
one. Why per-inspection sinks rather than one set: an MQTT connection has one last will, so the
`<prefix>/<station>/<inspection>/status` of each inspection needs its own connection.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from edge.app import attach_sinks, build_pipeline, describe_run, report_summary
from edge.config import RunConfig
from edge.errors import EdgeError
from edge.inspection_config import InspectionConfig, multi_problem
from edge.messages import Log, to_stderr
from edge.metrics import ByInspection, serve_collector
from edge.pipeline import Pipeline, RunSummary
from edge.signal_source import open_run_source
from edge.sinks.factory import BuiltSinks
from edge.sources import FrameSource
from edge.swap import swap_for_run
from edge.web.service import prepare_web


def _quiet(_message: str) -> None:
    pass


def inspection_config(config: RunConfig, item: InspectionConfig) -> RunConfig:
    """The single-camera RunConfig of one inspection: its own keys, the rest shared from the top.

    Files per inspection (OUT/<name>/events.jsonl, OUT/<name>/snapshots/, STATE/<name>/ outboxes and
    journal): each has one writer that rotates and prunes it. The event store is shared (WAL, one row
    per alert with its inspection). MQTT: the name is the topic level, and the connection's client id
    gets it too (two connections with one client id would throw each other off the broker).
    """
    sinks = config.sinks.model_copy(deep=True)
    if sinks.sqlite is not None and not Path(sinks.sqlite.path).expanduser().is_absolute():
        sinks.sqlite.path = str((config.out / sinks.sqlite.path).absolute())
    if sinks.mqtt is not None:
        from edge.sinks.mqtt import default_client_id

        client = f"{sinks.mqtt.client_id or default_client_id()}-{item.name}"
        sinks.mqtt = sinks.mqtt.model_copy(update={"inspection": item.name, "client_id": client})
    return config.model_copy(
        update={
            "bundle": item.bundle,
            "classifier": item.classifier,
            "source": item.source,
            "geometry": item.geometry,
            "decision": item.decision,
            "threads": item.threads or config.threads,
            "out": config.out / item.name,
            "state": config.state_dir / item.name,
            "sinks": sinks,
            # One Prometheus endpoint for all, served by run_inspections: each sample labelled by inspection.
            "metrics": config.metrics.model_copy(update={"prometheus_port": None}),
            "inspections": None,
        }
    )


@dataclass
class Inspection:
    """One camera's run: its config, pipeline, source and sinks, and how it ended."""

    name: str
    config: RunConfig
    log: Log
    pipeline: Optional[Pipeline] = None
    source: Optional[FrameSource] = None
    built: Optional[BuiltSinks] = None
    summary: Optional[RunSummary] = None
    failure: Optional[str] = None  # why it ended on an error (source lost, an error in its loop)
    thread: Optional[threading.Thread] = field(default=None, repr=False)

    def run(self, max_frames: Optional[int], duration: Optional[float]) -> None:
        """The loop, on this inspection's thread: whatever ends it ends this inspection only."""
        try:
            self.summary = self.pipeline.run(self.source, max_frames=max_frames, duration=duration)
        except EdgeError as exc:
            self.failure = str(exc)
        except Exception as exc:  # noqa: BLE001 - one camera's fault never stops the others
            self.failure = f"{type(exc).__name__}: {exc}"
        if self.failure is not None:
            self.log(f"stopped on an error: {self.failure}")


@contextmanager
def _named(name: str):
    """An error at start names the inspection it is about (a bundle or camera of which one?)."""
    try:
        yield
    except EdgeError as exc:
        raise EdgeError(f"inspection {name!r}: {exc}") from None


def _prefixed(log: Log, name: str) -> Log:
    return lambda message: log(f"[{name}] {message}")


def prepare(config: RunConfig, log: Log) -> list[Inspection]:
    """Every inspection's bundle loaded and pipeline built: all inputs checked before anything opens."""
    # Checked again here: flags (--camera, --bundle, --prometheus-port, ...) come after the file.
    flagged = [key for key in ("bundle", "classifier", "source") if getattr(config, key) is not None]
    if flagged:
        raise EdgeError(
            f"{', '.join(flagged)} given on the command line, but the config lists `inspections:`: "
            "each inspection names its own source and bundle there; drop those options"
        )
    problem = multi_problem(config)
    if problem is not None:
        raise EdgeError(problem)
    runs = []
    for item in config.inspections or []:
        run = Inspection(item.name, inspection_config(config, item), _prefixed(log, item.name))
        with _named(item.name):
            run.pipeline = build_pipeline(run.config, run.log)
        run.pipeline.inspection = item.name
        run.pipeline.swap = swap_for_run(run.config, run.pipeline, run.log)
        runs.append(run)
    return runs


def _open_sources(runs: list[Inspection]) -> None:
    """Every source, before any output is made; one that cannot open closes those already open."""
    try:
        for run in runs:
            bundle = run.pipeline.bundle
            with _named(run.name):
                run.source = open_run_source(run.config.source, bundle.manifest.signal, str(bundle.path))
    except BaseException:
        for run in runs:
            if run.source is not None:
                run.source.close()
                run.source = None
        raise


def stop_all_on_signals(runs: list[Inspection], log: Log) -> Callable[[], None]:
    """SIGINT/SIGTERM stop every inspection after its current frame; SIGHUP swaps each one's bundle in
    again (edge.swap). Returns what puts the old handlers back."""
    sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.getsignal(sig) for sig in sigs}

    def _stop(_signum, _frame):
        log("stopping (signal received) …")
        for run in runs:
            run.pipeline.stop()

    def _swap(_signum, _frame):
        for run in runs:
            run.pipeline.swap.request("SIGHUP")

    for sig in sigs:
        signal.signal(sig, _swap if sig == getattr(signal, "SIGHUP", None) else _stop)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


@dataclass
class Services:
    """What the inspections share beside their loops: the page and the Prometheus endpoint."""

    web: object = None
    prometheus: object = None

    def close(self) -> None:
        if self.web is not None:
            self.web.close()
        if self.prometheus is not None:
            self.prometheus.shutdown()
            self.prometheus.server_close()


def _start(runs: list[Inspection], config: RunConfig, log: Log, services: Services) -> None:
    """Outputs, swap services, the page and the Prometheus endpoint, then the start-up lines."""
    services.web = prepare_web(config.web)  # a port in use or a missing token: one line before anything opens
    _open_sources(runs)
    m = config.metrics
    if m.prometheus_port is not None:
        services.prometheus = serve_collector(m, ByInspection({run.name: run.pipeline.metrics for run in runs}))
        port = services.prometheus.server_address[1]
        log(f"prometheus metrics on http://{m.prometheus_host}:{port}/metrics (label inspection=<name>)")
    for run in runs:
        run.built = attach_sinks(run.config, run.pipeline)
        run.pipeline.swap.start()
        describe_run(run.pipeline, run.source, run.built, None, run.config, run.log)
    if services.web is not None:
        first = runs[0]
        services.web.start(first.pipeline, first.built, first.source, first.config.out, first.log)
        log(f"the page shows inspection {first.name!r} (the first listed)")


def _close(runs: list[Inspection], services: Services) -> None:
    """Sources, swap services and the page first; then the sinks, which deliver what is queued."""
    for run in runs:
        try:
            run.pipeline.swap.close()
            if run.source is not None:
                run.source.close()
        except Exception as exc:  # noqa: BLE001 - the other inspections still close
            run.log(f"closing: {type(exc).__name__}: {exc}")
    services.close()
    for run in runs:
        if run.built is not None:
            run.built.close()


def _report(runs: list[Inspection], log: Log) -> None:
    """Each inspection's closing lines; one error naming every inspection that ended on one."""
    failed = []
    for run in runs:
        if run.summary is not None:
            try:
                report_summary(run.summary, run.log)
            except EdgeError as exc:
                run.failure = str(exc)
        if run.failure is not None:
            failed.append(f"{run.name}: {run.failure}")
    if failed:
        ok = len(runs) - len(failed)
        raise EdgeError(
            f"{len(failed)} of {len(runs)} inspections ended on an error ({ok} ran to the end): " + "; ".join(failed)
        )
    log(f"all {len(runs)} inspections done")


def run_inspections(
    config: RunConfig, max_frames: Optional[int] = None, quiet: bool = False, duration: Optional[float] = None
) -> dict[str, RunSummary]:
    """Run every inspection of `config.inspections` until each ends (its source, a limit) or SIGINT/SIGTERM.

    `max_frames` and `duration` apply to each inspection. Raises EdgeError (a non-zero exit) when any
    inspection ended on an error, after all of them have ended and their alerts are delivered.
    """
    log: Log = _quiet if quiet else to_stderr
    runs = prepare(config, log)
    services, restore = Services(), None
    try:
        _start(runs, config, log, services)
        restore = stop_all_on_signals(runs, log)
        for run in runs:
            run.thread = threading.Thread(
                target=run.run, args=(max_frames, duration), name=f"inspection-{run.name}", daemon=True
            )
            run.thread.start()
        for run in runs:
            while run.thread.is_alive():
                run.thread.join(0.5)  # a timed join: the signal handlers run on this (main) thread meanwhile
    except BaseException:
        for run in runs:  # Ctrl-C during start-up: the loops already running stop too
            if run.pipeline is not None:
                run.pipeline.stop()
        for run in runs:
            if run.thread is not None:
                run.thread.join(30)
        raise
    finally:
        try:
            _close(runs, services)
        finally:
            if restore is not None:
                restore()
    _report(runs, log)
    return {run.name: run.summary for run in runs if run.summary is not None}
