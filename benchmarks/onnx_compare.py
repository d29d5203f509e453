"""LiteRT int8 against ONNX Runtime float32 and int8 (QDQ) on the CPU, side by side (issue 17).

For the default feature model and the conv autoencoder, fitted on magnetic tiles as
benchmarks/quality/run_quality.py does (90 % of train/good fit, 10 % held out for the threshold,
`meanstd:3`): export each way, calibrate each through its own runtime, then

1. quality: `edge eval` of the three bundles on the test split (image AUROC, pixel AUROC, ...);
2. score parity: each bundle's frame scores on the test images against the ONNX float32 model's
   (a stand-in for Keras: tf2onnx float parity with Keras is ~1e-7) and against LiteRT int8's;
3. speed and memory: `edge bench` of each bundle (`--runtime onnxruntime` for the .onnx),
   run under `nice -n 10` on the shared machine.

Every command is printed and written to the results file with its figures:

    nice -n 10 .venv/bin/python benchmarks/onnx_compare.py            # → benchmarks/results/onnx.md
    nice -n 10 .venv/bin/python benchmarks/onnx_compare.py --stage bench --subset 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the same 90/10 split of train/good as quality.md's figures (every 10th file held out)
from benchmarks.quality.run_quality import split_train  # noqa: E402  (REPO is on sys.path now)

EDGE = [sys.executable, "-m", "edge_cli"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _quiet(_m: str) -> None:
    pass


def calibrate(model: Path, normal: Path, out: Path) -> Path:
    if (out / "bundle.json").is_file():
        return out
    from calibration.calibrate import calibrate as run_calibration

    t = time.perf_counter()
    run_calibration(model, normal, None, "meanstd:3", out, threads=2, progress=False, log=_quiet)
    log(f"calibrated {out.name} in {time.perf_counter() - t:.0f} s")
    return out


def fit_models(data: Path, work: Path) -> dict[str, dict[str, Path]]:
    """{family: {variant: model file}} for the default feature model and the conv autoencoder."""
    from export.onnx import export_onnx
    from export.padim import export_padim
    from export.run import export_run
    from train.autoencoder import train_autoencoder
    from train.padim import train_padim

    fit, _ = split_train(data, work)
    padim, ae = work / "padim-default", work / "conv-ae-64"
    if not (padim / "padim.npz").is_file():
        t = time.perf_counter()
        train_padim(fit, padim, log=log)
        log(f"padim fit: {time.perf_counter() - t:.0f} s")
    if not (ae / "model.keras").is_file():
        train_autoencoder(fit, ae, size=64, epochs=20, patience=0, threads=2, progress=False, log=log)
    models: dict[str, dict[str, Path]] = {"default": {}, "conv": {}}
    for family, run in (("default", padim), ("conv", ae)):
        lite = run / "export" / "model_int8.tflite"
        if not lite.is_file():
            t = time.perf_counter()
            export_padim(run, "int8", out=lite, log=log) if family == "default" else export_run(run, "int8", log=log)
            log(f"{family} TFLite int8 export: {time.perf_counter() - t:.0f} s")
        models[family]["litert-int8"] = lite
        for q in ("float32", "int8"):
            target = run / "export" / f"model_{q}.onnx"
            if not target.is_file():
                t = time.perf_counter()
                export_onnx(run, q, out=target, log=log)
                log(f"{family} ONNX {q} export: {time.perf_counter() - t:.0f} s")
            models[family][f"onnxruntime-{q}"] = target
    return models


def bundles_of(models: dict[str, dict[str, Path]], data: Path, work: Path) -> dict[str, dict[str, Path]]:
    _, held = split_train(data, work)
    return {
        fam: {v: calibrate(m, held, work / "bundles" / f"{fam}-{v}") for v, m in variants.items()}
        for fam, variants in models.items()
    }


def test_images(data: Path, subset: int) -> list[Path]:
    files = sorted(p for p in (data / "test").rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if subset and len(files) > subset:
        files = [files[i] for i in np.linspace(0, len(files) - 1, subset).round().astype(int)]
    return files


def score_parity(bundles: dict[str, Path], files: list[Path]) -> dict:
    """Frame scores of every bundle on `files`, each through its own runtime; Pearson and max |diff| vs the others."""
    from edge.bundle import load_bundle
    from edge.detector import make_detector
    from edge.preprocess import Preprocessor
    from train.data import load_images

    loaded = load_images(files, what="test images")
    scores, ms = {}, {}
    for name, path in bundles.items():
        b = load_bundle(path)
        detector = make_detector(b, 2)
        frames = Preprocessor(b.manifest.preprocessing).prepare_batch(loaded.images)
        t = time.perf_counter()
        scores[name] = np.concatenate([detector.detect(frames[i : i + 16]).scores for i in range(0, len(frames), 16)])
        ms[name] = 1000 * (time.perf_counter() - t) / len(frames)
    out = {"images": len(frames), "ms_per_image": ms, "pairs": {}}
    names = list(scores)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = scores[a], scores[b]
            out["pairs"][f"{a} vs {b}"] = {
                "pearson": float(np.corrcoef(x, y)[0, 1]),
                "spearman": float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1]),
                "max_rel_diff": float(np.max(np.abs(x - y)) / np.mean(np.abs(x))),
            }
    return out


def run(cmd: list[str], env=None) -> None:
    log(" ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, cwd=REPO, env=env)


def bench(bundle: Path, variant: str, out: Path, frames: int, repeat: int) -> dict:
    if out.is_file():
        return json.loads(out.read_text())
    flags = ["--runtime", "onnxruntime"] if variant.startswith("onnxruntime") else []
    cmd = ["nice", "-n", "10", *EDGE, "bench", bundle, "--threads", "1,2", "--frames", frames, "--tiles", "0"]
    run([*cmd, "--repeat", repeat, "--size", "640x480", "--quiet", "--json", out, *flags])
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-onnx"))
    ap.add_argument("--stage", choices=["fit", "parity", "eval", "bench", "report", "all"], default="all")
    ap.add_argument("--subset", type=int, default=0, help="parity on this many test images (0: all)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work = args.work
    results = work / "results"
    results.mkdir(parents=True, exist_ok=True)
    models = fit_models(args.data, work)
    bundles = bundles_of(models, args.data, work)
    (results / "bundles.json").write_text(
        json.dumps({f: {v: str(p) for v, p in d.items()} for f, d in bundles.items()})
    )
    if args.stage in ("parity", "all"):
        files = test_images(args.data, args.subset)
        for fam, variants in bundles.items():
            p = score_parity(variants, files)
            (results / f"parity-{fam}.json").write_text(json.dumps(p, indent=2))
            log(f"{fam}: {json.dumps(p)}")
    if args.stage in ("eval", "all"):
        for fam, variants in bundles.items():
            paths = list(variants.values())
            cmd = [
                *EDGE,
                "eval",
                paths[0],
                "--data",
                args.data,
                "--out",
                REPO / "benchmarks" / "results" / f"onnx_eval_{fam}.md",
            ]
            for p in paths[1:]:
                cmd += ["--compare", p]
            run(["nice", "-n", "10", *cmd, "--threads", "2"])
    if args.stage in ("bench", "all"):
        for fam, variants in bundles.items():
            for v, path in variants.items():
                r = bench(path, v, results / f"bench-{fam}-{v}.json", args.frames, args.repeat)
                inv = {x["threads"]: x["invoke"] for x in r["runs"]}
                log(
                    f"{fam} {v}: "
                    + ", ".join(f"{t} thr {i['fps']:.1f}/s p99 {i['ms']['p99']:.2f} ms" for t, i in inv.items())
                )
    if args.stage in ("report", "all"):
        write_report(bundles, results, REPO / "benchmarks" / "results" / "onnx_figures.md")


def write_report(bundles: dict[str, dict[str, Path]], results: Path, out: Path) -> None:
    """Every figure this script measured, as tables (benchmarks/results/onnx.md discusses them)."""
    lines = ["# LiteRT vs ONNX Runtime: the figures (benchmarks/onnx_compare.py)", ""]
    lines += ["## edge bench (model alone and whole pipeline, 640x480 synthetic frames)", ""]
    lines += [
        "| model | runtime | threads | invokes/s | invoke ms p50/p99 | pipeline fps | cycle ms p99 | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fam, variants in bundles.items():
        for v in variants:
            f = results / f"bench-{fam}-{v}.json"
            if not f.is_file():
                continue
            r = json.loads(f.read_text())
            for run in r["runs"]:
                i, p = run["invoke"], run["pipelines"][0]
                cycle = p["stages_ms"]["cycle"].get("p99", float("nan"))
                lines.append(
                    f"| {fam} | {v} | {run['threads']} | {i['fps']:.1f} | {i['ms']['p50']:.2f} / {i['ms']['p99']:.2f} "
                    f"| {p['fps']:.1f} | {cycle:.2f} | {r['peak_rss_mb']:.0f} |"
                )
    lines += ["", "## Score parity on the test images (frame scores, each bundle through its own runtime)", ""]
    lines += ["| model | pair | Pearson | Spearman | max abs diff / mean |", "|---|---|---|---|---|"]
    for fam in bundles:
        f = results / f"parity-{fam}.json"
        if f.is_file():
            p = json.loads(f.read_text())
            for pair, v in p["pairs"].items():
                lines.append(
                    f"| {fam} ({p['images']} images) | {pair} | {v['pearson']:.4f} | {v['spearman']:.4f} | "
                    f"{v['max_rel_diff']:.3f} |"
                )
    out.write_text("\n".join(lines) + "\n")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
