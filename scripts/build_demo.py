#!/usr/bin/env python3
"""Rebuild what `edge demo` ships: a small sample of real magnetic-tile images and an int8 bundle.

    .venv/bin/python scripts/build_demo.py --data ../shared/datasets/magnetic-tile

1. Picks a fixed sample from the test split (good and every defect type) into edge/demo/images/,
   named <kind>_<original stem>.jpg so a viewer can tell which is which.
2. Fits the pretrained-feature anomaly model (`edge train features`, EfficientNet-Lite0 stages 3-4,
   a Gaussian per map cell; 4 MB as int8) on train/good — the sample is never seen in fitting.
   `--model autoencoder` uses the tutorials' conv autoencoder instead (it barely separates these
   defects: image AUROC ~0.57, see benchmarks/results/quality.md).
3. Exports it to full int8 and calibrates the threshold on the REST of the test split (the demo
   sample is held out of calibration too), writing edge/demo/bundle/.

Data: Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects", The Visual Computer 2020
(repository abin24/Magnetic-tile-defect-datasets.); the authors welcome use with citation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.imaging import list_images  # noqa: E402

DEMO = ROOT / "edge" / "demo"
SAMPLE_GOOD = 8
SAMPLE_PER_DEFECT = 2


def pick_sample(data: Path) -> dict[str, list[Path]]:
    """A fixed, spread-out choice: every k-th file of each test folder, so reruns pick the same."""
    sample = {}
    for folder in sorted((data / "test").iterdir()):
        files = list_images(folder)
        n = SAMPLE_GOOD if folder.name == "good" else SAMPLE_PER_DEFECT
        step = max(1, len(files) // n)
        sample[folder.name] = files[step // 2 :: step][:n]
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "magnetic-tile")
    parser.add_argument("--model", choices=("features", "autoencoder"), default="features")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "demo", help="training run folder (not shipped)")
    parser.add_argument("--stages", default="3,4", help="EfficientNet-Lite0 stages (features model)")
    parser.add_argument(
        "--size", type=int, default=None, help="model input side (default: 256 features, 64 autoencoder)"
    )
    parser.add_argument("--epochs", type=int, default=40, help="autoencoder only")
    parser.add_argument("--score", default="max_blur")
    parser.add_argument("--method", default="f1")
    parser.add_argument("--skip-training", action="store_true", help="reuse --run as it is")
    args = parser.parse_args()

    from calibration.calibrate import calibrate
    from export.run import export_run

    sample = pick_sample(args.data)
    images = DEMO / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir(parents=True)
    held_out = set()
    for kind, files in sample.items():
        for path in files:
            shutil.copyfile(path, images / f"{kind}_{path.stem}{path.suffix.lower()}")
            held_out.add(path.resolve())

    if not args.skip_training and args.model == "features":
        from train.padim import PadimConfig, train_padim

        # the shipped demo predates the stride-8 default: a 16x16 map on 120 channels keeps it at 4 MB
        # (the default model is ~18 MB int8); see benchmarks/results/quality.md for what each costs
        config = PadimConfig(
            size=args.size or 256,
            stages=tuple(int(s) for s in args.stages.split(",")),
            grid_stride=16,
            neighbourhood=1,
            dims=0,
        )
        train_padim(args.data, args.run, config)
    elif not args.skip_training:
        from train.autoencoder import train_autoencoder

        train_autoencoder(args.data, args.run, size=args.size or 64, epochs=args.epochs, seed=0)
    model = export_run(args.run, "int8")

    with tempfile.TemporaryDirectory() as tmp:
        normal, anomalous = Path(tmp) / "normal", Path(tmp) / "anomalous"
        normal.mkdir()
        anomalous.mkdir()
        for folder in sorted((args.data / "test").iterdir()):
            target = normal if folder.name == "good" else anomalous
            for path in list_images(folder):
                if path.resolve() not in held_out:
                    shutil.copyfile(path, target / f"{folder.name}_{path.name}")
        bundle_dir = DEMO / "bundle"
        shutil.rmtree(bundle_dir, ignore_errors=True)
        bundle = calibrate(model, normal, anomalous, method=args.method, score=args.score, out=bundle_dir)
    (DEMO / "SOURCE.md").write_text(
        "# Demo sample\n\n"
        f"{sum(len(v) for v in sample.values())} images from the magnetic-tile test split "
        f"({', '.join(f'{k}: {len(v)}' for k, v in sample.items())}), file names prefixed with their folder.\n\n"
        'Huang, Qiu, Yuan: "Saliency of magnetic tile surface defects", The Visual Computer 2020 '
        "(repository abin24/Magnetic-tile-defect-datasets.). The authors welcome use with citation.\n\n"
        f"Rebuilt by `scripts/build_demo.py --model {args.model}`; "
        "the bundle was fitted on train/good and calibrated on the rest of "
        "the test split, never on these images.\n"
    )
    print(
        json.dumps(
            {"bundle": str(bundle.path), "threshold": bundle.threshold, "metrics": bundle.manifest.metrics}, indent=2
        )
    )


if __name__ == "__main__":
    main()
