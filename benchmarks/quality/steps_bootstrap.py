"""Is a step's image-AUROC gain more than the test split's noise? Paired bootstrap over test images.

    nice -n 10 .venv/bin/python benchmarks/quality/steps_bootstrap.py [--data ...] [--work /tmp/edge-quality-steps]

Reads the features explore_steps.py cached (run it first), scores the default, Lite2 and the
mirrored-Gaussian flip average as explore_steps.py does, then resamples the 298 test images with
replacement (2000 times, the same draw for both models) and reports the 95 % interval of the
difference in image AUROC and in recall at 5 % FPR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from explore_steps import FeatureCache, fit, g_distances, upsample  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-quality-steps"))
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    from calibration.evaluate import image_auroc, load_eval_set, recall_at_fpr

    labels = load_eval_set(args.data).labels
    feats = FeatureCache(args.work, [], [])  # cached features only: nothing is extracted

    def scores(maps: np.ndarray) -> np.ndarray:
        return np.array([m.max() for m in upsample(maps)])

    tr, te = feats.get("lite0", 256)
    g = fit(tr)
    base_map = g_distances(g, te)
    base = scores(base_map)
    tr_f, te_f = feats.get("lite0", 256, flip=True)
    flip = scores((base_map + g_distances(fit(tr_f), te_f)[:, :, ::-1]) / 2)
    tr2, te2 = feats.get("lite2", 256)
    lite2 = scores(g_distances(fit(tr2), te2))

    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(labels), len(labels)) for _ in range(args.resamples)]
    draws = [d for d in draws if 0 < labels[d].sum() < len(d)]
    print("| vs the default | image AUROC difference, 95 % interval | recall @ 5 % FPR difference, 95 % interval |")
    print("|---|---|---|")
    for name, s in (("Lite2 (step 3)", lite2), ("flip, mirrored Gaussians (step 4b)", flip)):
        da = [image_auroc(labels[d], s[d]) - image_auroc(labels[d], base[d]) for d in draws]
        dr = [recall_at_fpr(labels[d], s[d], 0.05) - recall_at_fpr(labels[d], base[d], 0.05) for d in draws]
        lo, hi = np.percentile(da, [2.5, 97.5])
        rlo, rhi = np.percentile(dr, [2.5, 97.5])
        print(
            f"| {name} | {image_auroc(labels, s) - image_auroc(labels, base):+.3f} [{lo:+.3f}, {hi:+.3f}] | "
            f"{recall_at_fpr(labels, s, 0.05) - recall_at_fpr(labels, base, 0.05):+.2f} [{rlo:+.2f}, {rhi:+.2f}] |"
        )


if __name__ == "__main__":
    main()
