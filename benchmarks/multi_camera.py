"""Several cameras in one process (issue 16): one, two, three 640x480 sources against one alone.

    nice -n 10 .venv/bin/python benchmarks/multi_camera.py [--seconds 20] [--rate 30] [--cameras 1,2,3]
        [--threads 1,2] [--out benchmarks/results/multi_camera.md]

Each run is assembled as `edge run --config` with an `inspections:` list assembles it
(edge/inspections.py: one pipeline, interpreter, capture thread and set of default sinks per
inspection, each loop on its own thread), with the shipped demo bundle (the default model: padim,
int8, 256x256). Each source is a synthetic 640x480 camera delivering at `--rate` frames per second
on its own clock (edge.bench.frames.SyntheticBackend) in latest-frame mode, as a camera runs: frames
the model cannot take are dropped and counted. No frame alerts (the threshold is set to +inf), so
the figures are inspection, not snapshot encoding. For each run: frames per second of each
inspection, frames dropped, and the process's CPU (user + system seconds per wall second: 2.0 is
both cores of this machine), with the load average before the run, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from edge.app import attach_sinks  # noqa: E402
from edge.bench.frames import SourceSpec  # noqa: E402
from edge.bench.machine import machine_info  # noqa: E402
from edge.config import RunConfig, SinksConfig  # noqa: E402
from edge.inspections import prepare  # noqa: E402
from edge.metrics import MetricsConfig  # noqa: E402

DEMO_BUNDLE = REPO / "edge" / "demo" / "bundle"
SIZE = (640, 480)


def _quiet(_message: str) -> None:
    pass


def run_once(cameras: int, threads: int, seconds: float, rate: float, out: Path) -> dict:
    """`cameras` inspections for `seconds`; each one's fps and drops, and the process's CPU."""
    config = RunConfig.model_validate(
        {
            "out": str(out),
            "threads": threads,
            "sinks": SinksConfig(stdout=False),
            "metrics": MetricsConfig(every_seconds=0),
            "inspections": [
                {"name": f"cam{i}", "bundle": str(DEMO_BUNDLE), "source": {"video": f"synthetic-{i}.avi"}}
                for i in range(cameras)
            ],
        }
    )
    runs = prepare(config, _quiet)  # bundles loaded, one interpreter and pipeline per inspection
    for run in runs:
        run.pipeline.threshold.set(float("inf"))  # no alerts: measure inspection, not PNG encoding
        run.source = SourceSpec(size=SIZE, rate=rate).open()  # a camera on its own clock, latest-frame mode
        run.built = attach_sinks(run.config, run.pipeline)
        warm = run.source.poll(5.0)
        if warm is not None:
            for _ in range(3):  # interpreter and buffers warm, as after the first seconds of a run
                run.pipeline.scorer.score(warm.image)
    load = os.getloadavg()
    cpu0, wall0 = os.times(), time.perf_counter()
    threads_ = [threading.Thread(target=run.run, args=(None, seconds)) for run in runs]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    cpu1, wall = os.times(), time.perf_counter() - wall0
    for run in runs:
        run.built.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    each = []
    for run in runs:
        s = run.summary
        delivered = s.frames + s.dropped
        each.append(
            {
                "name": run.name,
                "fps": round(s.fps, 2),
                "frames": s.frames,
                "dropped": s.dropped,
                "dropped_share": round(s.dropped / delivered, 3) if delivered else 0.0,
                "model_ms": round(1000 * s.stage_seconds["model"] / max(s.inspected, 1), 1),
                "failure": run.failure,
            }
        )
    return {
        "cameras": cameras,
        "threads": threads,
        "seconds": round(wall, 1),
        "load_before": [round(x, 2) for x in load],
        "cpu_cores": round(cpu / wall, 2),
        "total_fps": round(sum(e["fps"] for e in each), 2),
        # CPU per inspected frame: what a frame costs whatever share of the machine this process got.
        "cpu_ms_per_frame": round(1000 * cpu / max(sum(e["frames"] for e in each), 1), 1),
        "each": each,
    }


def table(results: list[dict], rate: float) -> str:
    lines = [
        f"| cameras | interpreter threads each | fps each (camera delivers {rate:g}) | total fps | dropped each "
        "(share of delivered) | model ms/frame each (wall) | CPU (cores of 2) | CPU ms per frame "
        "| load average before |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        fps = ", ".join(f"{e['fps']:.1f}" for e in r["each"])
        dropped = ", ".join(f"{e['dropped']} ({100 * e['dropped_share']:.0f}%)" for e in r["each"])
        model = ", ".join(f"{e['model_ms']:.0f}" for e in r["each"])
        lines.append(
            f"| {r['cameras']} | {r['threads']} | {fps} | {r['total_fps']:.1f} | {dropped} | {model} | "
            f"{r['cpu_cores']:.2f} | {r['cpu_ms_per_frame']:.1f} | {r['load_before'][0]:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each run inspects")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second each camera delivers")
    parser.add_argument("--cameras", default="1,2,3", help="numbers of cameras to run, comma separated")
    parser.add_argument("--threads", default="1,2", help="interpreter threads per inspection, comma separated")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (int(x) for x in args.threads.split(",")):
            for cameras in (int(x) for x in args.cameras.split(",")):
                result = run_once(cameras, threads, args.seconds, args.rate, Path(tmp) / f"{cameras}-{threads}")
                print(json.dumps(result), file=sys.stderr)
                results.append(result)
    info = machine_info()
    print(f"machine: {info.get('cpu')} ({info.get('cores')} cores), python {sys.version.split()[0]}")
    print(table(results, args.rate))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
