"""One bundle carrying the conv autoencoder's .tflite and .onnx, each with its own threshold (issue 17).

The models are benchmarks/onnx_compare.py's (conv autoencoder, 64x64, fitted on 90 % of the
magnetic tiles' train/good; int8 TFLite and int8 ONNX QDQ exports of the same Keras model); its
fit stage makes them when they are missing. Then:

1. `edge calibrate model_int8.tflite --onnx-model model_int8.onnx --normal HOLDOUT --method meanstd:3`
   (the held-out 10 % of train/good, the method onnx_compare.py and quality.md use): two thresholds,
   each set on its own model's scores through its own runtime;
2. each model scores the test split through the device's code (calibration.evaluate.evaluate_bundle,
   as `edge eval BUNDLE [--runtime onnxruntime]`), and flags what its own threshold flags;
3. agreement: the images both flag, the images one flags and the other not, per good/defect; and
   what ONNX Runtime would flag with LiteRT's threshold (why it gets its own).

    nice -n 10 .venv/bin/python benchmarks/onnx_both.py     # → /tmp/edge-onnx/results/both.md
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.onnx_compare import fit_models, log  # noqa: E402  (REPO is on sys.path now)
from benchmarks.quality.run_quality import split_train  # noqa: E402

EDGE = [sys.executable, "-m", "edge_cli"]


def calibrate_both(lite: Path, onnx: Path, held: Path, out: Path) -> str:
    """The calibration command, run (skipped when its bundle is there); its stderr summary returned."""
    cmd = [*EDGE, "calibrate", str(lite), "--onnx-model", str(onnx), "--normal", str(held)]
    cmd += ["--method", "meanstd:3", "--threads", "2", "--no-progress", "--out", str(out)]
    log("$ " + shlex.join(cmd))
    if (out / "bundle.json").is_file():
        return "(bundle already there)"
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    return done.stderr


def flags_of(bundle: Path, data: Path, runtime: str):
    """(files, defective?, scores, own threshold, runtime that set it) of one model on the test split."""
    from calibration.evaluate import evaluate_bundle, load_eval_set
    from edge.bundle import load_bundle
    from edge.runtime import RuntimeOptions, for_runtime

    options = RuntimeOptions(runtime=runtime)
    t = time.perf_counter()
    r = evaluate_bundle(bundle, load_eval_set(data), threads=2, runtime=options)
    log(f"{runtime}: {len(r.files)} test images scored in {time.perf_counter() - t:.0f} s")
    threshold = for_runtime(load_bundle(bundle), options).manifest.threshold
    return r.files, r.labels.astype(bool), r.scores, threshold


def agreement_table(lite, onnx) -> list[str]:
    files, defect, lite_scores, lite_t = lite
    files_o, _, onnx_scores, onnx_t = onnx
    assert files == files_o
    a, b = lite_scores > lite_t.value, onnx_scores > onnx_t.value
    cross = onnx_scores > lite_t.value  # ONNX scores against LiteRT's threshold
    rows = ["| images | n | both flag | LiteRT only | ONNX only | neither | ONNX with LiteRT's threshold flags |"]
    rows.append("|---|---|---|---|---|---|---|")
    for name, sel in (("good", ~defect), ("defective", defect), ("all", np.ones_like(defect))):
        rows.append(
            f"| {name} | {int(sel.sum())} | {int((a & b & sel).sum())} | {int((a & ~b & sel).sum())} | "
            f"{int((~a & b & sel).sum())} | {int((~a & ~b & sel).sum())} | {int((cross & sel).sum())} |"
        )
    agree = float(np.mean(a == b))
    corr = float(np.corrcoef(lite_scores, onnx_scores)[0, 1])
    return [
        f"- LiteRT threshold {lite_t.value:.6g} ({lite_t.method}, {lite_t.runtime}); false alarms on the "
        f"calibration images {lite_t.false_alarm.k}/{lite_t.false_alarm.n}",
        f"- ONNX threshold {onnx_t.value:.6g} ({onnx_t.method}, {onnx_t.runtime}); false alarms on the "
        f"calibration images {onnx_t.false_alarm.k}/{onnx_t.false_alarm.n}",
        f"- frame-score correlation LiteRT int8 vs ONNX int8 on the test split: {corr:.4f}; "
        f"ONNX/LiteRT mean score ratio {float(np.mean(onnx_scores) / np.mean(lite_scores)):.4f}",
        f"- the two runtimes, each with its own threshold, agree on {agree:.1%} of the {len(files)} test images",
        "",
        *rows,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-onnx"))
    args = ap.parse_args()
    models = fit_models(args.data, args.work)["conv"]
    _, held = split_train(args.data, args.work)
    bundle = args.work / "bundles" / "conv-both-int8"
    summary = calibrate_both(models["litert-int8"], models["onnxruntime-int8"], held, bundle)
    lite = flags_of(bundle, args.data, "litert")
    onnx = flags_of(bundle, args.data, "onnxruntime")
    lines = ["calibration summary:", "```", summary.strip(), "```", "", *agreement_table(lite, onnx)]
    out = args.work / "results" / "both.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
