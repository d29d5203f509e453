"""The DRAEM-style synthetic-defect model (train/draem.py) on magnetic tiles: int8 and float32 side by side.

    .venv/bin/python benchmarks/quality/run_draem.py [--data /work/shared/datasets/magnetic-tile]
        [--work /tmp/edge-draem] [--size 128] [--epochs 100] [--batch-size 16] [--threads 1]

Same protocol as benchmarks/quality/run_quality.py (its split and helpers are imported): 90 % of
train/good fit the model, the held-out 10 % set the threshold (meanstd:3), test/ is only seen by
`edge eval`. Every step goes through the CLI and is skipped when its output already exists in
--work. Writes benchmarks/results/quality_draem[_sSIZE].md (+ worst-miss PNGs): the `edge eval`
table, then the training / export / calibration commands, training time, model size and the
int8-vs-float32 deltas. Settings are chosen on the synthetic validation loss, never on test/.

Data: magnetic-tile defects, Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects",
The Visual Computer 2020 (github.com/abin24/Magnetic-tile-defect-datasets.).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_quality import EDGE, REPO, log, prepare, run_eval  # noqa: E402


def edge(*args: str | Path) -> str:
    """Run an `edge` subcommand, stream its stderr, return its stdout; the command is logged as typed."""
    cmd = [*EDGE, *map(str, args)]
    log("edge " + shlex.join(cmd[3:]))
    proc = subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.PIPE, text=True)
    return proc.stdout


def table_row(md: str, name: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == name:
            return cells
    raise SystemExit(f"no row for {name} in the eval report")


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-draem"))
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="TensorFlow threads for training (the machine is shared)")
    ap.add_argument("--note", default="", help="a paragraph added to the report (e.g. why this size)")
    ap.add_argument(
        "--name",
        default="",
        help="results file stem (default quality_draem, or quality_draem_sSIZE when --size is not 128)",
    )
    args = ap.parse_args()
    work = args.work
    fit, held = prepare(args.data, work)
    tag = f"draem-s{args.size}-e{args.epochs}"
    run = work / tag
    commands: list[str] = []

    train_args = [
        "train",
        "autoencoder",
        "--arch",
        "draem",
        "--data",
        fit,
        "--out",
        run,
        "--size",
        args.size,
        "--epochs",
        args.epochs,
        "--batch-size",
        args.batch_size,
        "--seed",
        0,
        "--threads",
        args.threads,
    ]
    commands.append("edge " + shlex.join(map(str, train_args)))
    if not (run / "model.keras").is_file():
        t = time.perf_counter()
        edge(*train_args)
        log(f"DRAEM training: {time.perf_counter() - t:.0f} s")
    info = json.loads((run / "run.json").read_text())

    bundles: dict[str, Path] = {}
    for q in ("int8", "float32"):
        model = run / "export" / f"model_{q}.tflite"
        commands.append(f"edge export {run} --quantize {q}")
        if not model.is_file():
            edge("export", run, "--quantize", q)
        bundle = work / f"{tag}-{q}"
        cal = ["calibrate", model, "--normal", held, "--method", "meanstd:3", "--out", bundle, "--threads", "2"]
        commands.append("edge " + shlex.join(map(str, cal)))
        if not (bundle / "bundle.json").is_file():
            edge(*cal)
        bundles[q] = bundle

    stem = args.name or ("quality_draem" if args.size == 128 else f"quality_draem_s{args.size}")
    report = args.results / f"{stem}.md"
    run_eval([bundles["int8"], bundles["float32"]], args.data, report)
    md = report.read_text()

    # int8 vs float32, from the table `edge eval` just wrote
    head = [
        c.strip() for c in next(line for line in md.splitlines() if line.startswith("| bundle |")).strip("|").split("|")
    ]
    i8, f32 = table_row(md, bundles["int8"].name), table_row(md, bundles["float32"].name)
    deltas = []
    for col in ("image AUROC", "pixel AUROC", "recall @ 5 % FPR", "F1 @ thr", "recall", "ms/image"):
        if col not in head:  # columns of this edge-inspect's `edge eval`
            continue
        k = head.index(col)
        a, b = _num(i8[k]), _num(f32[k])
        deltas.append(f"| {col} | {b:.3f} | {a:.3f} | {a - b:+.3f} |")
    per_defect = []
    for line in md.splitlines():
        m = re.match(r"\| (\w+) \| (\d+) \| ([\d.]+) / ([\d.]+) / [\d.]+ \| ([\d.]+) / ([\d.]+) / [\d.]+ \|", line)
        if m:
            d, n, ia, pa, ib, pb = m.groups()
            per_defect.append(f"| {d} | {n} | {_num(ia) - _num(ib):+.3f} | {_num(pa) - _num(pb):+.3f} |")

    best = info.get("best", {})
    sizes = {q: (run / "export" / f"model_{q}.tflite").stat().st_size / 1024 for q in bundles}
    extra = [
        "",
        "## DRAEM-style model (train/draem.py): how it was made",
        "",
        "Synthetic defects only (no defective image is ever trained on, no pretrained weights): Perlin-noise "
        "blemishes filled with another good image's texture (shifted, rotated, re-lit, opacity 0.1-1), "
        "cut-and-pasted rectangles, drawn scratches and blobs; half of each epoch's images are left clean. "
        "A reconstructive encoder-decoder (L2 + 1-SSIM to the clean image) and a small U-Net on "
        "(image, reconstruction) with a focal loss against the synthetic mask, trained end to end. The .tflite "
        f"outputs the U-Net's probability map at half resolution ({info['map_shape'][0]}x{info['map_shape'][1]}); "
        f"score: max of the map blurred with sigma {info['score']['blur_sigma']} px (model input).",
        "",
        "Commands (in this order; --work folder: " + str(work) + ", split by run_quality.split_train: every 10th "
        "train/good file held out for the threshold):",
        "",
        "```",
        *commands,
        f"edge eval {bundles['int8']} --data {args.data} --out {report} --threads 2 --compare {bundles['float32']}",
        "```",
        "",
        "| | value |",
        "|---|---|",
        f"| input | {args.size}x{args.size} {info['preprocessing']['color']} |",
        f"| filters per level | {', '.join(map(str, info['config']['filters']))} |",
        f"| parameters | {info['params']:,} |",
        f"| training images | {len(info['train_files'])} (+ {len(info.get('val_files', []))} held back for the "
        "synthetic validation loss) |",
        f"| epochs / batch / learning rate | {info['config']['epochs']} / {info['config']['batch_size']} / "
        f"{info['config']['learning_rate']:g} (x0.2 at 80 % and 90 %) |",
        f"| training time | {info['fit_seconds'] / 60:.1f} min on {info.get('threads') or 'all'} TensorFlow "
        "thread(s), shared 2-core machine |",
        f"| best epoch (lowest synthetic validation loss) | {info['best_epoch']} |",
        f"| synthetic validation: image AUROC / pixel AUROC | {best.get('val_image_auroc', float('nan')):.3f} / "
        f"{best.get('val_pixel_auroc', float('nan')):.3f} |",
        f"| .tflite size int8 / float32 | {sizes['int8']:.0f} KiB / {sizes['float32']:.0f} KiB |",
        "",
        *([args.note, ""] if args.note else []),
        "int8 vs float32 (int8 ranges: 200 training frames + 100 with synthetic defects):",
        "",
        "| metric | float32 | int8 | int8 - float32 |",
        "|---|---|---|---|",
        *deltas,
        "",
        "| defect | n | Δ image AUROC | Δ pixel AUROC |",
        "|---|---|---|---|",
        *per_defect,
        "",
        'Data: magnetic-tile defects, Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects", '
        "The Visual Computer 2020 (github.com/abin24/Magnetic-tile-defect-datasets.).",
        "",
    ]
    if (run / "samples.png").is_file():  # synthetic validation samples: input, mask, reconstruction, map
        samples = args.results / f"{stem}_samples.png"
        samples.write_bytes((run / "samples.png").read_bytes())
        extra[-3:-3] = ["", f"Synthetic validation samples (input / mask / reconstruction / map): `{samples.name}`"]
    report.write_text(md.rstrip("\n") + "\n" + "\n".join(extra))
    log(f"report: {report}")


if __name__ == "__main__":
    main()
