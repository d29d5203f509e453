"""`edge bench` as a whole: every measurement for every thread count, repeated, and the medians."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edge.bench.frames import SourceSpec
from edge.bench.interpreter import bench_invoke, bench_tiles
from edge.bench.machine import machine_info, whole_peak_rss_mb
from edge.bench.pipeline import ALERTING, bench_pipeline, profile_pipeline
from edge.bench.stats import median, pick_median
from edge.bundle import Bundle
from edge.messages import Log
from edge.runtime import RuntimeOptions, model_file_for
from edge.tiling import GeometryConfig


@dataclass
class BenchConfig:
    threads: list[int]
    sources: list[SourceSpec]
    frames: int = 300
    invokes: int = 300
    tiles: int = 4
    repeat: int = 1
    geometry: Optional[GeometryConfig] = None  # for the pipeline runs; None: the bundle's own
    profile: bool = False  # one more pipeline run (first source, first thread count) under cProfile
    alerting: str = "bundle"  # all: every frame alerts (the alert path under full load); none: no frame
    runtime: Optional[RuntimeOptions] = None  # how the model runs (edge.runtime); None: LiteRT on the CPU


def _quiet(_message: str) -> None:
    pass


def _load_average() -> Optional[list[float]]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _bundle_facts(bundle: Bundle, model_path: Path) -> dict:
    m = bundle.manifest
    h, w, c = m.preprocessing.input_shape
    return {
        "path": str(bundle.path),
        "kind": m.model.kind,
        "quantization": m.model.quantization,
        "input": f"{w}x{h}x{c} {m.model.input.dtype}",
        "model": model_path.name,
        "model_bytes": model_path.stat().st_size,
        "score": m.score.kind if m.model.kind != "classifier" else m.describe_score(),
    }


def _measure_round(
    bundle: Bundle, config: BenchConfig, r: int, t: int, out: Path, raw: dict, say: Log, log: Optional[Log]
) -> None:
    """Repeat `r` of every measurement with `t` interpreter threads, appended to `raw` (this thread count's)."""
    tag = f"[{r + 1}/{config.repeat}] {t} thread{'s' if t > 1 else ''}"
    model_path = model_file_for(bundle, config.runtime or RuntimeOptions())
    inv = bench_invoke(model_path, t, config.invokes, config.runtime)
    raw["invoke"].append(inv)
    say(f"{tag}: invoke {inv['fps']:.1f}/s, p50 {inv['ms']['p50']:.2f} ms")
    if config.tiles > 1:
        tl = bench_tiles(model_path, t, config.tiles, max(5, config.invokes // (4 * config.tiles)), config.runtime)
        raw["tiles"].append(tl)
        batched = (
            "fixed batch 1" if tl["batched_ms_per_tile"] is None else f"batched {tl['batched_ms_per_tile']:.2f} ms/tile"
        )
        say(f"{tag}: {config.tiles} tiles {batched}, one by one {tl['one_by_one_ms_per_tile']:.2f} ms/tile")
    for i, spec in enumerate(config.sources):
        p = bench_pipeline(
            bundle,
            spec,
            t,
            config.frames,
            out / f"run-{r}-{t}-{i}",
            config.geometry,
            log,
            threshold=ALERTING[config.alerting],
            runtime=config.runtime,
        )
        raw["pipelines"][i].append(p)
        say(
            f"{tag}: pipeline {spec.label}: {p['fps']:.1f} fps, "
            f"cycle p99 {p['stages_ms']['cycle'].get('p99', float('nan')):.2f} ms"
        )


def _profile(bundle: Bundle, config: BenchConfig, out: Path, say: Log) -> dict:
    t, spec = config.threads[0], config.sources[0]
    say(f"profiling one pipeline run: {spec.label}, {t} thread(s)")
    return {
        "profile": profile_pipeline(bundle, spec, t, config.frames, out / "profile", config.geometry),
        "profile_run": {"source": spec.label, "threads": t, "frames": config.frames},
    }


def run_bench(bundle: Bundle, config: BenchConfig, out_dir: Optional[Path] = None, log: Optional[Log] = None) -> dict:
    """Every measurement for every thread count, repeated `repeat` times (interleaved, so a burst
    of load from another job spreads over all of them); medians of the repeats are reported."""
    say: Log = log or _quiet
    result: dict = {
        "machine": machine_info(),
        "load_before": _load_average(),
        "bundle": _bundle_facts(bundle, model_file_for(bundle, config.runtime or RuntimeOptions())),
        "config": {
            "frames": config.frames,
            "invokes": config.invokes,
            "tiles": config.tiles,
            "repeat": config.repeat,
            "alerting": config.alerting,
            "runtime": (config.runtime or RuntimeOptions()).model_dump(exclude_none=True),
        },
    }
    raw: dict[int, dict] = {
        t: {"invoke": [], "tiles": [], "pipelines": [[] for _ in config.sources]} for t in config.threads
    }
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as scratch:
        out = Path(out_dir) if out_dir is not None else Path(scratch)
        for r in range(config.repeat):
            for t in config.threads:
                _measure_round(bundle, config, r, t, out, raw[t], say, log)
        if config.profile and config.sources:
            result.update(_profile(bundle, config, out, say))
    result["runs"] = [_summarise(t, raw[t]) for t in config.threads]
    result["load_after"] = _load_average()
    result["peak_rss_mb"] = whole_peak_rss_mb()
    result["tensorflow_loaded"] = "tensorflow" in sys.modules
    return result


def _summarise(threads: int, raw: dict) -> dict:
    """One thread count's repeats -> the median repeat of each measurement, with every repeat's figure beside it."""
    inv = pick_median(raw["invoke"], lambda d: d["fps"])
    run = {
        "threads": threads,
        "invoke": {**inv, "fps_repeats": [d["fps"] for d in raw["invoke"]]},
    }
    if raw["tiles"]:
        tl = pick_median(raw["tiles"], lambda d: d["speedup"] or 0.0)
        run["tiles"] = {**tl, "speedup_repeats": [d["speedup"] for d in raw["tiles"]]}
    pipelines = []
    for reps in raw["pipelines"]:
        p = pick_median(reps, lambda d: d["fps"])
        p = {**p, "fps_repeats": [d["fps"] for d in reps]}
        # Each repeat against the invoke figure taken just before it (same load), then the median.
        ratios = [d["fps"] / i["fps"] for d, i in zip(reps, raw["invoke"], strict=True) if i["fps"]]
        p["vs_invoke"] = round(median(ratios), 3) if ratios else None
        p["vs_invoke_repeats"] = [round(r, 3) for r in ratios]
        if p.get("main_thread_cpu_ms_per_frame"):
            # The inference loop's CPU per frame against the interpreter's: the ratio a quiet
            # machine would show when the capture thread has a core of its own.
            p["vs_invoke_cpu"] = round(inv["cpu_ms"] / p["main_thread_cpu_ms_per_frame"], 3)
        pipelines.append(p)
    run["pipelines"] = pipelines
    return run
