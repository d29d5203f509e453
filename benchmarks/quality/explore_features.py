"""Which feature model? Float numpy comparison of the candidates on magnetic tiles (no export).

    .venv/bin/python benchmarks/quality/explore_features.py [--data /work/shared/datasets/magnetic-tile]
        [--work /tmp/edge-quality]

EfficientNet-Lite0 features (train/padim.py's extractor) of all 560 train/good images and the 298
test images at 256 px grey. On the 16x16 grid of the first feature model (stages average-pooled
onto stride 16, no neighbourhood smoothing):
- position-blind Gaussian (one mean/covariance for every cell; what a 1x1 feature autoencoder
  or a global density model sees),
- per-cell diagonal Gaussian (no channel correlations: elementwise, cheapest to deploy),
- per-cell full Gaussian (PaDiM) on stages 2-4, 3-5, and 3-5 reduced to 128 PCA dimensions,
- feature-space autoencoders (reconstruction error in feature space, as DFR and EfficientAD's
  autoencoder do) on the same stage 3-5 features: a 1x1-conv one (position-blind, DFR-style) and a
  conv one that squeezes the 16x16 map to 4x4 and is given the cell coordinates (position-aware);
  60 epochs, Adam, MSE; the map is each cell's reconstruction error.
On the 32x32 grid of the default model (stride 8, 3x3 neighbourhood smoothing, stages 3-5):
- per-cell full Gaussian with all 232 channels and with 128 PCA dimensions (the default),
- the same map minus its own median (a per-image baseline),
- position-blind nearest neighbour in a memory bank of 30 000 training cells (PatchCore-style).
Then a diagnostic of the default's map: which pixels outrank the defects' pixels.
Score: max of the map smoothed with sigma 4 (model pixels). Pixel AUROC here is computed on
images reduced to a 256 px long side (to keep it quick), so it reads a little higher than
`edge eval`'s full-size figure. Writes benchmarks/results/quality_variants.md.
Data: magnetic-tile defects (Huang, Qiu, Yuan, The Visual Computer 2020).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-quality"))
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from calibration.evaluate import image_auroc, load_eval_set, pixel_auroc, read_mask
    from edge.imaging import list_images, read_image
    from edge.preprocess import Preprocessing, Preprocessor
    from train.padim import PadimConfig, build_extractor, extract, fit_gaussians, fit_projection

    test = load_eval_set(args.data)
    train_files = list_images(args.data / "train" / "good")
    pre = Preprocessor(Preprocessing(width=256, height=256, color="grey"))
    cache = args.work / "features_s2345.npz"
    args.work.mkdir(parents=True, exist_ok=True)
    if not cache.is_file():
        from train.tfenv import import_tensorflow

        import_tensorflow(2)
        ex = build_extractor(PadimConfig(stages=(2, 3, 4, 5), grid_stride=16, neighbourhood=1, dims=0))
        tr = extract(ex, pre.prepare_batch([read_image(f) for f in train_files]))
        te = extract(ex, pre.prepare_batch([read_image(f) for f in test.files]))
        np.savez(cache, train=tr.astype(np.float32), test=te.astype(np.float32))
    with np.load(cache) as z:
        tr_all, te_all = z["train"], z["test"]
    cuts = {2: slice(0, 24), 3: slice(24, 64), 4: slice(64, 144), 5: slice(144, 256)}

    def pick(x, stages):
        return np.concatenate([x[..., cuts[s]] for s in stages], axis=-1)

    sizes = []
    for f in test.files:
        h, w = read_image(f).shape[:2]
        k = min(1.0, 256 / max(h, w))
        sizes.append((max(1, round(h * k)), max(1, round(w * k))))
    masks = [np.zeros(s, bool) if m is None else read_mask(m, s) for s, m in zip(sizes, test.masks, strict=True)]
    groups = np.array(test.groups)

    def upsample(maps: np.ndarray) -> list[np.ndarray]:
        return [cv2.GaussianBlur(cv2.resize(m.astype(np.float32), (256, 256)), (0, 0), 4) for m in maps]

    def evaluate(maps: np.ndarray) -> dict:
        up = upsample(maps)
        scores = np.array([m.max() for m in up])
        full = [cv2.resize(m, (s[1], s[0])) for m, s in zip(up, sizes, strict=True)]
        row = {"image": image_auroc(test.labels, scores), "pixel": pixel_auroc(masks, full)}
        for d in sorted(set(test.groups) - {"good"}):
            sel = (groups == "good") | (groups == d)
            row[d] = image_auroc(test.labels[sel], scores[sel])
        return row

    def unit(tr, te):
        s = tr.reshape(-1, tr.shape[-1]).std(0) + 1e-6
        return tr / s, te / s

    rows = []
    t0 = time.perf_counter()
    tr, te = unit(pick(tr_all, (2, 3, 4)), pick(te_all, (2, 3, 4)))
    c = tr.shape[-1]
    flat = tr.reshape(-1, c)
    chol = np.linalg.cholesky(np.linalg.inv(np.cov(flat[::3].T) + 0.01 * np.eye(c)))
    z = (te - flat.mean(0)) @ chol
    rows.append(("position-blind Gaussian, stages 2-4", c, evaluate(np.sqrt((z**2).sum(-1)))))
    mu, sd = tr.mean(0), tr.std(0) + 1e-3
    rows.append(("per-cell diagonal Gaussian, stages 2-4", c, evaluate(np.sqrt((((te - mu) / sd) ** 2).sum(-1)))))
    for stages in ((2, 3, 4), (3, 4, 5)):
        tr, te = unit(pick(tr_all, stages), pick(te_all, stages))
        rows.append(
            (
                f"per-cell full Gaussian (PaDiM), stages {stages[0]}-{stages[-1]}",
                tr.shape[-1],
                evaluate(fit_gaussians(tr, 0.01).distances(te)),
            )
        )
    tr, te = unit(pick(tr_all, (3, 4, 5)), pick(te_all, (3, 4, 5)))
    flat = tr.reshape(-1, tr.shape[-1])
    _, vecs = np.linalg.eigh(np.cov(flat[::3].T))
    proj = vecs[:, ::-1][:, :128]
    rows.append(
        ("PaDiM, stages 3-5, PCA to 128 dims", 128, evaluate(fit_gaussians(tr @ proj, 0.01).distances(te @ proj)))
    )

    rows += feature_autoencoders(*unit(pick(tr_all, (3, 4, 5)), pick(te_all, (3, 4, 5))), evaluate)

    cache8 = args.work / "features_s345_g8.npz"
    if not cache8.is_file():
        from train.tfenv import import_tensorflow

        import_tensorflow(2)
        ex = build_extractor(PadimConfig(stages=(3, 4, 5), grid_stride=8, neighbourhood=3))
        tr8 = extract(ex, pre.prepare_batch([read_image(f) for f in train_files]))
        te8 = extract(ex, pre.prepare_batch([read_image(f) for f in test.files]))
        np.savez(cache8, train=tr8.astype(np.float16), test=te8.astype(np.float16))
    with np.load(cache8) as z:
        tr8, te8 = z["train"].astype(np.float32), z["test"].astype(np.float32)

    def padim(tr, te):
        g = fit_gaussians(tr, 0.01)
        return np.concatenate([g.distances(te[i : i + 50]) for i in range(0, len(te), 50)])

    rows.append(("32x32: per-cell full Gaussian, stages 3-5, all channels", 232, evaluate(padim(tr8, te8))))
    projection = fit_projection(tr8, 128)
    default = padim(projection(tr8), projection(te8))
    rows.append(("32x32: same, 128 PCA dims (the --stride 8 option)", 128, evaluate(default)))
    median = np.median(default.reshape(len(default), -1), 1)[:, None, None]
    rows.append(("32x32: default minus each map's own median", 128, evaluate(default - median)))
    rows.append(
        (
            "32x32: nearest of 30 000 training cells, position-blind (PatchCore-style)",
            232,
            evaluate(nearest_neighbour(tr8, te8, 30000)),
        )
    )
    diagnosis = background_diagnosis(upsample(default), sizes, masks, groups)

    defects = sorted(set(test.groups) - {"good"})
    lines = [
        "# Feature-model candidates on magnetic tiles (float, numpy)",
        "",
        "Command: `.venv/bin/python benchmarks/quality/explore_features.py` "
        f"({time.perf_counter() - t0:.0f} s after feature extraction). EfficientNet-Lite0 features, "
        "256 px grey, 16x16 or 32x32 cells, fitted on all 560 train/good images; score = max of the map "
        "smoothed (sigma 4). Pixel AUROC on images reduced to a 256 px long side.",
        "",
        "| model | dims | image AUROC | pixel AUROC | " + " | ".join(defects) + " |",
        "|---|---|---|---|" + "---|" * len(defects),
    ]
    for name, dims, r in rows:
        lines.append(
            f"| {name} | {dims} | {r['image']:.3f} | {r['pixel']:.3f} | "
            + " | ".join(f"{r[d]:.2f}" for d in defects)
            + " |"
        )
    lines += [
        "",
        "Per-defect columns: image AUROC of test/good vs that defect.",
        "",
        *diagnosis,
        "Data: magnetic-tile (Huang, Qiu, Yuan, The Visual Computer 2020).",
        "",
    ]
    out = REPO / "benchmarks" / "results" / "quality_variants.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


def nearest_neighbour(tr: np.ndarray, te: np.ndarray, bank_size: int, seed: int = 0) -> np.ndarray:
    """Distance of each test cell to the nearest of `bank_size` random training cells (any position)."""
    c = tr.shape[-1]
    scale = tr.reshape(-1, c).std(0) + 1e-6
    bank = (tr / scale).reshape(-1, c)
    bank = bank[np.random.default_rng(seed).choice(len(bank), min(bank_size, len(bank)), replace=False)]
    bank_sq = (bank**2).sum(1)
    queries = (te / scale).reshape(-1, c)
    out = np.empty(len(queries), np.float32)
    for i in range(0, len(queries), 4096):
        q = queries[i : i + 4096]
        d2 = (q**2).sum(1)[:, None] - 2 * q @ bank.T + bank_sq[None]
        out[i : i + 4096] = np.sqrt(np.maximum(d2.min(1), 0))
    return out.reshape(te.shape[:-1])


def background_diagnosis(maps: list, sizes: list, masks: list, groups: np.ndarray) -> list[str]:
    """Pixel AUROC of each defect's pixels against good images' pixels vs defective images' backgrounds."""
    from sklearn.metrics import roc_auc_score

    full = [cv2.resize(m, (s[1], s[0])) for m, s in zip(maps, sizes, strict=True)]

    def auc(pos, neg):
        return roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])

    rng = np.random.default_rng(0)

    def sample(x, n=400_000):
        return x if len(x) <= n else rng.choice(x, n, replace=False)

    good = sample(np.concatenate([f.ravel() for f, g in zip(full, groups, strict=True) if g == "good"]))
    background = sample(np.concatenate([f[~m] for f, m, g in zip(full, masks, groups, strict=True) if g != "good"]))
    lines = [
        "Where the pooled pixel AUROC goes (the 32x32, 128-dim model): each defect's pixels ranked against the",
        "pixels of the good test images, and against the defect-free pixels of the defective images.",
        "",
        "| defect pixels | share of all defect pixels | vs good images' pixels | vs defective images' background |",
        "|---|---|---|---|",
    ]
    total = sum(int(m.sum()) for m in masks)
    for d in sorted(set(groups) - {"good"}):
        pos = np.concatenate([f[m] for f, m, g in zip(full, masks, groups, strict=True) if g == d])
        lines.append(
            f"| {d} | {len(pos) / total:.0%} | {auc(sample(pos), good):.3f} | {auc(sample(pos), background):.3f} |"
        )
    medians = {
        g: float(np.median([np.median(m) for m, gg in zip(maps, groups, strict=True) if gg == g]))
        for g in sorted(set(groups))
    }
    lines += [
        "",
        "Median of each image's median map value, per test folder: "
        + ", ".join(f"{g} {v:.1f}" for g, v in medians.items())
        + ".",
        "",
    ]
    return lines


