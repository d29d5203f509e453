"""How far the DRAEM int8 map strays from the float one, over training seeds (issue 11).

Trains the tiny DRAEM of tests/test_draem.py (same synthetic data, 32 px, 20 epochs, one thread)
through the CLI, exports int8 (CLI) and float32, and prints one JSON line: the package versions,
per split (test/defect, test/good) the max, 99th percentile and mean of |float - int8| over the
map pixels and their correlation, and the image AUROC of both models with the correlation of
their image scores.

    for s in 0 1 2 3 4 5; do .venv/bin/python benchmarks/stability/draem_int8_agreement.py $s; done

Results: benchmarks/results/draem_int8_agreement.md.
"""

import importlib.metadata as md
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from synthetic import make_mvtec  # noqa: E402  (tests/synthetic.py: the suite's data)

from edge.anomaly_map import AnomalyMapDetector  # noqa: E402
from edge.bundle import read_card  # noqa: E402
from edge.imaging import list_images, read_image  # noqa: E402
from edge.model import TFLiteModel  # noqa: E402
from edge.preprocess import Preprocessing, Preprocessor  # noqa: E402

PACKAGES = ("tensorflow-cpu", "keras", "numpy", "ml_dtypes", "opencv-python-headless", "ai-edge-litert")


def edge(*args) -> str:
    proc = subprocess.run([sys.executable, "-m", "edge_cli", *map(str, args)], capture_output=True, text=True, cwd=REPO)
    if proc.returncode:
        sys.exit(proc.stderr)
    return (proc.stdout.strip().splitlines() or [""])[-1]


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a - b)
    return {
        "maxdiff": round(float(d.max()), 4),
        "p99": round(float(np.quantile(d, 0.99)), 4),
        "mean": round(float(d.mean()), 4),
        "corr": round(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]), 4),
    }


def main(seed: int) -> None:
    from sklearn.metrics import roc_auc_score

    from export.draem import export_draem

    work = Path(tempfile.mkdtemp())
    data = make_mvtec(work / "synthetic", n_train=60, n_test_good=10, n_test_bad=10, size=64)
    run = work / "run"
    edge("train", "autoencoder", "--arch", "draem", "--data", data, "--out", run, "--size", "32",
         "--epochs", "20", "--batch-size", "8", "--threads", "1", "--seed", seed)  # fmt: skip
    int8 = Path(edge("export", run, "--quantize", "int8"))
    f32 = export_draem(run, "float32", log=lambda m: None)
    pre = Preprocessor(Preprocessing(width=32, height=32, color="grey"))
    frames = {s: pre.prepare_batch([read_image(p) for p in list_images(data / "test" / s)]) for s in ("good", "defect")}
    out: dict = {"seed": seed, "versions": {k: md.version(k) for k in PACKAGES}}
    for split, batch in frames.items():
        a, b = (TFLiteModel(m).predict(batch)[0].astype(np.float64) for m in (f32, int8))
        out[split] = agreement(a, b)
    labels = np.r_[np.zeros(len(frames["good"])), np.ones(len(frames["defect"]))]
    scores = {}
    for name, m in (("f32", f32), ("int8", int8)):
        detector = AnomalyMapDetector(TFLiteModel(m), read_card(int8).score)
        scores[name] = np.r_[detector.detect(frames["good"]).scores, detector.detect(frames["defect"]).scores]
        out["auroc_" + name] = round(float(roc_auc_score(labels, scores[name])), 4)
    out["score_corr"] = round(float(np.corrcoef(scores["f32"], scores["int8"])[0, 1]), 4)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
