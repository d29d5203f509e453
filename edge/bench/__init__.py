"""Performance harness: how fast a bundle runs on this machine, measured the way `edge run` runs it.

For each interpreter thread count it measures

  invoke    the model alone: input set once, only `invoke()` timed. The ceiling for this model
            on these cores; nothing the pipeline does can beat it.
  tiles     N tiles in one batched invoke against the same N tiles invoked one by one.
  pipeline  the real `edge.pipeline.Pipeline` with the default alert sinks of `edge run`
            (events.jsonl, events.db, snapshots/, in a scratch folder), fed by the real threaded
            capture: decode -> preprocess -> invoke -> score -> decide -> sinks. Sources are video
            files or synthetic frames of a given size (no decode cost; optionally paced at a
            camera's rate in latest-frame mode, as a live camera runs).

Latencies come from the pipeline's own per-stage metrics (edge.metrics), plus `cycle` (time
between two inspected frames) and `latency` (capture of a frame to its decision). Throughput is
steady-state: the first frames after start are left out. CPU time per frame (all threads of the
process) is reported beside wall time: on a machine shared with other jobs it moves less.

Runs on the device: nothing here imports TensorFlow (`tensorflow_loaded` in the result proves it).

One module per job: machine.py (CPU, versions, peak memory), frames.py (what a pipeline run
reads), stats.py (milliseconds and medians), interpreter.py (invoke, tiles), pipeline.py (the
whole pipeline, and its profile), runner.py (all of it, repeated: `run_bench`). Helpers that only
the benchmark suite and the tests need (a bundle around a bare model) are in benchmarks/helpers.py.
"""

from edge.bench.frames import SourceSpec, SyntheticBackend, synthetic_frames
from edge.bench.interpreter import bench_invoke, bench_tiles
from edge.bench.machine import available_cores, machine_info, peak_rss_mb, reset_peak_rss, whole_peak_rss_mb
from edge.bench.pipeline import bench_pipeline, profile_pipeline
from edge.bench.runner import BenchConfig, run_bench
from edge.bench.stats import latency_stats

__all__ = [
    "BenchConfig",
    "SourceSpec",
    "SyntheticBackend",
    "available_cores",
    "bench_invoke",
    "bench_pipeline",
    "bench_tiles",
    "latency_stats",
    "machine_info",
    "peak_rss_mb",
    "profile_pipeline",
    "reset_peak_rss",
    "run_bench",
    "synthetic_frames",
    "whole_peak_rss_mb",
]