def feature_autoencoders(tr: np.ndarray, te: np.ndarray, evaluate) -> list:
    """Reconstruction error in feature space: the mission's principle on pretrained features."""
    from train.tfenv import import_tensorflow

    import_tensorflow(2)
    import keras
    from keras import layers

    mu = tr.reshape(-1, tr.shape[-1]).mean(0)
    tr, te = tr - mu, te - mu
    n, g, _, c = tr.shape

    def with_coordinates(x):
        yy, xx = np.meshgrid(np.linspace(-1, 1, g), np.linspace(-1, 1, g), indexing="ij")
        grid = np.broadcast_to(np.stack([yy, xx], -1), (len(x), g, g, 2))
        return np.concatenate([x, grid], -1).astype(np.float32)

    def blind():
        i = keras.Input((g, g, c))
        x = layers.Conv2D(160, 1, activation="relu")(i)
        x = layers.Conv2D(64, 1, activation="relu")(x)
        x = layers.Conv2D(160, 1, activation="relu")(x)
        return keras.Model(i, layers.Conv2D(c, 1)(x))

    def spatial():
        i = keras.Input((g, g, c + 2))
        x = layers.Conv2D(128, 3, padding="same", activation="relu")(i)
        x = layers.Conv2D(96, 3, strides=2, padding="same", activation="relu")(x)
        x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
        x = layers.Conv2DTranspose(96, 3, strides=2, padding="same", activation="relu")(x)
        x = layers.Conv2DTranspose(128, 3, strides=2, padding="same", activation="relu")(x)
        return keras.Model(i, layers.Conv2D(c, 1)(x))

    rows = []
    for name, make, prepare in (
        ("feature autoencoder, 1x1 convs (DFR-style, position-blind)", blind, lambda x: x),
        ("feature autoencoder, conv 16->4->16 + cell coordinates", spatial, with_coordinates),
    ):
        keras.utils.set_random_seed(0)
        model = make()
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        model.fit(prepare(tr), tr, epochs=60, batch_size=32, verbose=0, validation_split=0.1)
        error = np.sqrt(((model.predict(prepare(te), verbose=0) - te) ** 2).sum(-1))
        rows.append((name, c, evaluate(error)))
    return rows


if __name__ == "__main__":
    main()
