"""Training on "good" images that are not all good: the feature model with and without --trim.

    .venv/bin/python benchmarks/quality/run_contamination.py [--data /work/shared/datasets/magnetic-tile]
        [--work /tmp/edge-quality] [--fraction 0.05] [--trim 0.08]

Every k-th defective test image is planted among the fitting images (run_quality.py's 90 % split
of train/good) until they make `fraction` of them; the planted images are removed from the
evaluation set (a symlinked MVTec tree), so all three models are scored on the same unseen
defects: clean fit, contaminated fit, contaminated fit with --trim, clean fit with --trim. int8, threshold meanstd:3 on
the held-out 10 % of train/good. Also counts how many planted images `edge train` lists for review
(run.json "suspects"). Writes benchmarks/results/quality_contamination.md.
Data: magnetic-tile defects (Huang, Qiu, Yuan, The Visual Computer 2020).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_quality import calibrate, log, run_eval, split_train  # noqa: E402


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        dst.symlink_to(src.resolve())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-quality"))
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--trim", type=float, default=0.08)
    args = ap.parse_args()
    from export.padim import export_padim
    from train.padim import SUSPECT_Z, PadimConfig, train_padim

    fit, held = split_train(args.data, args.work)
    good = sorted((fit / "train" / "good").iterdir())
    defects = sorted(p for d in sorted((args.data / "test").iterdir()) if d.name != "good" for p in sorted(d.iterdir()))
    n_plant = round(args.fraction / (1 - args.fraction) * len(good))
    step = len(defects) // n_plant
    planted = set(defects[::step][:n_plant])
    log(f"planting {len(planted)} defective images among {len(good)} good ones ({args.fraction:.0%})")

    dirty = args.work / f"contaminated-{args.fraction:g}" / "train" / "good"
    for p in good:
        link(p, dirty / p.name)
    for p in planted:
        link(p, dirty / f"planted_{p.parent.name}_{p.name}")
    eval_root = args.work / f"eval-minus-planted-{args.fraction:g}"
    for d in sorted((args.data / "test").iterdir()):
        for p in sorted(d.iterdir()):
            if p not in planted:
                link(p, eval_root / "test" / d.name / p.name)
    for d in sorted((args.data / "ground_truth").iterdir()):
        link(d, eval_root / "ground_truth" / d.name)

    bundles, suspects = [], {}
    for name, folder, trim in [
        ("clean", fit, 0.0),
        ("contaminated", dirty.parents[1], 0.0),
        (f"contaminated-trim{args.trim:g}", dirty.parents[1], args.trim),
        # what trimming costs where there is nothing to trim
        (f"clean-trim{args.trim:g}", fit, args.trim),
    ]:
        run = args.work / f"padim-{name}-{args.fraction:g}"
        if not (run / "padim.npz").is_file():
            train_padim(folder, run, PadimConfig(trim=trim), log=log)
        suspects[name] = json.loads((run / "run.json").read_text()).get("suspects", [])
        model = run / "export" / "model_int8.tflite"
        if not model.is_file():
            export_padim(run, "int8", log=log)
        bundles.append(calibrate(model, held, args.work / f"bundle-{name}-{args.fraction:g}"))
    out = REPO / "benchmarks" / "results" / "quality_contamination.md"
    run_eval(bundles, eval_root, out)
    # what `edge train` lists for review (run.json "suspects", OUT/suspects.png)
    lines = [
        "",
        "## Training images listed for review",
        "",
        f"`edge train` lists the training images whose cross-fitted peak distance is more than "
        f"{SUSPECT_Z:g} robust standard deviations above the others' (run.json `suspects`, "
        "OUT/suspects.png).",
        "",
        "| fit | images | listed | planted defects among them |",
        "|---|---|---|---|",
    ]
    for name, n in [("clean", len(good)), ("contaminated", len(good) + len(planted))]:
        listed = suspects[name]
        hits = sum(Path(s["file"]).name.startswith("planted_") for s in listed)
        lines.append(
            f"| {name} | {n} | {len(listed)} | " + (f"{hits} of {len(planted)}" if name != "clean" else "–") + " |"
        )
    top = suspects["contaminated"][: len(planted)]
    lines += [
        "",
        f"Among the {len(top)} most suspect images of the contaminated fit, "
        f"{sum(Path(s['file']).name.startswith('planted_') for s in top)} are planted defects.",
        "",
    ]
    out.write_text(out.read_text() + "\n".join(lines))
    log("\n".join(lines))


if __name__ == "__main__":
    main()
