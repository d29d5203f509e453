"""How long `edge export --quantize int8` takes, through the frozen inference function (the default,
export.convert._converter) and through a SavedModel (TensorFlow's from_keras_model, the fallback).

Trains one run of the given arch on every STEP-th good image of an MVTec AD folder (the CLI's other
defaults), then exports it both ways and prints wall and CPU seconds and whether the two .tflite
files give the same outputs on the run's validation images.

    python benchmarks/export_time.py ../shared/datasets/magnetic-tile --arch features --step 8
    python benchmarks/export_time.py --conversion-only   # convert_keras alone, one thread: MobileNetV2, tiny AE
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?", help="MVTec AD root (its train/good is used)")
    ap.add_argument("--conversion-only", action="store_true", help="time convert_keras alone on built models")
    ap.add_argument("--arch", default="features")
    ap.add_argument("--step", type=int, default=8, help="every STEP-th good image")
    args = ap.parse_args(argv)
    if args.conversion_only:
        return conversion_only()
    if args.data is None:
        ap.error("give the MVTec AD root, or --conversion-only")

    import numpy as np
    from cli_helpers import run_edge_in_process

    import export.convert as convert
    from edge.imaging import list_images
    from edge.model import TFLiteModel
    from export.run import export_run
    from train.data import frames_from_files
    from train.runinfo import read_run_json

    work = Path(tempfile.mkdtemp())
    good = work / "good"
    good.mkdir()
    for path in list_images(args.data / "train" / "good")[:: args.step]:
        (good / path.name).symlink_to(path.resolve())
    started = time.perf_counter()
    trained = run_edge_in_process("train", "autoencoder", "--data", good, "--out", work / "run", "--arch", args.arch)
    if trained.returncode != 0:
        raise SystemExit(trained.stderr)
    result: dict = {"arch": args.arch, "images": len(list_images(good)), "train_s": time.perf_counter() - started}
    frozen_converter = convert._converter
    outputs = {}
    for name in ("frozen", "savedmodel"):
        convert._converter = frozen_converter if name == "frozen" else _savedmodel_converter
        wall, cpu = time.perf_counter(), time.process_time()
        path = export_run(work / "run", "int8", out=work / f"{name}.tflite", log=lambda _m: None)
        result[name] = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1)}
        run = read_run_json(work / "run")
        frames, _ = frames_from_files((run.get("val_files") or run["train_files"])[:8], _preprocessing(run))
        outputs[name] = TFLiteModel(path).predict(frames)[0]
    convert._converter = frozen_converter
    result["max_abs_output_diff"] = float(np.abs(outputs["frozen"] - outputs["savedmodel"]).max())
    print(result)
    return result


def conversion_only() -> dict:
    """convert_keras both ways on a MobileNetV2 classifier with a CAM head and the tests' tiny autoencoder."""
    import os

    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import keras
    import numpy as np

    import export.convert as convert
    from train.autoencoder import build_autoencoder

    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base.output)
    models = {
        "mobilenetv2_cam_32px": (keras.Model(base.input, [keras.layers.Dense(2)(pooled), base.output]), 3),
        "tiny_autoencoder_32px": (build_autoencoder((32, 32, 1), (8, 16), 16), 1),
    }
    frozen_converter, result = convert._converter, {}
    for name, (model, channels) in models.items():
        rep = np.random.default_rng(0).integers(0, 256, (20, 32, 32, channels), dtype=np.uint8)
        for quantize in ("float32", "int8"):
            for how, converter in (("frozen", frozen_converter), ("savedmodel", _savedmodel_converter)):
                convert._converter = converter
                cpu = time.process_time()
                convert.convert_keras(model, quantize, rep)
                result[f"{name} {quantize} {how}"] = round(time.process_time() - cpu, 2)
    convert._converter = frozen_converter
    for key, seconds in result.items():
        print(f"{key}: {seconds} CPU-s")
    return result


def _savedmodel_converter(tf, model):
    return tf.lite.TFLiteConverter.from_keras_model(model)


def _preprocessing(run: dict):
    from edge.preprocess import Preprocessing

    return Preprocessing.model_validate(run["preprocessing"])


if __name__ == "__main__":
    main()
