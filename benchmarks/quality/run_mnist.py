"""The tutorials' MNIST anomaly experiments, re-run with edge-inspect's autoencoder and int8 .tflite.

    .venv/bin/python benchmarks/quality/run_mnist.py [--mnist /work/shared/datasets/mnist-t10k]
        [--work /tmp/edge-mnist] [--epochs 20]

A. digit 1 is normal; 1 % digit 3 is planted among the training images; the threshold is the
   0.999 quantile of the training images' scores (the tutorial's rule): how many planted 3s are
   flagged, and how many flagged images are 1s.
B. digits 1-9 are normal (80 % train, 20 % held out), digit 0 is the anomaly; normal and
   anomaly accuracy at a threshold set on the training scores (0.99 quantile), AUROC, and the
   anomaly accuracy at the tutorial's normal accuracy (0.868) for a like-for-like comparison.
Scores come from the exported int8 .tflite through edge.detector (whole-image MSE, "mean").
Data: MNIST test split (LeCun, Cortes, Burges). Writes benchmarks/results/quality_mnist.md.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_folder(folder: Path, images: np.ndarray, tags: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (im, tag) in enumerate(zip(images, tags)):
        cv2.imwrite(str(folder / f"{i:05d}_{tag}.png"), im)


def train_and_score(folder: Path, run: Path, epochs: int, score_sets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Train the default conv AE on `folder`, export int8, score uint8 arrays with the device's code."""
    from edge.detector import AutoencoderDetector
    from edge.model import TFLiteModel
    from edge.scoring import ScoreConfig
    from export.run import export_run
    from train.autoencoder import train_autoencoder

    if not (run / "model.keras").is_file():
        t = time.perf_counter()
        train_autoencoder(folder, run, size=28, filters=(32, 64), latent=16, epochs=epochs, patience=0,
                          threads=2, progress=False, log=lambda m: None)
        print(f"trained {run.name} in {time.perf_counter() - t:.0f} s", flush=True)
    model = run / "export" / "model_int8.tflite"
    if not model.is_file():
        model = export_run(run, "int8", log=lambda m: None)
    det = AutoencoderDetector(TFLiteModel(model, num_threads=2), ScoreConfig(kind="mean"))
    out = {}
    for name, images in score_sets.items():
        scores = [det.detect(images[i : i + 256, :, :, None]).scores for i in range(0, len(images), 256)]
        out[name] = np.concatenate(scores)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, default=Path("/work/shared/datasets/mnist-t10k"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-mnist"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "quality_mnist.md")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sklearn.metrics import roc_auc_score

    x = read_idx(args.mnist / "t10k-images-idx3-ubyte.gz")
    y = read_idx(args.mnist / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    lines = ["# MNIST: the tutorials' anomaly experiments with edge-inspect's int8 autoencoder", "",
             "Data: MNIST test split (10,000 digits; LeCun, Cortes, Burges). Model: the default conv "
             f"autoencoder (train/autoencoder.py) at 28x28, filters 32,64, latent 16, {args.epochs} epochs, "
             "exported full int8 and scored through edge.detector (whole-image MSE).", "",
             f"Command: `.venv/bin/python benchmarks/quality/run_mnist.py --epochs {args.epochs}`", ""]

    # A: 1s normal, 1 % 3s planted in training, 0.999 quantile threshold on the training scores
    ones = x[y == 1]
    threes = x[y == 3]
    n_planted = int(round(0.01 * len(ones)))
    planted = threes[rng.choice(len(threes), n_planted, replace=False)]
    train_a = np.concatenate([ones, planted])
    tags = ["1"] * len(ones) + ["3"] * n_planted
    folder_a = args.work / "a-train"
    if not folder_a.is_dir():
        write_folder(folder_a, train_a, tags)
    s = train_and_score(folder_a, args.work / "run-a", args.epochs, {"train": train_a})["train"]
    thr = float(np.quantile(s, 0.999))
    flagged = s > thr
    found = int(flagged[len(ones):].sum())
    lines += ["## A. Digit 1 normal, 1 % digit 3 planted among the training images", "",
              f"{len(ones)} ones + {n_planted} threes; threshold = 0.999 quantile of the training scores = {thr:.5f}.", "",
              "| flagged | planted 3s among them | planted 3s found | AUROC (3 vs 1, training set) |",
              "|---|---|---|---|",
              f"| {int(flagged.sum())} | {found} | {found} / {n_planted} | "
              f"{roc_auc_score(np.r_[np.zeros(len(ones)), np.ones(n_planted)], s):.3f} |", ""]
    print("\n".join(lines[-6:]), flush=True)

    # B: digits 1-9 normal, 0 anomalous
    normal = np.flatnonzero(y != 0)
    rng.shuffle(normal)
    cut = int(0.8 * len(normal))
    tr, held = normal[:cut], normal[cut:]
    folder_b = args.work / "b-train"
    if not folder_b.is_dir():
        write_folder(folder_b, x[tr], [str(int(v)) for v in y[tr]])
    sc = train_and_score(folder_b, args.work / "run-b", args.epochs,
                         {"train": x[tr], "held": x[held], "zero": x[y == 0]})
    thr = float(np.quantile(sc["train"], 0.99))
    normal_acc = float(np.mean(sc["held"] <= thr))
    anomaly_acc = float(np.mean(sc["zero"] > thr))
    auroc = roc_auc_score(np.r_[np.zeros(len(sc["held"])), np.ones(len(sc["zero"]))], np.r_[sc["held"], sc["zero"]])
    thr_t = float(np.quantile(sc["held"], 0.868))  # the tutorial's operating point on normal images
    anomaly_at_t = float(np.mean(sc["zero"] > thr_t))
    lines += ["## B. Digits 1-9 normal, digit 0 anomalous", "",
              f"{len(tr)} training images (1-9), {len(held)} held-out normal, {int((y == 0).sum())} zeros.", "",
              "| threshold | normal accuracy | anomaly accuracy |", "|---|---|---|",
              f"| tutorial (its own threshold) | 0.868 | 0.962 |",
              f"| ours: 0.99 quantile of training scores ({thr:.5f}) | {normal_acc:.3f} | {anomaly_acc:.3f} |",
              f"| ours at the tutorial's normal accuracy ({thr_t:.5f}) | 0.868 | {anomaly_at_t:.3f} |", "",
              f"AUROC (held-out 1-9 vs 0): {auroc:.3f}.", ""]
    print("\n".join(lines[-8:]), flush=True)
    args.results.write_text("\n".join(lines))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
