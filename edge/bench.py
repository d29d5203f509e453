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
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from edge import __version__
from edge.bundle import Bundle, Manifest, ModelInfo, TensorSpec, Threshold, read_card, write_bundle
from edge.errors import EdgeError
from edge.messages import Log
from edge.model import TFLiteModel, interpreter_backend

QUANTILES = (50, 95, 99)
WARMUP_INVOKES = 10
WARMUP_FRAMES = 5  # pipeline frames left out of the steady-state throughput


# -- parsing --------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise EdgeError(f"--size {text!r}: give WIDTHxHEIGHT in pixels, e.g. 640x480")
    return int(w), int(h)


def parse_threads(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] (order kept, duplicates dropped)."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part.isdigit() or int(part) < 1:
            raise EdgeError(f"--threads {text!r}: give whole numbers >= 1 separated by commas, e.g. 1,2,4")
        if int(part) not in out:
            out.append(int(part))
    return out


def default_threads() -> list[int]:
    cores = available_cores()
    return [1] if cores == 1 else [1, cores]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


# -- statistics -------------------------------------------------------------------------------------


def latency_stats(seconds: np.ndarray) -> dict:
    """Milliseconds: mean, p50, p95, p99, max over the samples."""
    s = np.asarray(seconds, np.float64) * 1000.0
    if s.size == 0:
        return {"n": 0}
    p = np.percentile(s, QUANTILES)
    return {
        "n": int(s.size),
        "mean": round(float(s.mean()), 3),
        "p50": round(float(p[0]), 3),
        "p95": round(float(p[1]), 3),
        "p99": round(float(p[2]), 3),
        "max": round(float(s.max()), 3),
    }


def median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


