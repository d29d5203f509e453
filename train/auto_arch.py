"""`--arch auto`: choose the position-aware or the position-blind feature model from the user's own good images.

Both models see the same EfficientNet-Lite0 feature grid (train/feature_grid.py): `features`
(train/padim.py) fits a Gaussian per cell — where things usually are — and wins on aligned parts;
`memory` (train/memory.py) compares each cell with good cells from any place and wins when parts
move (benchmarks/results/quality_moving.md). Which one suits a line is a property of its images,
so it is measured on them:

1. The good images' features are extracted ONCE (they also train the chosen model).
2. K folds over the good images: both heads are fitted on K-1 folds and score the held-back fold's
   good images, the same good images moved by a displacement the good images themselves show
   (see `displacements`), and synthetic anomalies drawn on them (DRAEM's generator,
   train/draem.py: Perlin blemishes of foreign texture, pasted patches, scratches).
3. Per fold, the image AUROC of (held-back good + moved good) against the synthetic anomalies,
   the frame score computed as the device does (max of the smoothed map).
4. The head with the higher mean wins only if its worst fold beats the other's best fold; when the
   folds' ranges overlap the difference is within noise and `features` (cheaper) is kept.

Why "moved good" counts, and by how much: a good part at a new place must not look anomalous
where parts really move, but on aligned parts a shift never happens and must not cost the
position-aware model anything. So no threshold on "aligned or not" is set: each held-back image
is moved by the displacement measured between a random pair of good images (phase correlation).
On aligned tiles those displacements are near zero and the moved copies are nearly the originals;
on a belt they are as large as the parts' real travel. Rotation is not applied: it is not measured,
and turning a whole frame also turns the background (a belt's weave), which a line never does.

The cross-validation is cheaper than training: the memory's coreset is capped at CV_BANK_MAX
entries (the trainer's 10 % rule, capped at 1,024 instead of 4,096), at most CV_MAX_HELD held-back
images are scored, and all heads are scored in float numpy on the extracted features.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.errors import EdgeError
from train.feature_grid import build_extractor, extract, training_images
from train.memory import BANK_FRACTION, MemoryConfig, coreset, fit_normalization
from train.padim import PadimConfig, fit_projection

FOLDS = 3
MIN_IMAGES = 3 * FOLDS  # every fold holds back at least 3 good images
CV_MAX_HELD = 300  # held-back good images scored in all (each also gives a moved copy and an anomaly)
CV_BANK_MAX = 1024  # the cross-validation's memory: 10 % of the cells, at most this many
ALIGN_SIDE = 64  # images are compared for displacement at this size (phase correlation)
ALIGN_PAIRS = 200


@dataclass
class AutoResult:
    arch: str  # "features" or "memory" (the CLI's names)
    reason: str
    folds: dict[str, list[float]]  # per arch, image AUROC per fold
    displacement: float  # median displacement between good images, a fraction of the image side
    held: int  # held-back good images scored (each with a moved copy and a synthetic anomaly)
    cv_bank: int
    seconds: float
    extra: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The `auto` block of run.json."""
        return {
            "chosen": self.arch,
            "reason": self.reason,
            "folds": FOLDS,
            "image_auroc_per_fold": {k: [round(v, 4) for v in vals] for k, vals in self.folds.items()},
            "mean_image_auroc": {k: round(float(np.mean(v)), 4) for k, v in self.folds.items()},
            "median_displacement": round(self.displacement, 4),
            "held_back_images": self.held,
            "cv_memory_bank": self.cv_bank,
            "seconds": round(self.seconds, 1),
            **self.extra,
        }

    def paragraph(self) -> str:
        f, m = (self.folds[k] for k in ("features", "memory"))
        return (
            f"--arch auto chose {self.arch}. Cross-validated on your good images ({FOLDS} folds, {self.held} "
            f"held-back images, each also moved by a displacement your images show — median "
            f"{100 * self.displacement:.0f} % of the side — and given a synthetic defect): image AUROC "
            f"features {_spread(f)}, memory {_spread(m)}. {self.reason}"
        )


