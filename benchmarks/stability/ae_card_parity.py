"""The int8 parity the shared tiny autoencoder's model card records, over training seeds (issue 11).

Trains tests/conftest.py's TINY_AE run on the suite's synthetic data for each seed given, exports
int8 and prints the card's parity (Keras vs .tflite on the run's 6 held-back images) as JSON lines.

    .venv/bin/python benchmarks/stability/ae_card_parity.py 0 1 2 3 4

Results: benchmarks/results/draem_int8_agreement.md (section "Tiny autoencoder").
"""

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from conftest import TINY_AE  # noqa: E402
from synthetic import make_mvtec  # noqa: E402

from edge.bundle import read_card  # noqa: E402
from export.run import export_run  # noqa: E402
from train.autoencoder import train_autoencoder  # noqa: E402

KEYS = ("score_pearson", "score_max_rel_diff", "pixel_max_abs_diff")

if __name__ == "__main__":
    work = Path(tempfile.mkdtemp())
    data = make_mvtec(work / "s", n_train=60, n_test_good=10, n_test_bad=10, size=64)
    for seed in map(int, sys.argv[1:] or ["0"]):
        options = dict(TINY_AE, seed=seed)
        run = train_autoencoder(data, work / f"r{seed}", threads=2, progress=False, log=lambda m: None, **options)
        parity = read_card(export_run(run, "int8", log=lambda m: None)).extra["parity"]
        print(json.dumps({"seed": seed, **{k: round(parity[k], 4) for k in KEYS}}), flush=True)