# -- the machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    # x86: "model name"; Raspberry Pi: "Model" (the board) or "Hardware"; else what Python knows.
    for key in ("model name", "model", "hardware", "cpu model"):
        value = fields.get(key, "")
        if value and not value.isdigit():
            return value
    return platform.processor() or platform.machine()


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    backend, _ = interpreter_backend()
    versions = {
        "edge-inspect": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    dist = {
        "ai-edge-litert": "ai-edge-litert",
        "tflite-runtime": "tflite-runtime",
        "tensorflow.lite": "tensorflow",
    }.get(backend)
    if dist:
        versions[backend] = _version(dist) or "?"
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "system": f"{platform.system()} {platform.release()}",
        "interpreter": backend,
        "versions": versions,
        "opencv_threads": cv2.getNumThreads(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB.

    Linux: VmHWM from /proc/self/status, the high-water mark of this program's own memory.
    (ru_maxrss is not used there: a child started from a big parent inherits the parent's figure.)
    Elsewhere ru_maxrss (bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: `5` to /proc/self/clear_refs resets VmHWM); False if not possible."""
    import gc

    gc.collect()  # models of earlier measurements must not count
    _peak_seen[0] = max(_peak_seen[0], peak_rss_mb())
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


_peak_seen = [0.0]  # the highest peak before the last reset_peak_rss()


def whole_peak_rss_mb() -> float:
    """Peak RSS of this process since it started, across reset_peak_rss() windows."""
    return max(_peak_seen[0], peak_rss_mb())


# -- a bundle for a bare model --------------------------------------------------------------------


def quick_bundle(model_path: str | Path, out_dir: str | Path, threshold: float, method: str = "hand-set") -> Bundle:
    """A bundle around an exported .tflite (its card `<model>.json` beside it) with a given threshold.

    For benchmarks and tests, where the threshold does not matter; real bundles come from
    `edge calibrate`.
    """
    model_path = Path(model_path)
    card = read_card(model_path)
    model = TFLiteModel(model_path, num_threads=1)

    def spec(t) -> TensorSpec:
        return TensorSpec(name=t.name, shape=list(t.shape), dtype=t.dtype, scale=t.scale, zero_point=t.zero_point)

    manifest = Manifest(
        model=ModelInfo(
            file=model_path.name,
            sha256="",
            kind=card.kind,
            quantization=card.quantization,
            input=spec(model.input),
            outputs=[spec(o) for o in model.outputs],
        ),
        preprocessing=card.preprocessing,
        score=card.score,
        threshold=Threshold(value=float(threshold), method=method),
        extra=card.extra,
    )
    return write_bundle(out_dir, manifest, model_path)


# -- synthetic frames -----------------------------------------------------------------------------


def synthetic_frames(width: int, height: int, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """BGR frames of a lit, textured surface; one in `count` carries a dark blob (a defect)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        angle = rng.uniform(0, np.pi)
        base = 110 + 40 * (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
        grey = np.clip(base + rng.normal(0, 4, (height, width)), 0, 255).astype(np.uint8)
        frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        frame[..., 0] = cv2.add(frame[..., 0], 15)
        if i == count - 1:
            r = max(2, min(width, height) // 12)
            cv2.circle(frame, (int(rng.integers(r, width - r)), int(rng.integers(r, height - r))), r, (20, 20, 20), -1)
        frames.append(frame)
    return frames


class SyntheticBackend:
    """A capture backend (read/release) that hands out prepared frames, optionally at a fixed rate."""

    def __init__(self, frames: list[np.ndarray], rate: Optional[float] = None):
        self.frames = frames
        self.period = 1.0 / rate if rate else 0.0
        self._i = 0
        self._next = time.perf_counter()

    def read(self) -> tuple[bool, np.ndarray]:
        if self.period:
            # A camera delivers on its own clock, whether or not anyone keeps up.
            self._next += self.period
            delay = self._next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                self._next = time.perf_counter()
        frame = self.frames[self._i % len(self.frames)]
        self._i += 1
        return True, frame

    def release(self) -> None:
        pass


@dataclass
class SourceSpec:
    """What a pipeline run reads: a video file, or synthetic frames of a size (at a rate)."""

    video: Optional[Path] = None
    size: Optional[tuple[int, int]] = None
    rate: Optional[float] = None

    @property
    def label(self) -> str:
        if self.video is not None:
            return f"video {self.video.name}"
        w, h = self.size  # type: ignore[misc]
        return f"synthetic {w}x{h}" + (f" at {self.rate:g} fps" if self.rate else "")

    def open(self):
        from edge.sources import SourceConfig, open_source

        if self.video is not None:
            # Looped, so --frames is honoured whatever the length of the clip.
            return open_source(config=SourceConfig(video=str(self.video), loop=True, mode="every"))
        w, h = self.size  # type: ignore[misc]
        frames = self._synthetic()
        # A paced source is a camera: latest-frame mode, frames the model cannot take are dropped.
        mode = "latest" if self.rate else "every"
        config = SourceConfig(video=f"synthetic-{w}x{h}", mode=mode)
        return open_source(config=config, opener=lambda: SyntheticBackend(frames, self.rate))

    def _synthetic(self) -> list[np.ndarray]:
        frames = getattr(self, "_frames", None)
        if frames is None:
            frames = self._frames = synthetic_frames(*self.size)  # type: ignore[misc]
        return frames

    def first_frame(self) -> np.ndarray:
        if self.video is None:
            return self._synthetic()[0]
        cap = cv2.VideoCapture(str(self.video))
        ok, frame = cap.read()
        cap.release()
        if not ok or frame is None:
            raise EdgeError(f"cannot decode {self.video}; check the file is a video OpenCV can read")
        return frame


def check_video(path: Path) -> Path:
    if not path.is_file():
        raise EdgeError(f"video not found: {path}")
    return path


# -- measurements ---------------------------------------------------------------------------------


def _random_batch(model: TFLiteModel, n: int, seed: int = 0) -> np.ndarray:
    h, w, c = model.input_hwc
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def bench_invoke(model_path: Path, threads: int, iterations: int) -> dict:
    """The interpreter alone: input set once, then `iterations` invokes timed one by one."""
    model = TFLiteModel(model_path, num_threads=threads)
    model.set_input(_random_batch(model, 1))
    for _ in range(WARMUP_INVOKES):
        model.invoke()
    times = np.empty(iterations, np.float64)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(iterations):
        a = time.perf_counter()
        model.invoke()
        times[i] = time.perf_counter() - a
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "fps": round(iterations / wall, 2),
        "cpu_ms": round(1000 * cpu / iterations, 3),
        "ms": latency_stats(times),
    }


def _invoke_each(model: TFLiteModel, batch: np.ndarray) -> None:
    """One invoke per tile, input setting included (what a fixed-batch model has to do)."""
    for t in batch:
        model.set_input(t[None])
        model.invoke()


def bench_tiles(model_path: Path, threads: int, tiles: int, iterations: int) -> dict:
    """`tiles` tiles in one batched invoke vs the same tiles one invoke each (set_input included)."""
    single = TFLiteModel(model_path, num_threads=threads)
    batch = _random_batch(single, tiles, seed=1)
    if single.fixed_batch == 1:
        # Exported with a fixed batch: the tiles can only go one by one (predict() does so).
        for t in batch[:3]:
            single.predict(t[None])
        times = np.empty(iterations)
        for i in range(iterations):
            a = time.perf_counter()
            _invoke_each(single, batch)
            times[i] = time.perf_counter() - a
        return {
            "tiles": tiles,
            "fixed_batch": 1,
            "one_by_one_ms_per_tile": round(1000 * float(np.median(times)) / tiles, 3),
            "batched_ms_per_tile": None,
            "speedup": None,
        }
    batched = TFLiteModel(model_path, num_threads=threads)
    for _ in range(3):  # warm both, and let the batched one resize its input once
        batched.predict(batch)
        for t in batch:
            single.predict(t[None])
    one_by_one = np.empty(iterations)
    in_one = np.empty(iterations)
    for i in range(iterations):
        a = time.perf_counter()
        _invoke_each(single, batch)
        b = time.perf_counter()
        batched.set_input(batch)
        batched.invoke()
        c = time.perf_counter()
        one_by_one[i], in_one[i] = b - a, c - b
    s, m = float(np.median(one_by_one)), float(np.median(in_one))
    return {
        "tiles": tiles,
        "one_by_one_ms_per_tile": round(1000 * s / tiles, 3),
        "batched_ms_per_tile": round(1000 * m / tiles, 3),
        "speedup": round(s / m, 2) if m > 0 else None,
    }


def bench_pipeline(
    bundle: Bundle,
    spec: SourceSpec,
    threads: int,
    frames: int,
    out_dir: Path,
    geometry=None,
    log: Optional[Log] = None,
    prepare_in_capture: bool = True,
) -> dict:
    """`frames` frames through the real Pipeline with edge run's default sinks under `out_dir`.

    The model input is prepared in the capture thread, as in `edge run`; `prepare_in_capture=False`
    prepares it on the inference loop (the benchmark suite compares the two).
    """
    from edge.app import attach_sinks, build_pipeline
    from edge.config import RunConfig, SinksConfig
    from edge.metrics import Metrics, MetricsConfig

    quiet: Log = log or (lambda msg: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    # edge run's default sinks, minus stdout, under out_dir
    config = RunConfig(bundle=bundle.path, out=out_dir, threads=threads, sinks=SinksConfig(stdout=False))
    if geometry is not None:
        config.geometry = geometry
    metrics = Metrics(MetricsConfig(every_seconds=0), log=quiet, window=frames + 16)
    total = frames + WARMUP_FRAMES
    stamps = np.zeros(total, np.float64)
    cpu = np.zeros(total, np.float64)
    main_cpu = np.zeros(total, np.float64)
    count = [0]

    def on_frame(_index: int, _score: float, _alert: bool) -> None:
        i = count[0]
        if i < total:
            stamps[i] = time.perf_counter()
            if i == WARMUP_FRAMES or i == total - 1:
                # CPU clocks are system calls: read them at the two ends of the window only.
                # Process: every thread (capture included); thread: the inference loop alone.
                cpu[i] = time.process_time()
                main_cpu[i] = time.thread_time()
        count[0] = i + 1

    rss_window = reset_peak_rss()

    pipeline = build_pipeline(config, quiet, bundle=bundle, metrics=metrics, prepare_in_capture=prepare_in_capture)
    built = attach_sinks(config, pipeline)
    try:
        warm = spec.first_frame()
        for _ in range(3):  # interpreter and buffers warm, as after the first seconds of a run
            pipeline.scorer.score(warm)
        source = spec.open()
        summary = pipeline.run(source, max_frames=total, on_frame=on_frame)
    finally:
        built.close()
    n = min(count[0], total)
    first = min(WARMUP_FRAMES, max(n - 2, 0))
    steady = n - 1 - first
    span = stamps[n - 1] - stamps[first] if steady > 0 else 0.0
    fps = steady / span if span > 0 else 0.0
    whole = steady > 0 and n == total and first == WARMUP_FRAMES
    cpu_ms = 1000 * (cpu[n - 1] - cpu[first]) / steady if whole else None
    main_ms = 1000 * (main_cpu[n - 1] - main_cpu[first]) / steady if whole else None
    stages = {}
    for stage in ("preprocess", "model", "score", "decide", "alert"):
        stages[stage] = _metric_stats(metrics, stage)
    stages["cycle"] = latency_stats(np.diff(stamps[:n]))
    stages["latency"] = _metric_stats(metrics, "total")
    return {
        "source": spec.label,
        "frame_size": _frame_size(spec),
        "frames": summary.frames,
        "inspected": summary.inspected,
        "alerts": summary.alerts,
        "dropped": summary.dropped,
        "fps": round(fps, 2),
        "cpu_ms_per_frame": round(cpu_ms, 3) if cpu_ms is not None else None,
        "main_thread_cpu_ms_per_frame": round(main_ms, 3) if main_ms is not None else None,
        # Peak RSS while this pipeline ran (model, pipeline, sinks: what `edge run` holds), when
        # the peak could be reset; the whole bench's peak is in the result's peak_rss_mb.
        "peak_rss_mb": peak_rss_mb() if rss_window else None,
        "stages_ms": stages,
    }


def profile_pipeline(
    bundle: Bundle, spec: SourceSpec, threads: int, frames: int, out_dir: Path, geometry=None, top: int = 25
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
            return line[:j] + line[i + 1 :] if marker != "/edge/" else line[:j] + line[i + 1 :]
    return line


def _metric_stats(metrics, stage: str) -> dict:
    p = metrics.percentiles(stage, 0, qs=(*QUANTILES, 100))
    if p is None:
        return {"n": 0}
    ms = [round(1000 * float(v), 3) for v in p]
    return {"p50": ms[0], "p95": ms[1], "p99": ms[2], "max": ms[3]}


def _frame_size(spec: SourceSpec) -> str:
    if spec.size is not None:
        return f"{spec.size[0]}x{spec.size[1]}"
    cap = cv2.VideoCapture(str(spec.video))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return f"{w}x{h}"


# -- the whole run --------------------------------------------------------------------------------


@dataclass
class BenchConfig:
    threads: list[int]
    sources: list[SourceSpec]
    frames: int = 300
    invokes: int = 300
    tiles: int = 4
    repeat: int = 1
    geometry: object = None  # edge.tiling.GeometryConfig for the pipeline runs, or None
    profile: bool = False  # one more pipeline run (first source, first thread count) under cProfile


def run_bench(bundle: Bundle, config: BenchConfig, out_dir: Optional[Path] = None, log: Optional[Log] = None) -> dict:
    """Every measurement for every thread count, repeated `repeat` times (interleaved, so a burst
    of load from another job spreads over all of them); medians of the repeats are reported."""
    say: Log = log or (lambda msg: None)
    model_path = bundle.model_path
    m = bundle.manifest
    h, w, c = m.preprocessing.input_shape
    result: dict = {
        "machine": machine_info(),
        "load_before": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "bundle": {
            "path": str(bundle.path),
            "kind": m.model.kind,
            "quantization": m.model.quantization,
            "input": f"{w}x{h}x{c} {m.model.input.dtype}",
            "model_bytes": model_path.stat().st_size,
            "score": m.score.kind,
        },
        "config": {"frames": config.frames, "invokes": config.invokes, "tiles": config.tiles, "repeat": config.repeat},
    }
    raw: dict[int, dict] = {
        t: {"invoke": [], "tiles": [], "pipelines": [[] for _ in config.sources]} for t in config.threads
    }
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as scratch:
        out = Path(out_dir) if out_dir is not None else Path(scratch)
        for r in range(config.repeat):
            for t in config.threads:
                tag = f"[{r + 1}/{config.repeat}] {t} thread{'s' if t > 1 else ''}"
                inv = bench_invoke(model_path, t, config.invokes)
                raw[t]["invoke"].append(inv)
                say(f"{tag}: invoke {inv['fps']:.1f}/s, p50 {inv['ms']['p50']:.2f} ms")
                if config.tiles > 1:
                    tl = bench_tiles(model_path, t, config.tiles, max(5, config.invokes // (4 * config.tiles)))
                    raw[t]["tiles"].append(tl)
                    batched = (
                        "fixed batch 1"
                        if tl["batched_ms_per_tile"] is None
                        else f"batched {tl['batched_ms_per_tile']:.2f} ms/tile"
                    )
                    say(f"{tag}: {config.tiles} tiles {batched}, one by one {tl['one_by_one_ms_per_tile']:.2f} ms/tile")
                for i, spec in enumerate(config.sources):
                    p = bench_pipeline(bundle, spec, t, config.frames, out / f"run-{r}-{t}-{i}", config.geometry, log)
                    raw[t]["pipelines"][i].append(p)
                    say(
                        f"{tag}: pipeline {spec.label}: {p['fps']:.1f} fps, "
                        f"cycle p99 {p['stages_ms']['cycle'].get('p99', float('nan')):.2f} ms"
                    )
        if config.profile and config.sources:
            t = config.threads[0]
            say(f"profiling one pipeline run: {config.sources[0].label}, {t} thread(s)")
            result["profile"] = profile_pipeline(
                bundle, config.sources[0], t, config.frames, out / "profile", config.geometry
            )
            result["profile_run"] = {"source": config.sources[0].label, "threads": t, "frames": config.frames}
    result["runs"] = [_summarise(t, raw[t]) for t in config.threads]
    result["load_after"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    result["peak_rss_mb"] = whole_peak_rss_mb()
    result["tensorflow_loaded"] = "tensorflow" in sys.modules
    return result


def _pick_median(items: list[dict], key: Callable[[dict], float]) -> dict:
    """The repeat whose `key` is the median one (the lower middle for an even count)."""
    ordered = sorted(items, key=key)
    return ordered[(len(ordered) - 1) // 2]


def _summarise(threads: int, raw: dict) -> dict:
    inv = _pick_median(raw["invoke"], lambda d: d["fps"])
    run = {
        "threads": threads,
        "invoke": {**inv, "fps_repeats": [d["fps"] for d in raw["invoke"]]},
    }
    if raw["tiles"]:
        tl = _pick_median(raw["tiles"], lambda d: d["speedup"] or 0.0)
        run["tiles"] = {**tl, "speedup_repeats": [d["speedup"] for d in raw["tiles"]]}
    pipelines = []
    for reps in raw["pipelines"]:
        p = _pick_median(reps, lambda d: d["fps"])
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
