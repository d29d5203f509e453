"""Re-run the detection-quality benchmark on magnetic tiles: baseline autoencoder vs pretrained features.

    .venv/bin/python benchmarks/quality/run_quality.py [--data /work/shared/datasets/magnetic-tile]
        [--work /tmp/edge-quality] [--only padim|ae] [--ae-size 64 --ae-epochs 20]

Steps (each skipped when its output already exists in --work, so an interrupted run resumes):
1. split train/good deterministically: 90 % fit the model, 10 % (held out) set the threshold
   (meanstd:3 on the held-out scores), so F1 at the threshold is not measured on the data that
   chose it; test/ is only ever used by `edge eval`;
2. PaDiM-style pretrained-feature model (train/padim.py): fit, export float32 and int8,
   calibrate both, evaluate side by side;
3. the tutorials' conv autoencoder (train/autoencoder.py, smaller and shorter than the tutorial
   to fit a 2-core budget), int8, scored as whole-image MSE ("mean") and as max of the blurred
   error map ("max_blur"), each on the squared error and on the structural 1 − SSIM error map,
   evaluated beside the feature model.
Results: benchmarks/results/quality_final.md (+ worst-miss PNGs) — every figure there comes from the
`edge eval` command printed in it.

Data: magnetic-tile defects, Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects",
The Visual Computer 2020 (github.com/abin24/Magnetic-tile-defect-datasets.).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
EDGE = [sys.executable, "-m", "edge_cli"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def split_train(data: Path, work: Path, holdout: float = 0.1) -> tuple[Path, Path]:
    """Symlink folders: work/fit/train/good (90 %) and work/holdout (10 %), every 10th file held out."""
    fit, held = work / "fit" / "train" / "good", work / "holdout"
    if fit.is_dir() and held.is_dir():
        return work / "fit", held
    fit.mkdir(parents=True, exist_ok=True)
    held.mkdir(parents=True, exist_ok=True)
    files = sorted((data / "train" / "good").iterdir())
    every = round(1 / holdout)
    for i, f in enumerate(files):
        target = (held if i % every == every - 1 else fit) / f.name
        if not target.exists():
            target.symlink_to(f.resolve())
    return work / "fit", held


def calibrate(model: Path, normal: Path, out: Path, score: str | None = None, error: str | None = None) -> Path:
    if (out / "bundle.json").is_file():
        return out
    from calibration.calibrate import calibrate as run_calibration

    kwargs = {"score": score} if score else {}
    if error:
        kwargs["error"] = error
    run_calibration(model, normal, None, "meanstd:3", out, threads=2, progress=False, log=lambda m: None, **kwargs)
    return out


def prepare(data: Path, work: Path) -> tuple[Path, Path]:
    """Check the data, quieten TensorFlow, and split train/good: (fitting folder, held-out folder)."""
    if not (data / "test").is_dir():
        sys.exit(f"data not found: {data} (MVTec AD layout expected)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return split_train(data, work)


def run_eval(bundles: list[Path], data: Path, out: Path) -> None:
    cmd = [*EDGE, "eval", str(bundles[0]), "--data", str(data), "--out", str(out), "--threads", "2"]
    for b in bundles[1:]:
        cmd += ["--compare", str(b)]
    log(" ".join(cmd[2:]))
    subprocess.run(cmd, check=True, cwd=REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-quality"))
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--only", choices=["padim", "ae", "all"], default="all")
    ap.add_argument("--ae-size", type=int, default=64)
    ap.add_argument("--ae-epochs", type=int, default=20)
    ap.add_argument("--stages", default="345", help="EfficientNet-Lite0 stages for the feature model (e.g. 234)")
    ap.add_argument("--stride", type=int, default=16, help="feature model: pixels per map cell (8 or 16)")
    ap.add_argument("--dims", type=int, default=0, help="feature model: principal components kept (0: all)")
    ap.add_argument("--neighbourhood", type=int, default=1, help="feature model: cells averaged around each cell")
    ap.add_argument(
        "--no-int8-refit",
        action="store_true",
        help="feature model: keep the float-fitted Gaussians in int8 (to measure what the refit gains)",
    )
    args = ap.parse_args()
    work = args.work
    fit, held = prepare(args.data, work)
    bundles: list[Path] = []

    if args.only in ("padim", "all"):
        from export.padim import export_padim
        from train.padim import PadimConfig, train_padim

        tag = f"padim-s{args.stages}-g{args.stride}-d{args.dims}-n{args.neighbourhood}"
        run = work / tag
        if not (run / "padim.npz").is_file():
            t = time.perf_counter()
            config = PadimConfig(
                stages=tuple(int(c) for c in args.stages),
                grid_stride=args.stride,
                dims=args.dims,
                neighbourhood=args.neighbourhood,
            )
            train_padim(fit, run, config, log=log)
            log(f"padim fit: {time.perf_counter() - t:.0f} s")
        for q in ("int8", "float32"):
            suffix = "-norefit" if q == "int8" and args.no_int8_refit else ""
            model = run / "export" / f"model_{q}{suffix}.tflite"
            if not model.is_file():
                t = time.perf_counter()
                export_padim(run, q, out=model, log=log, refit=not args.no_int8_refit)
                log(f"padim export {q}: {time.perf_counter() - t:.0f} s")
            bundles.append(calibrate(model, held, work / f"{tag}-{q}{suffix}"))

    if args.only in ("ae", "all"):
        from export.run import export_run
        from train.autoencoder import train_autoencoder

        run = work / f"conv-ae-{args.ae_size}"
        if not (run / "model.keras").is_file():
            t = time.perf_counter()
            train_autoencoder(
                fit, run, size=args.ae_size, epochs=args.ae_epochs, patience=0, threads=2, progress=False, log=log
            )
            log(f"conv AE training: {time.perf_counter() - t:.0f} s")
        model = run / "export" / "model_int8.tflite"
        if not model.is_file():
            model = export_run(run, "int8", log=log)
        for score in ("mean", "max_blur"):
            bundles.append(calibrate(model, held, work / f"conv-ae-{score}", score=score))
        for score in ("mean", "max_blur"):  # structural error map (1 - SSIM) instead of the squared difference
            bundles.append(calibrate(model, held, work / f"conv-ae-ssim-{score}", score=score, error="ssim"))

    name = "quality_final.md" if args.only == "all" else f"quality_{args.only}.md"
    if args.only == "padim":
        name = (
            f"quality_padim_s{args.stages}_g{args.stride}_d{args.dims}_n{args.neighbourhood}"
            f"{'_norefit' if args.no_int8_refit else ''}.md"
        )
    run_eval(bundles, args.data, args.results / name)


if __name__ == "__main__":
    main()
