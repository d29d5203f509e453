"""How long after a frame is flagged does the GPIO reject pulse start? With `edge run`'s default sinks.

    .venv/bin/python benchmarks/gpio_latency.py [--runs 5]

Runs the demo bundle over the demo images (7 of 18 frames alert) with the sinks `edge run` uses by
default — snapshots (two PNGs), events.jsonl with fsync, events.db — plus a GPIO sink on a gpiozero
mock pin, and times each alert from the start of the pipeline's alert step to the GPIO sink's
emit. Needs the `gpio` extra (gpiozero). Prints one line; the figures quoted in
benchmarks/results/gpio_latency.md come from it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="passes over the demo images")
    args = ap.parse_args()
    from gpiozero.pins.mock import MockFactory

    from edge.bundle import load_bundle
    from edge.pipeline import Pipeline
    from edge.sinks.gpio import GpioSink
    from edge.sinks.jsonl import JsonlSink
    from edge.sinks.snapshots import SnapshotStore
    from edge.sinks.sqlite_store import SqliteSink
    from edge.sources import open_source

    delays: list[float] = []
    flagged = {}

    class TimedPipeline(Pipeline):
        def _alert(self, decision, summary):
            flagged["t"] = time.perf_counter()
            super()._alert(decision, summary)

    class TimedGpio(GpioSink):
        def emit(self, alert):
            delays.append((time.perf_counter() - flagged["t"]) * 1000)
            super().emit(alert)

    out = Path(tempfile.mkdtemp(prefix="edge-gpio-latency-"))
    gpio = TimedGpio(17, pulse_ms=1, pin_factory=MockFactory())
    sinks = [JsonlSink(out / "events.jsonl", fsync=True), SqliteSink(out / "events.db"), gpio]
    pipeline = TimedPipeline(
        load_bundle(REPO / "edge" / "demo" / "bundle"),
        sinks,
        SnapshotStore(out / "snapshots"),
        num_threads=1,
        log=lambda m: None,
    )
    for _ in range(args.runs):
        pipeline.run(open_source(images=str(REPO / "edge" / "demo" / "images")))
    for sink in sinks:
        sink.close()
    q = statistics.quantiles(delays, n=20)
    print(
        f"{len(delays)} alerts on {platform.machine()}: GPIO pulse {statistics.median(delays):.2f} ms after the "
        f"frame was flagged (median), p95 {q[-1]:.2f} ms, max {max(delays):.2f} ms"
    )


if __name__ == "__main__":
    main()
