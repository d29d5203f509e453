"""Which feature model? Float numpy comparison of the candidates on magnetic tiles (no export).

    .venv/bin/python benchmarks/quality/explore_features.py [--data /work/shared/datasets/magnetic-tile]
        [--work /tmp/edge-quality]

EfficientNet-Lite0 features (train/padim.py's extractor: stages average-pooled onto the 16x16
grid of a 256 px grey input) of all 560 train/good images and the 298 test images, then:
- position-blind Gaussian (one mean/covariance for every cell; what a 1x1 feature autoencoder
  or a global density model sees),
- per-cell diagonal Gaussian (no channel correlations: elementwise, cheapest to deploy),
- per-cell full Gaussian (PaDiM) on stages 2-4, 3-5, and 3-5 reduced to 128 PCA dimensions.
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
    from train.padim import PadimConfig, build_extractor, extract, fit_gaussians

    test = load_eval_set(args.data)
    train_files = list_images(args.data / "train" / "good")
    pre = Preprocessor(Preprocessing(width=256, height=256, color="grey"))
    cache = args.work / "features_s2345.npz"
    args.work.mkdir(parents=True, exist_ok=True)
    if not cache.is_file():
        from train.tfenv import import_tensorflow

        import_tensorflow(2)
        ex = build_extractor(PadimConfig(stages=(2, 3, 4, 5)))
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
    masks = [np.zeros(s, bool) if m is None else read_mask(m, s) for s, m in zip(sizes, test.masks)]
    groups = np.array(test.groups)

    def evaluate(maps: np.ndarray) -> dict:
        up = [cv2.GaussianBlur(cv2.resize(m.astype(np.float32), (256, 256)), (0, 0), 4) for m in maps]
        scores = np.array([m.max() for m in up])
        full = [cv2.resize(m, (s[1], s[0])) for m, s in zip(up, sizes)]
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
    rows.append(("position-blind Gaussian, stages 2-4", c, evaluate(np.sqrt((z ** 2).sum(-1)))))
    mu, sd = tr.mean(0), tr.std(0) + 1e-3
    rows.append(("per-cell diagonal Gaussian, stages 2-4", c, evaluate(np.sqrt((((te - mu) / sd) ** 2).sum(-1)))))
    for stages in ((2, 3, 4), (3, 4, 5)):
        tr, te = unit(pick(tr_all, stages), pick(te_all, stages))
        rows.append((f"per-cell full Gaussian (PaDiM), stages {stages[0]}-{stages[-1]}", tr.shape[-1],
                     evaluate(fit_gaussians(tr, 0.01).distances(te))))
    tr, te = unit(pick(tr_all, (3, 4, 5)), pick(te_all, (3, 4, 5)))
    flat = tr.reshape(-1, tr.shape[-1])
    _, vecs = np.linalg.eigh(np.cov(flat[::3].T))
    proj = vecs[:, ::-1][:, :128]
    rows.append(("PaDiM, stages 3-5, PCA to 128 dims", 128,
                 evaluate(fit_gaussians(tr @ proj, 0.01).distances(te @ proj))))

    defects = sorted(set(test.groups) - {"good"})
    lines = ["# Feature-model candidates on magnetic tiles (float, numpy)", "",
             "Command: `.venv/bin/python benchmarks/quality/explore_features.py` "
             f"({time.perf_counter() - t0:.0f} s after feature extraction). EfficientNet-Lite0 features, "
             "256 px grey, 16x16 cells, fitted on all 560 train/good images; score = max of the map "
             "smoothed (sigma 4). Pixel AUROC on images reduced to a 256 px long side.", "",
             "| model | dims | image AUROC | pixel AUROC | " + " | ".join(defects) + " |",
             "|---|---|---|---|" + "---|" * len(defects)]
    for name, dims, r in rows:
        lines.append(f"| {name} | {dims} | {r['image']:.3f} | {r['pixel']:.3f} | "
                     + " | ".join(f"{r[d]:.2f}" for d in defects) + " |")
    lines += ["", "Per-defect columns: image AUROC of test/good vs that defect.",
              "Data: magnetic-tile (Huang, Qiu, Yuan, The Visual Computer 2020).", ""]
    out = REPO / "benchmarks" / "results" / "quality_variants.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
