"""`edge bench`: how fast a bundle runs on this machine (interpreter alone, tiles, whole pipeline)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from edge.errors import EdgeError
from edge.messages import to_stderr
from edge_cli import options


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
    """1 and all available cores (1 alone on a single core)."""
    from edge.bench.machine import available_cores

    cores = available_cores()
    return [1] if cores == 1 else [1, cores]


def check_video(path: Path) -> Path:
    if not path.is_file():
        raise EdgeError(f"video not found: {path}")
    return path


def _ms(stats: dict, keys=("p50", "p95", "p99")) -> str:
    if not stats or stats.get("n") == 0:
        return "-"
    return "/".join(f"{stats[k]:.2f}" for k in keys)


def print_report(result: dict, stderr: bool = False) -> None:
    """Three tables for people; `--json` has every number."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=stderr)
    if console.width < 132 and not console.is_terminal:
        console = Console(stderr=stderr, width=132)
    mi, b = result["machine"], result["bundle"]
    console.print(
        f"[bold]edge bench[/bold] {b['path']}: {b['kind']} {b['quantization']}, input {b['input']}, "
        f"model {b['model_bytes'] / 1e6:.2f} MB, score {b['score']}"
    )
    console.print(
        f"machine: {mi['cpu']} ({mi['arch']}), {mi['cores_available']} of {mi['cores']} cores; "
        f"model on {result['runs'][0]['invoke'].get('runtime', mi['interpreter']) if result['runs'] else '-'}; "
        f"load average before {result['load_before']}, after {result['load_after']}"
    )
    inv = Table(title="interpreter alone (the ceiling)", title_justify="left")
    for col in ("threads", "invokes/s", "ms p50/p95/p99", "cpu ms", "tiles batched vs one by one (ms/tile)"):
        inv.add_column(col, justify="right")
    for run in result["runs"]:
        i, t = run["invoke"], run.get("tiles")
        if not t:
            tiles = "-"
        elif t.get("speedup") is None:
            tiles = f"{t['tiles']} tiles: fixed batch 1, one by one {t['one_by_one_ms_per_tile']:.2f}"
        else:
            tiles = (
                f"{t['tiles']} tiles: {t['batched_ms_per_tile']:.2f} vs {t['one_by_one_ms_per_tile']:.2f} "
                f"({t['speedup']:.2f}x)"
            )
        inv.add_row(str(run["threads"]), f"{i['fps']:.1f}", _ms(i["ms"]), f"{i['cpu_ms']:.2f}", tiles)
    console.print(inv)
    thr = Table(title="pipeline throughput (steady state, with the alert sinks)", title_justify="left")
    for col in ("threads", "source", "frame", "fps", "x invoke", "cpu ms/frame", "alerts", "dropped"):
        thr.add_column(col, justify="left" if col == "source" else "right")
    lat = Table(
        title="pipeline latency, ms p50/p99 (cycle: frame to frame; latency: capture to decision; p95 in --json)",
        title_justify="left",
    )
    for col in ("threads", "source", "preprocess", "model", "score", "decide", "alert", "cycle", "latency"):
        lat.add_column(col, justify="left" if col == "source" else "right")
    for run in result["runs"]:
        for p in run["pipelines"]:
            s = p["stages_ms"]
            thr.add_row(
                str(run["threads"]),
                p["source"],
                p["frame_size"],
                f"{p['fps']:.1f}",
                f"{p['vs_invoke']:.2f}" if p.get("vs_invoke") else "-",
                f"{p['cpu_ms_per_frame']:.2f}" if p["cpu_ms_per_frame"] else "-",
                str(p["alerts"]),
                str(p["dropped"]),
            )
            lat.add_row(
                str(run["threads"]),
                p["source"],
                *(
                    _ms(s[k], ("p50", "p99"))
                    for k in ("preprocess", "model", "score", "decide", "alert", "cycle", "latency")
                ),
            )
    console.print(thr)
    console.print(lat)
    console.print(
        f"peak RSS of this process {result['peak_rss_mb']:.0f} MB; TensorFlow loaded: "
        f"{'yes' if result['tensorflow_loaded'] else 'no'}"
    )
    if result.get("profile"):
        console.print("[bold]profile[/bold] (cProfile, main thread, one pipeline run):")
        console.print(result["profile"], markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        bundle: Path = typer.Argument(..., help="Bundle folder (made by `edge calibrate`) whose model is measured."),
        video: Optional[list[Path]] = typer.Option(
            None, "--video", help="Video file to run the pipeline on (looped to --frames); repeatable."
        ),
        size: Optional[list[str]] = typer.Option(
            None,
            "--size",
            help="Synthetic frames of WIDTHxHEIGHT, e.g. 640x480; repeatable (default: 640x480 when no --video; "
            "a signal bundle's window, e.g. 140x1).",
        ),
        rate: Optional[float] = typer.Option(
            None,
            "--rate",
            min=0.1,
            help="Deliver the synthetic frames at this many fps, as a camera does (latest-frame mode: "
            "frames the model cannot take are dropped and counted) (default: as fast as the pipeline takes them).",
        ),
        threads: Optional[str] = typer.Option(
            None, "--threads", help="Interpreter thread counts to compare, e.g. 1,2,4 (default: 1 and all cores)."
        ),
        frames: int = typer.Option(300, "--frames", min=10, help="Frames per pipeline run."),
        invokes: Optional[int] = typer.Option(
            None, "--invokes", min=10, help="Timed invokes for the interpreter-alone figure (default: --frames)."
        ),
        tiles: int = typer.Option(
            4,
            "--tiles",
            min=0,
            help="Compare this many tiles in one batched invoke with one invoke per tile; 0 or 1: skip.",
        ),
        tile: Optional[str] = typer.Option(
            None,
            "--tile",
            help="Run the pipeline with tiling: 'model' (tiles of the model input size) "
            "or WxH frame pixels (default: the bundle's geometry).",
        ),
        repeat: int = typer.Option(
            1,
            "--repeat",
            min=1,
            help="Repeat every measurement (interleaved) and report the median: use 3 or more on a busy machine.",
        ),
        json_path: Optional[Path] = typer.Option(
            None, "--json", help="Also write every number to this JSON file ('-' for stdout, tables then go to stderr)."
        ),
        out: Optional[Path] = typer.Option(
            None,
            "--out",
            help="Keep the alerts the pipeline runs raise (events, "
            "snapshots) here (default: a temporary folder, deleted).",
        ),
        profile: bool = typer.Option(
            False,
            "--profile",
            help="Also run the pipeline once under cProfile (first source, "
            "first thread count) and show where the time goes.",
        ),
        alerting: str = typer.Option(
            "bundle",
            "--alerting",
            help="Which frames raise alerts in the pipeline runs: 'bundle' (its threshold), 'all' (every "
            "frame: the alert path under full load) or 'none' (the loop without alerts).",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
        runtime: Optional[str] = options.runtime(),
        delegate: Optional[str] = options.delegate(),
        delegate_fallback: Optional[str] = options.delegate_fallback(),
        provider: Optional[list[str]] = options.providers(),
    ) -> None:
        """Measure a bundle on this machine: the interpreter alone (the ceiling), batched tiles, and the whole \
`edge run` pipeline with its alert sinks, for each thread count.

        Reports throughput, per-stage latency p50/p95/p99, CPU time per frame, peak memory of this process and the \
model size. Never loads TensorFlow. On a machine shared with other work, use --repeat 3 (or more) and quote the medians.
        """
        from edge.bench import BenchConfig, SourceSpec, run_bench
        from edge.bundle import load_bundle

        if rate is not None and video and not size:
            raise EdgeError(
                "--rate paces synthetic frames; add --size WxH (a video file is read as fast as it decodes)"
            )
        if alerting not in ("bundle", "all", "none"):
            raise EdgeError(f"--alerting {alerting!r}: give bundle, all or none")
        b = load_bundle(bundle)
        specs = [SourceSpec(video=check_video(v)) for v in (video or [])]
        # a signal model's frame is its window, a 1 x length strip (docs/signals.md)
        default_size = f"{b.manifest.signal.length}x1" if b.manifest.signal is not None else "640x480"
        sizes = list(size or ([] if specs else [default_size]))
        specs += [SourceSpec(size=parse_size(s), rate=rate) for s in sizes]
        geometry = None
        if tile is not None:
            from edge.tiling import geometry_with_options

            geometry = geometry_with_options(tile=tile)
        config = BenchConfig(
            threads=parse_threads(threads) if threads else default_threads(),
            sources=specs,
            frames=frames,
            invokes=invokes or frames,
            tiles=tiles,
            repeat=repeat,
            geometry=geometry,
            profile=profile,
            alerting=alerting,
            runtime=options.runtime_options(None, runtime, delegate, delegate_fallback, provider),
        )
        log = (lambda msg: None) if quiet else to_stderr
        result = run_bench(b, config, out_dir=out, log=log)
        result["command"] = "edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if json_path is not None and str(json_path) == "-":
            print_report(result, stderr=True)
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
            return
        print_report(result)
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(result, indent=2) + "\n")
