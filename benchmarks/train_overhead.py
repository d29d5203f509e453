"""The fixed cost of a training: with the optimizer built before `fit` (train.keras_fit, the default)
and as Keras does it by itself (built inside the first traced training step).

Trains each case REPEATS times each way, alternating, in one process with one TensorFlow thread on
generated data (tests/synthetic.py), and prints the median CPU seconds per training and whether the
two ways give the same weights to the bit. The cases are what the tests train: a 2-epoch 16 px
autoencoder, the shared 15-epoch 32 px one, and a 1-epoch MobileNetV2 classifier at 32 px.

    python benchmarks/train_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

AE_CASES = {
    "autoencoder 16 px, 2 epochs": dict(size=16, filters=(4, 8), latent=8, epochs=2, batch_size=8),
    "autoencoder 32 px, 15 epochs": dict(size=32, filters=(8, 16), latent=16, epochs=15, batch_size=8),
}


def _compile_only(model, optimizer, **compile_args) -> None:
    model.compile(optimizer=optimizer, **compile_args)


def _weights(run: Path) -> list:
    import keras

    return keras.models.load_model(run / "model.keras", compile=False).get_weights()


def _timed(train, out: Path) -> tuple[float, Path]:
    started = time.process_time()
    run = train(out)
    return time.process_time() - started, run


def _case(name: str, train, module, repeats: int, work: Path) -> dict:
    """Median CPU-s of `train(out)` both ways; `module.compile_for_fit` is swapped for plain compile."""
    built_first = module.compile_for_fit
    cpu: dict[str, list[float]] = {"built first": [], "built in the trace": []}
    runs: dict[str, Path] = {}
    for i in range(repeats):
        for way in cpu:
            module.compile_for_fit = built_first if way == "built first" else _compile_only
            try:
                seconds, runs[way] = _timed(train, work / f"{name}-{way}-{i}".replace(" ", "_"))
            finally:
                module.compile_for_fit = built_first
            cpu[way].append(seconds)
    import numpy as np

    same = all(
        np.array_equal(a, b)
        for a, b in zip(_weights(runs["built first"]), _weights(runs["built in the trace"]), strict=True)
    )
    return {"case": name, **{way: statistics.median(v) for way, v in cpu.items()}, "same weights": same}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from synthetic import make_crack_classes, make_mvtec

    import train.autoencoder as autoencoder
    import train.classifier as classifier
    from train.tfenv import import_tensorflow

    import_tensorflow(1)
    work = Path(tempfile.mkdtemp())
    good = make_mvtec(work / "mvtec", n_train=60, n_test_good=1, n_test_bad=1, size=64) / "train" / "good"
    cracks = make_crack_classes(work / "cracks", n_per_class=64, size=32, seed=0)
    quiet = dict(threads=1, progress=False, log=lambda _m: None)
    rows = []
    for name, options in AE_CASES.items():

        def train_ae(out: Path, options=options) -> Path:
            return autoencoder.train_autoencoder(good, out, patience=0, seed=0, **options, **quiet)

        rows.append(_case(name, train_ae, autoencoder, args.repeats, work))

    import keras

    weights = work / "mobilenetv2.weights.h5"
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(weights)
    config = classifier.ClassifierConfig(
        size=32, backbone="mobilenetv2", weights=str(weights), epochs=1, batch_size=32, val_split=0.25, threads=1
    )

    def train_cls(out: Path) -> Path:
        return classifier.train_classifier(cracks, out, config, progress=False, log=lambda _m: None)

    rows.append(_case("classifier MobileNetV2 32 px, 1 epoch", train_cls, classifier, args.repeats, work))
    print("| training | CPU-s, optimizer built first | CPU-s, built in the trace | same weights |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['built first']:.1f} | {r['built in the trace']:.1f} | {r['same weights']} |")
    return rows


if __name__ == "__main__":
    main()
