"""How `edge export --format onnx` quantizes (export/onnx.py quantize_qdq): the measurements behind the choice.

QDQ int8 of a float .onnx with onnxruntime.quantization.quantize_static, weights uint8 or int8,
per channel or per tensor, ranges from training frames; each variant timed (batch of one, one
thread, CPU provider) and its frame scores compared with the float model's on held-back (autoencoder)
or training (feature model) frames — never on the test split.

    nice -n 10 .venv/bin/python benchmarks/onnx_quant_choice.py --run /tmp/edge-onnx/conv-ae-64
    nice -n 10 .venv/bin/python benchmarks/onnx_quant_choice.py --run /tmp/edge-onnx/padim-default

(the runs and their float exports are made by benchmarks/onnx_compare.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edge.preprocess import Preprocessing
    from edge.scoring import ScoreConfig, error_maps, frame_scores
    from export.onnx import PADIM_HEAD, _Frames, float_tail
    from train.data import frames_from_files

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    args = ap.parse_args()
    run = json.loads((args.run / "run.json").read_text())
    padim = run.get("arch") == "padim"
    pp = Preprocessing.model_validate(run["preprocessing"])
    score = ScoreConfig(**run["score"]) if padim else ScoreConfig.model_validate(run.get("score", {}))
    files = run["train_files"]
    rep, _ = frames_from_files(files[::8], pp, 64) if padim else frames_from_files(files, pp, 100)
    held, _ = frames_from_files(files[3::12], pp, 40) if padim else frames_from_files(run["val_files"], pp, 50)
    reader = type("Reader", (_Frames, CalibrationDataReader), {})
    source = args.run / "export" / "model_float32.onnx"
    keep = float_tail(source, PADIM_HEAD) if padim else []

    def session(path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def measure(path) -> tuple[float, np.ndarray]:
        s = session(path)
        name = s.get_inputs()[0].name
        one = held[:1].astype(np.float32) / 255
        for _ in range(3):
            s.run(None, {name: one})
        t = time.perf_counter()
        for _ in range(20):
            s.run(None, {name: one})
        ms = (time.perf_counter() - t) / 20 * 1000
        out = np.concatenate(
            [s.run(None, {name: held[i : i + 1].astype(np.float32) / 255})[0] for i in range(len(held))]
        )
        scores = frame_scores(out[..., 0], score) if padim else frame_scores(error_maps(held, out, score.error), score)
        return ms, scores

    ms, reference = measure(source)
    print(f"{args.run.name}: float32 {ms:.1f} ms/frame; {len(held)} frames compared", flush=True)
    variants = {
        "uint8 weights, per channel": dict(weight_type=QuantType.QUInt8, per_channel=True),
        "uint8 weights, per tensor": dict(weight_type=QuantType.QUInt8, per_channel=False),
        "int8 weights, per channel": dict(weight_type=QuantType.QInt8, per_channel=True),
    }
    for label, options in variants.items():
        target = Path("/tmp") / f"onnx_quant_choice_{args.run.name}.onnx"
        quantize_static(
            str(source),
            str(target),
            reader(session(source).get_inputs()[0].name, rep),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            nodes_to_exclude=keep,
            **options,
        )
        ms, scores = measure(target)
        r = float(np.corrcoef(reference, scores)[0, 1])
        print(f"  {label}: {ms:.1f} ms/frame, score correlation with float32 {r:.4f}", flush=True)


if __name__ == "__main__":
    main()