def _spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f} (folds {', '.join(f'{v:.3f}' for v in values)})"


# ---------------------------------------------------------------- the scenes to score


def _grey_small(frames: np.ndarray) -> np.ndarray:
    import cv2

    out = np.empty((len(frames), ALIGN_SIDE, ALIGN_SIDE), np.float32)
    for i, f in enumerate(frames):
        g = f[..., 0] if f.shape[-1] == 1 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(g, (ALIGN_SIDE, ALIGN_SIDE), interpolation=cv2.INTER_AREA)
    return out


def displacements(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(M, 2) displacements (dx, dy) in frame pixels between random pairs of good frames (phase correlation).

    Aligned parts give near-zero shifts; parts that move give shifts as large as their travel.
    """
    import cv2

    small = _grey_small(frames)
    window = cv2.createHanningWindow((ALIGN_SIDE, ALIGN_SIDE), cv2.CV_32F)
    n = len(small)
    first = rng.permutation(n)[:ALIGN_PAIRS]
    out = []
    for i in first:
        j = (i + 1 + int(rng.integers(n - 1))) % n  # any other image
        (dx, dy), _ = cv2.phaseCorrelate(small[i], small[j], window)
        out.append((dx, dy))
    return np.array(out, np.float64) * (frames.shape[2] / ALIGN_SIDE)


def moved(frames: np.ndarray, shifts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each frame translated by a displacement drawn from `shifts` (random sign), borders mirrored."""
    import cv2

    out = np.empty_like(frames)
    h, w = frames.shape[1:3]
    for i, frame in enumerate(frames):
        dx, dy = shifts[rng.integers(len(shifts))] * rng.choice([-1, 1])
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        warped = cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        out[i] = warped.reshape(frame.shape)
    return out


def neighbourhood_mean(features: np.ndarray, n: int) -> np.ndarray:
    """Each cell averaged over its n x n neighbourhood, borders counting only the cells inside (Keras 'same')."""
    if n <= 1:
        return features
    r = n // 2
    g1, g2 = features.shape[1:3]
    padded = np.pad(features, ((0, 0), (r, n - 1 - r), (r, n - 1 - r), (0, 0)))
    ones = np.pad(np.ones((g1, g2), np.float32), ((r, n - 1 - r), (r, n - 1 - r)))
    total = np.zeros_like(features)
    count = np.zeros((g1, g2), np.float32)
    for dy in range(n):
        for dx in range(n):
            total += padded[:, dy : dy + g1, dx : dx + g2]
            count += ones[dy : dy + g1, dx : dx + g2]
    return total / count[None, :, :, None]


# ---------------------------------------------------------------- the two heads, in numpy


def _padim_maps(train: np.ndarray, tests: np.ndarray, config: PadimConfig) -> np.ndarray:
    """Per-cell Mahalanobis distances of `tests` under Gaussians fitted on `train`: (N, g, g).

    The same regularised Gaussians as train/padim.py's fit_gaussians (unit-scaled features, eps on
    the diagonal), solved through each cell's Cholesky factor instead of an inverse: ~10x cheaper.
    """
    from scipy.linalg import solve_triangular

    if config.dims and config.dims < train.shape[-1]:
        projection = fit_projection(train, config.dims)
        train, tests = projection(train), projection(tests)
    n, g1, g2, c = train.shape
    scale = train.reshape(-1, c).std(0) + 1e-6
    f = (train / scale).reshape(n, g1 * g2, c).astype(np.float64)
    mean = f.mean(0)
    d = (f - mean).transpose(1, 0, 2)  # (cells, n, C)
    chol = np.linalg.cholesky(np.matmul(d.transpose(0, 2, 1), d) / (n - 1) + config.eps * np.eye(c))
    centred = (tests / scale).reshape(len(tests), g1 * g2, c) - mean
    out = np.empty((len(tests), g1 * g2), np.float32)
    for cell in range(g1 * g2):
        z = solve_triangular(chol[cell], centred[:, cell].T, lower=True)
        out[:, cell] = np.sqrt((z * z).sum(0))
    return out.reshape(len(tests), g1, g2)


def _memory_maps(train: np.ndarray, tests: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """Distance of each test cell to the nearest entry of a coreset of `train`'s cells: (N, g, g), bank size."""
    from train.memory import Memory

    scale, centre = fit_normalization(train)
    cells = (train / scale - centre).reshape(-1, train.shape[-1]).astype(np.float32)
    k = max(1, min(len(cells), CV_BANK_MAX, int(np.ceil(BANK_FRACTION * len(cells)))))
    idx, _ = coreset(cells, k, seed)
    memory = Memory(np.ascontiguousarray(cells[idx]), scale, centre)
    return memory.distances(memory.normalize(tests)), k


def image_scores(maps: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Frame scores as the device computes them: the map resized to the input, smoothed, its max."""
    from edge.anomaly_map import upsample_maps
    from edge.scoring import ScoreConfig, frame_scores

    return frame_scores(
        upsample_maps(maps.astype(np.float32), (size, size)), ScoreConfig(kind="max_blur", blur_sigma=sigma)
    )


def auroc(good: np.ndarray, bad: np.ndarray) -> float:
    """P(an anomaly scores above a good image), ties counting half."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.zeros(len(good)), np.ones(len(bad))], np.r_[good, bad]))


# ---------------------------------------------------------------- cross-validation and the decision


def decide(folds: dict[str, list[float]]) -> tuple[str, str]:
    """The arch to train and why: the higher mean, if its worst fold beats the other's best; else features."""
    f, m = folds["features"], folds["memory"]
    if np.mean(m) > np.mean(f) and min(m) > max(f):
        return "memory", (
            "memory scored higher in every fold (its worst above features' best): good images here vary in "
            "where things are, and the position-blind memory tells them from defects better."
        )
    if np.mean(f) > np.mean(m) and min(f) > max(m):
        return "features", (
            "features scored higher in every fold: position carries information in these images, which the "
            "per-cell Gaussians use."
        )
    if np.mean(m) == np.mean(f):
        standing = "the two scored alike"
    else:
        standing = (
            f"{'memory' if np.mean(m) > np.mean(f) else 'features'} led on average, but the folds' ranges overlap"
        )
    return "features", (f"{standing}: within noise, so features (faster per frame, no coreset to build) is kept.")


def cross_validate(
    frames: np.ndarray,
    features: np.ndarray,
    extractor,
    padim: PadimConfig,
    memory: MemoryConfig,
    log: Callable[[str], None] = print,
) -> tuple[AutoResult, np.ndarray]:
    """Both heads on FOLDS folds of the good images' features (`extractor`'s, the features config).

    Returns the result and the good images' features as the memory model sees them (for its training).
    """
    from train.draem import synthetic_anomalies

    t0 = time.perf_counter()
    rng = np.random.default_rng(memory.seed)
    n = len(frames)
    fold = rng.permutation(n) % FOLDS
    per_fold = max(1, CV_MAX_HELD // FOLDS)
    held = [np.flatnonzero(fold == k)[:per_fold] for k in range(FOLDS)]
    scored = np.concatenate(held)
    shifts = displacements(frames, rng)
    displacement = float(np.median(np.hypot(shifts[:, 0], shifts[:, 1]))) / frames.shape[2]
    log(
        f"auto: {FOLDS}-fold cross-validation of features and memory on {n} good images "
        f"({len(scored)} held back, each moved and given a synthetic defect); extracting their features"
    )
    scenes = (moved(frames[scored], shifts, rng), synthetic_anomalies(frames[scored], rng, probability=1.0)[0])
    views = {"features": (features, *(extract(extractor, x) for x in scenes))}
    views["memory"] = _memory_views(views["features"], (frames, *scenes), padim, memory)
    row_of = {i: row for row, i in enumerate(scored)}
    folds: dict[str, list[float]] = {"features": [], "memory": []}
    bank = 0
    for k in range(FOLDS):
        rows = [row_of[i] for i in held[k]]
        train, tests = {}, {}
        for arch, (good, moved_f, altered_f) in views.items():
            train[arch] = good[fold != k]
            tests[arch] = np.concatenate([good[held[k]], moved_f[rows], altered_f[rows]])
        maps = {"features": _padim_maps(train["features"], tests["features"], padim)}
        maps["memory"], bank = _memory_maps(train["memory"], tests["memory"], memory.seed)
        n_good = 2 * len(rows)
        for arch, m in maps.items():
            scores = image_scores(m, padim.size, padim.blur_sigma)
            folds[arch].append(auroc(scores[:n_good], scores[n_good:]))
        f, m = folds["features"][-1], folds["memory"][-1]
        log(f"auto: fold {k + 1}/{FOLDS}: image AUROC features {f:.3f}, memory {m:.3f}")
    arch, reason = decide(folds)
    result = AutoResult(arch, reason, folds, displacement, len(scored), bank, time.perf_counter() - t0)
    return result, views["memory"][0]


def _memory_views(
    extracted: tuple[np.ndarray, ...], frames: tuple[np.ndarray, ...], padim: PadimConfig, memory: MemoryConfig
) -> tuple[np.ndarray, ...]:
    """The memory model's features of the same frames, from the ones extracted for `padim` where exact.

    The memory averages each stage over its neighbourhood (PatchCore). When no stage is upsampled
    onto the grid (stride 16, stages up to 5) that is the same average over grid cells, done here
    in numpy; otherwise the stage's own cells are coarser than the grid's and the memory's own
    extractor is run (a second pass of the backbone).
    """
    from train.backbone import STRIDES

    if memory.neighbourhood == padim.neighbourhood:
        return extracted
    if all(STRIDES[s] <= memory.grid_stride for s in memory.stages):
        return tuple(neighbourhood_mean(x, memory.neighbourhood) for x in extracted)
    own = build_extractor(memory)
    return tuple(extract(own, x) for x in frames)


def train_auto(
    data: str | Path,
    out: str | Path,
    padim: PadimConfig,
    memory: MemoryConfig,
    threads: Optional[int] = 2,
    log: Callable[[str], None] = print,
) -> tuple[Path, Optional[AutoResult]]:
    """Cross-validate both heads on DATA's good images, train the better one into OUT; run.json gains `auto`.
    Fewer than MIN_IMAGES good images: features, said, no `auto` block (None)."""
    from train.feature_grid import check_grid
    from train.memory import check_config, train_memory
    from train.padim import train_padim

    check_grid(padim)
    check_config(memory)
    same_grid = (padim.size, padim.grid_stride, padim.stages) == (memory.size, memory.grid_stride, memory.stages)
    if not same_grid or padim.neighbourhood not in (1, memory.neighbourhood):
        raise EdgeError(
            "--arch auto compares both models on one feature grid: give them the same size, stride and stages, "
            "and one --neighbourhood (or none)"
        )
    images = training_images(data, padim, threads, log)
    memory.color = padim.color
    extractor = build_extractor(padim)
    features = extract(extractor, images.frames)
    if len(images.frames) < MIN_IMAGES:  # the default arch: a handful of images still trains a model
        log(
            f"--arch auto: {len(images.frames)} good images are too few to cross-validate the two models "
            f"({MIN_IMAGES} needed); training features, the position-aware model (more images let it choose)"
        )
        return Path(train_padim(data, out, padim, threads, log, prepared=(images, features))), None
    result, memory_features = cross_validate(images.frames, features, extractor, padim, memory, log)
    log(result.paragraph())
    if result.arch == "features":
        run = train_padim(data, out, padim, threads, log, prepared=(images, features))
    else:
        run = train_memory(data, out, memory, threads, log, prepared=(images, memory_features))
    path = Path(run) / "run.json"
    record = json.loads(path.read_text())
    record["auto"] = result.record()
    path.write_text(json.dumps(record, indent=2) + "\n")
    return Path(run), result
