"""`edge eval`: how well a bundle finds real defects, measured through the device's own code.

Data in MVTec AD layout: ``test/good`` (normal), ``test/<defect>`` (anomalous) and, for pixel
metrics, ``ground_truth/<defect>/<stem>_mask.png``. Every image is read with edge.imaging,
prepared by the bundle's Preprocessor and run through edge.detector.make_detector, i.e. the
exported .tflite (int8 rounding included) and the bundle's score, exactly as `edge run` would.

Metrics (anomalous is the positive class; a frame is flagged when score > threshold, the device's
rule edge.decide.flagged):
- image AUROC over test/good + all defects, and per defect type (test/good + that type);
- pixel AUROC: the detector's anomaly map, resized (bilinear) to the image's own size, against
  the mask (> 127), over every pixel of every test image (good images add only negatives);
  per defect type over that type's images + test/good. Images whose long side exceeds
  ``pixel_max_side`` are evaluated at a reduced size (map and mask alike) to bound memory;
- precision, recall and F1 at the bundle's calibrated threshold, recall per defect type;
- a PNG grid of the worst misses: defective images with the lowest scores and good images with
  the highest, each with its anomaly map and mask, and filed as the device decides (outcome():
  a defect at or under the threshold is missed, a good image above it a false alarm).

scikit-learn and matplotlib are desktop dependencies: imported here, never from edge/.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np

from calibration import binary_metrics
from calibration.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, Bootstrap, PixelHistograms, bootstrap, paired
from edge.bundle import Bundle, load_bundle
from edge.decide import flagged
from edge.detector import make_detector
from edge.errors import EdgeError
from edge.imaging import list_images, read_image
from edge.preprocess import Preprocessor, crop_roi
from edge.runtime import RuntimeOptions, for_runtime

GOOD = "good"


# ---------------------------------------------------------------- data set


@dataclass
class EvalSet:
    root: Path
    files: list[Path]
    groups: list[str]  # "good" or the defect folder name
    masks: list[Optional[Path]]  # ground-truth mask per file (None: good, or no mask found)
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([g != GOOD for g in self.groups], int)


def mask_path(root: Path, defect: str, image: Path) -> Optional[Path]:
    """ground_truth/<defect>/<stem>_mask.png (or any image extension), None when absent."""
    folder = root / "ground_truth" / defect
    for candidate in [folder / f"{image.stem}_mask.png", *sorted(folder.glob(f"{image.stem}_mask.*"))]:
        if candidate.is_file():
            return candidate
    return None


def load_eval_set(root: str | Path, exclude: Sequence[str] = ()) -> EvalSet:
    """The test split of an MVTec AD folder: test/good and every other test/<defect> not in `exclude`."""
    root = Path(root)
    test = root / "test"
    if not root.is_dir():
        raise EdgeError(f"--data folder not found: {root} (check the path)")
    if not test.is_dir():
        raise EdgeError(
            f"{root} is not in MVTec AD layout: no test/ folder (expected test/good, test/<defect>, "
            "ground_truth/<defect>/<name>_mask.png)"
        )
    if not (test / GOOD).is_dir():
        raise EdgeError(f"{test} has no good/ folder: image AUROC needs defect-free test images")
    found_defects = sorted(d.name for d in test.iterdir() if d.is_dir() and d.name != GOOD)
    if not found_defects:
        raise EdgeError(f"{test} has no defect folders besides good/: nothing to detect")
    unknown = sorted(set(exclude) - set(found_defects))
    if unknown:
        raise EdgeError(
            f"--exclude {', '.join(unknown)}: no such defect folder in {test} "
            f"(defect types there: {', '.join(found_defects)})"
        )
    defects = [d for d in found_defects if d not in exclude]
    if not defects:
        raise EdgeError(f"--exclude leaves no defect type in {test}: nothing to detect")
    files, groups, masks, notes = [], [], [], []
    notes += [f"test/{name} left out (--exclude)" for name in sorted(exclude)]
    for name in [GOOD, *defects]:
        try:
            found = list_images(test / name)
        except EdgeError:
            notes.append(f"test/{name} has no images; skipped")
            continue
        files += found
        groups += [name] * len(found)
        if name == GOOD:
            masks += [None] * len(found)
            continue
        group_masks = [mask_path(root, name, f) for f in found]
        missing = sum(m is None for m in group_masks)
        if missing:
            notes.append(f"{missing} of {len(found)} test/{name} images have no mask: left out of pixel AUROC")
        masks += group_masks
    if not any(g != GOOD for g in groups):
        raise EdgeError(f"no defect images in {test}/<defect>/: nothing to detect")
    return EvalSet(root, files, groups, masks, notes)


def read_mask(path: Path, hw: tuple[int, int]) -> Optional[np.ndarray]:
    """Boolean mask at (h, w): > 127 after a nearest-neighbour resize (masks may be JPEG-ish grey)."""
    mask = read_image(path)
    if mask is None:
        return None
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape != hw:
        mask = cv2.resize(mask, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)
    return mask > 127


# ---------------------------------------------------------------- metrics (numpy: calibration.binary_metrics)


def image_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC with anomalous = 1; NaN when only one class is present."""
    return binary_metrics.roc_auc(labels, scores)


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Share of anomalous images found when at most `fpr` of the normal ones may be flagged.

    A threshold-free operating point: what a line gets out of the ranking at a false-reject rate
    it can live with, whatever rule later sets the bundle's threshold. NaN with one class only.
    """
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return float("nan")
    false_pos, true_pos = binary_metrics.roc_curve(labels, scores)
    return float(true_pos[false_pos <= fpr + 1e-12].max())


def pixel_auroc(masks: list[np.ndarray], maps: list[np.ndarray]) -> float:
    """ROC AUC over all pixels of all images: maps and masks of equal shapes, pairwise."""
    if not masks:
        return float("nan")
    for m, a in zip(masks, maps, strict=True):
        if m.shape != a.shape:
            raise ValueError(f"mask {m.shape} and map {a.shape} differ")
    truth = np.concatenate([m.ravel() for m in masks]).astype(np.uint8)
    values = np.concatenate([a.ravel() for a in maps]).astype(np.float32)
    return image_auroc(truth, values)


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Precision, recall, F1 and confusion counts when frames with score > threshold are flagged."""
    counts = binary_metrics.Counts.of(labels, flagged(scores, threshold))
    precision, recall, f1 = counts.precision_recall_f1()
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": counts.tp,
        "fp": counts.fp,
        "tn": counts.tn,
        "fn": counts.fn,
    }


# ---------------------------------------------------------------- running a bundle


@dataclass
class EvalResult:
    bundle: Path
    name: str
    kind: str
    quantization: str
    score: str
    threshold: float
    model_bytes: int
    ms_per_image: float  # model + score, batched, this machine
    files: list[Path]
    groups: list[str]
    scores: np.ndarray
    image_auroc: float
    pixel_auroc: float
    threshold_metrics: dict
    per_defect: dict[str, dict]
    skipped: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    worst_png: Optional[Path] = None
    recall_at_5pct_fpr: float = float("nan")  # threshold-free: see recall_at_fpr
    pixel_histograms: Optional[PixelHistograms] = field(default=None, repr=False)  # for the bootstrap
    intervals: Optional[Bootstrap] = None  # bootstrap intervals of the three headline figures
    versus_first: Optional[Bootstrap] = None  # with --compare: paired intervals of (this − the first bundle)
    # kept for the worst-miss grid: index → (image, map at image size, mask or None)
    _views: dict = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> np.ndarray:
        return np.array([g != GOOD for g in self.groups], int)

    def summary(self) -> dict:
        return {
            "bundle": str(self.bundle),
            "kind": self.kind,
            "quantization": self.quantization,
            "score": self.score,
            "threshold": self.threshold,
            "model_bytes": self.model_bytes,
            "ms_per_image": round(self.ms_per_image, 3),
            "image_auroc": self.image_auroc,
            "pixel_auroc": self.pixel_auroc,
            "at_threshold": self.threshold_metrics,
            "per_defect": self.per_defect,
            "images": len(self.files),
            "skipped": len(self.skipped),
            "recall_at_5pct_fpr": self.recall_at_5pct_fpr,
            "intervals": _intervals_dict(self.intervals),
            "versus_first": _intervals_dict(self.versus_first),
        }

    def points(self) -> dict[str, float]:
        return {
            "image_auroc": self.image_auroc,
            "pixel_auroc": self.pixel_auroc,
            "recall_at_5pct_fpr": self.recall_at_5pct_fpr,
        }


def _intervals_dict(b: Optional[Bootstrap]) -> Optional[dict]:
    if b is None:
        return None
    return {"resamples": b.resamples, "seed": b.seed, **{k: v.to_dict() for k, v in b.intervals.items()}}


def map_to_image(anomaly_map: np.ndarray, image_hw: tuple[int, int], roi) -> np.ndarray:
    """A model-resolution map → the image's own size (bilinear); outside a ROI gets the map minimum."""
    h, w = image_hw
    if roi is None:
        return cv2.resize(anomaly_map.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    x, y, rw, rh = roi
    out = np.full((h, w), float(anomaly_map.min()), np.float32)
    out[y : y + rh, x : x + rw] = cv2.resize(anomaly_map.astype(np.float32), (rw, rh), interpolation=cv2.INTER_LINEAR)
    return out


def _eval_size(hw: tuple[int, int], max_side: int) -> tuple[int, int]:
    h, w = hw
    if max_side <= 0 or max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


ProgressHook = Callable[[int], None]


@dataclass
class _Collected:
    """What evaluate_bundle gathers image by image, in the order the images were read."""

    paths: list[Path] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    # pixel AUROC: the images with a mask (every good one: all zeros), their maps at image size
    pixel_masks: list[np.ndarray] = field(default_factory=list)
    pixel_maps: list[np.ndarray] = field(default_factory=list)
    pixel_groups: list[str] = field(default_factory=list)
    pixel_images: list[int] = field(default_factory=list)  # index in `paths` of each pixel-evaluated image
    small_maps: list[np.ndarray] = field(default_factory=list)  # small copies for the worst-miss grid
    model_seconds: float = 0.0

    def add(self, data: EvalSet, i: int, image: np.ndarray, score: float, anomaly_map: np.ndarray, roi, max_side: int):
        self.paths.append(data.files[i])
        self.groups.append(data.groups[i])
        self.scores.append(float(score))
        hw = _eval_size(image.shape[:2], max_side)
        mask = None
        if data.groups[i] == GOOD:
            mask = np.zeros(hw, bool)
        elif data.masks[i] is not None:
            mask = read_mask(data.masks[i], hw)
        if mask is not None:
            self.pixel_masks.append(mask)
            self.pixel_maps.append(map_to_image(anomaly_map, hw, _scaled_roi(roi, image.shape[:2], hw)))
            self.pixel_groups.append(data.groups[i])
            self.pixel_images.append(len(self.paths) - 1)


def _scaled_roi(roi, image_hw: tuple[int, int], hw: tuple[int, int]):
    """The ROI in the coordinates of the image reduced to `hw` (None stays None)."""
    if roi is None:
        return None
    sy, sx = hw[0] / image_hw[0], hw[1] / image_hw[1]
    return (int(roi[0] * sx), int(roi[1] * sy), max(1, int(roi[2] * sx)), max(1, int(roi[3] * sy)))


def _readable_batches(
    data: EvalSet, roi, batch_size: int, skipped: list[Path], advance: Optional[ProgressHook]
) -> Iterator[tuple[list[np.ndarray], list[int]]]:
    """(images, their indices in data.files) in batches; unreadable files go to `skipped`."""
    batch, idx = [], []
    for i, path in enumerate(data.files):
        image = read_image(path)
        if image is None:
            skipped.append(path)
            if advance:
                advance(1)
            continue
        if roi is not None:
            crop_roi(image, roi)  # raises a clear error when the ROI does not fit these images
        batch.append(image)
        idx.append(i)
        if len(batch) == batch_size:
            yield batch, idx
            batch, idx = [], []
    if batch:
        yield batch, idx


def evaluate_bundle(
    bundle: str | Path | Bundle,
    data: EvalSet,
    batch_size: int = 16,
    threads: Optional[int] = None,
    pixel_max_side: int = 1024,
    worst: int = 6,
    advance: Optional[ProgressHook] = None,
    runtime: Optional[RuntimeOptions] = None,
) -> EvalResult:
    """Score every test image with the bundle's .tflite through edge.detector; all metrics.

    `runtime` (edge.runtime): e.g. ONNX Runtime, on the bundle's .onnx, judged by that model's own threshold.
    """
    b = for_runtime(bundle if isinstance(bundle, Bundle) else load_bundle(bundle), runtime)
    detector = make_detector(b, threads, runtime)
    pre = Preprocessor(b.manifest.preprocessing)
    roi = b.manifest.preprocessing.roi
    got = _Collected()
    for images, idx in _readable_batches(data, roi, batch_size, got.skipped, advance):
        frames = pre.prepare_batch(images)
        t0 = time.perf_counter()
        det = detector.detect(frames)
        got.model_seconds += time.perf_counter() - t0
        for j, i in enumerate(idx):
            got.add(data, i, images[j], det.scores[j], det.maps[j], roi, pixel_max_side)
            if worst > 0:
                got.small_maps.append(cv2.resize(det.maps[j].astype(np.float32), (128, 128)))
        if advance:
            advance(len(idx))
    if not got.paths:
        raise EdgeError(f"none of the {len(data.files)} test images in {data.root} could be read")
    result = _result(b, data, got)
    if worst > 0:
        result._views = {"maps": got.small_maps}
    return result


def _per_defect(got: _Collected, labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Per defect type: its images against every good one (image AUROC, pixel AUROC), and its recall."""
    good = labels == 0
    per_defect = {}
    for defect in sorted(set(got.groups) - {GOOD}):
        sel = np.array([g == defect for g in got.groups])
        pairs = [
            (mk, mp)
            for mk, mp, g in zip(got.pixel_masks, got.pixel_maps, got.pixel_groups, strict=True)
            if g in (GOOD, defect)
        ]
        per_defect[defect] = {
            "images": int(sel.sum()),
            "image_auroc": image_auroc(labels[good | sel], scores[good | sel]),
            "pixel_auroc": pixel_auroc([p[0] for p in pairs], [p[1] for p in pairs])
            if any(g == defect for g in got.pixel_groups)
            else float("nan"),
            "recall": float(np.mean(flagged(scores[sel], threshold))),
        }
    return per_defect


def _result(b: Bundle, data: EvalSet, got: _Collected) -> EvalResult:
    m = b.manifest
    scores = np.array(got.scores)
    labels = np.array([g != GOOD for g in got.groups], int)
    has_defect_masks = any(g != GOOD for g in got.pixel_groups)
    return EvalResult(
        bundle=b.path,
        name=b.path.name,
        kind=m.model.kind,
        quantization=m.model.quantization,
        score=m.describe_score(),
        threshold=b.threshold,
        model_bytes=b.model_path.stat().st_size,
        ms_per_image=1000.0 * got.model_seconds / len(got.paths),
        files=got.paths,
        groups=got.groups,
        scores=scores,
        image_auroc=image_auroc(labels, scores),
        pixel_auroc=pixel_auroc(got.pixel_masks, got.pixel_maps) if has_defect_masks else float("nan"),
        threshold_metrics=at_threshold(labels, scores, b.threshold),
        per_defect=_per_defect(got, labels, scores, b.threshold),
        skipped=got.skipped,
        notes=list(data.notes),
        recall_at_5pct_fpr=recall_at_fpr(labels, scores, 0.05),
        pixel_histograms=PixelHistograms.of(got.pixel_masks, got.pixel_maps, got.pixel_images)
        if has_defect_masks
        else None,
    )


# ---------------------------------------------------------------- outputs


def worst_misses(result: EvalResult, n: int = 6) -> tuple[list[int], list[int]]:
    """(defective images with the lowest scores, good images with the highest), worst first.

    The nearest to a miss or a false alarm, whatever the threshold: outcome() says which of them
    the device actually misses or flags.
    """
    labels = result.labels
    order = np.argsort(result.scores)
    missed = [int(i) for i in order if labels[i] == 1][:n]
    false_alarms = [int(i) for i in order[::-1] if labels[i] == 0][:n]
    return missed, false_alarms


def outcome(defective: bool, score: float, threshold: float) -> str:
    """What the device makes of one test image: 'missed defect', 'false alarm', 'found' or 'passed'.

    Through edge.decide.flagged, so an image scoring exactly the threshold is filed as the
    device treats it (not flagged: a good one passed, a defective one missed).
    """
    if flagged(score, threshold):
        return "found" if defective else "false alarm"
    return "missed defect" if defective else "passed"


def worst_grid_figure(result: EvalResult, n: int = 6):
    """The worst-miss grid as a matplotlib Figure: one row per image (image | anomaly map | mask).

    Rows: the n lowest-scoring defective images, then the n highest-scoring good ones, each
    titled with what the device makes of it (outcome) and its score against the threshold.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    missed, false_alarms = worst_misses(result, n)
    rows = missed + false_alarms
    maps = result._views.get("maps", [])
    # constrained layout makes room for the suptitle; tight_layout let it overlap the first row
    fig, axes = plt.subplots(
        max(1, len(rows)), 3, figsize=(7.5, 2.5 * max(1, len(rows))), squeeze=False, layout="constrained"
    )
    # one colour scale for every map in the grid, so rows can be compared
    shown_maps = [maps[i] for i in rows if i < len(maps)]
    vmax = float(max(m.max() for m in shown_maps)) if shown_maps else 1.0
    for r, i in enumerate(rows):
        _draw_row(axes[r], result, i, maps[i] if i < len(maps) else None, vmax)
    fig.suptitle(f"{result.name}: worst misses (lowest-scoring defects, highest-scoring good images)", fontsize=9)
    return fig


def _draw_row(axes, result: EvalResult, i: int, small_map: Optional[np.ndarray], vmax: float) -> None:
    path, group, score = result.files[i], result.groups[i], float(result.scores[i])
    image = read_image(path)
    shown = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image is not None and image.ndim == 3 else image
    what = outcome(group != GOOD, score, result.threshold)
    sign = ">" if flagged(score, result.threshold) else "≤"  # the comparison the device made
    axes[0].imshow(shown, cmap="gray")
    axes[0].set_title(
        f"{what}: {group}/{path.name}\nscore {score:.4g} {sign} threshold {result.threshold:.4g}", fontsize=7
    )
    if small_map is not None and image is not None:
        # back to the image's own aspect ratio, as the map is scored against the mask
        axes[1].imshow(cv2.resize(small_map, (image.shape[1], image.shape[0])), cmap="inferno", vmin=0, vmax=vmax)
    axes[1].set_title("anomaly map (shared scale)", fontsize=7)
    mpath = mask_path(Path(path).parents[2], group, path) if group != GOOD else None
    mask = read_mask(mpath, image.shape[:2]) if mpath is not None and image is not None else None
    axes[2].imshow(mask if mask is not None else np.zeros((8, 8)), cmap="gray", vmin=0, vmax=1)
    axes[2].set_title("mask" if mask is not None else "no defect", fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def write_worst_grid(result: EvalResult, out: Path, n: int = 6) -> Path:
    """PNG of worst_grid_figure at `out`; remembered in result.worst_png."""
    import matplotlib.pyplot as plt

    fig = worst_grid_figure(result, n)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    result.worst_png = out
    return out


def _f(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def _with_interval(r: EvalResult, metric: str) -> str:
    """'0.959 (0.93–0.98)' with the bootstrap interval, or the figure alone."""
    value = _f(r.points()[metric])
    i = r.intervals.intervals.get(metric) if r.intervals is not None else None
    return value if i is None or not np.isfinite(i.low) else f"{value} ({i.describe()})"


def compare_line(r: EvalResult, first: EvalResult) -> str:
    """'b − a: image AUROC +0.004 (−0.010–0.018, within noise), ...' from the paired bootstrap."""
    parts = []
    for metric, label in (
        ("image_auroc", "image AUROC"),
        ("pixel_auroc", "pixel AUROC"),
        ("recall_at_5pct_fpr", "recall @ 5 % FPR"),
    ):
        i = r.versus_first.intervals.get(metric)
        if i is None or not np.isfinite(i.low):
            continue
        verdict = "within noise" if r.versus_first.within_noise(metric) else "beyond noise"
        parts.append(f"{label} {i.point:+.3f} ({i.low:+.3f} to {i.high:+.3f}, {verdict})")
    return f"{r.name} − {first.name}: " + ("; ".join(parts) if parts else "no paired figures")


def markdown(results: list[EvalResult], data: EvalSet, command: str = "", title: str = "Detection quality") -> str:
    """A results page: one row per bundle, then per-defect image/pixel AUROC and recall."""
    n_good = sum(g == GOOD for g in data.groups)
    lines = [f"# {title}", ""]
    lines.append(
        f"Data: `{data.root}` — {n_good} good and {len(data.files) - n_good} defective test images "
        f"({', '.join(sorted(set(data.groups) - {GOOD}))})."
    )
    if command:
        lines += ["", "Command:", "", "```", command, "```"]
    lines += [
        "",
        "| bundle | kind | quant | score | size | ms/image | image AUROC | pixel AUROC | recall @ 5 % FPR | "
        "F1 @ thr | precision | recall | FP / good |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t = r.threshold_metrics
        lines.append(
            f"| {r.name} | {r.kind} | {r.quantization} | {r.score} | {r.model_bytes / 1024:.0f} KiB | "
            f"{r.ms_per_image:.1f} | {_with_interval(r, 'image_auroc')} | {_with_interval(r, 'pixel_auroc')} | "
            f"{_with_interval(r, 'recall_at_5pct_fpr')} | "
            f"{_f(t['f1'])} | "
            f"{_f(t['precision'])} | {_f(t['recall'])} | {t['fp']} / {t['fp'] + t['tn']} |"
        )
    boot = next((r.intervals for r in results if r.intervals is not None), None)
    if boot is not None:
        lines += [
            "",
            f"In brackets: {boot.confidence:.0%} bootstrap intervals ({boot.resamples} stratified resamples of the "
            f"test images, seed {boot.seed}; {sum(r.intervals.seconds for r in results if r.intervals):.2f} s).",
        ]
    compared = [r for r in results[1:] if r.versus_first is not None]
    if compared:
        lines += [
            "",
            "Paired bootstrap against the first bundle (same resampled images; the difference is "
            "within noise when its interval holds 0):",
            "",
        ]
        lines += [f"- {compare_line(r, results[0])}" for r in compared]
    defects = sorted(set(data.groups) - {GOOD})
    lines += ["", "Per defect type (image AUROC / pixel AUROC / recall at the bundle's threshold):", ""]
    lines.append("| defect | n | " + " | ".join(r.name for r in results) + " |")
    lines.append("|---|---|" + "---|" * len(results))
    for d in defects:
        cells = []
        n = 0
        for r in results:
            p = r.per_defect.get(d)
            if p is None:
                cells.append("–")
                continue
            n = p["images"]
            cells.append(f"{_f(p['image_auroc'])} / {_f(p['pixel_auroc'])} / {_f(p['recall'], 2)}")
        lines.append(f"| {d} | {n} | " + " | ".join(cells) + " |")
    notes = sorted({n for r in results for n in r.notes})
    skipped = {r.name: len(r.skipped) for r in results if r.skipped}
    if notes or skipped:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
        lines += [f"- {name}: {k} unreadable image(s) skipped" for name, k in skipped.items()]
    pngs = [r for r in results if r.worst_png is not None]
    if pngs:
        lines += ["", "Worst misses (lowest-scoring defects, highest-scoring good images):", ""]
        lines += [f"- {r.name}: `{r.worst_png.name}`" for r in pngs]
    lines += [
        "",
        "Image AUROC: test/good vs every defect; pixel AUROC: the anomaly map resized to each "
        "image's size against ground_truth masks, all test pixels pooled; recall @ 5 % FPR: defective "
        "images found when at most 5 % of test/good may be flagged (no threshold involved); "
        "ms/image: model + score, "
        "batched, on the machine that ran this (shared, so indicative only).",
        "",
    ]
    return "\n".join(lines)


def evaluate(
    bundles: list[str | Path],
    data: str | Path,
    out: Optional[str | Path] = None,
    batch_size: int = 16,
    threads: Optional[int] = None,
    worst: int = 6,
    pixel_max_side: int = 1024,
    command: str = "",
    progress: bool = True,
    log: Callable[[str], None] = print,
    exclude: Sequence[str] = (),
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    runtime: Optional[RuntimeOptions] = None,
) -> tuple[list[EvalResult], Optional[Path]]:
    """Evaluate one or more bundles on one MVTec AD folder; optionally write markdown + PNGs.

    resamples: bootstrap resamples for the intervals (0: none); bundles after the first are also
    compared with it by a paired bootstrap over the same images (calibration.bootstrap).
    """
    eval_set = load_eval_set(data, exclude)
    # check every bundle before the long part; with the threshold in force on `runtime` (edge.runtime.for_runtime)
    loaded = [for_runtime(load_bundle(b), runtime) for b in bundles]
    results = []
    for b, name in zip(loaded, _distinct_names(loaded), strict=True):
        r = _evaluate_one(b, name, eval_set, progress, batch_size, threads, pixel_max_side, worst, runtime)
        r.name = name
        _add_intervals(r, results[0] if results else None, resamples, seed, log)
        results.append(r)
        log(
            f"{name}: image AUROC {_with_interval(r, 'image_auroc')}, pixel AUROC {_with_interval(r, 'pixel_auroc')}, "
            f"recall {_with_interval(r, 'recall_at_5pct_fpr')} at 5 % FPR, F1 {_f(r.threshold_metrics['f1'])} "
            f"at threshold {r.threshold:.4g}, {r.ms_per_image:.1f} ms/image"
        )
        if r.versus_first is not None:
            log(compare_line(r, results[0]))
    if resamples and results and results[0].intervals is not None:
        b = results[0].intervals
        log(f"(in brackets: {b.confidence:.0%} bootstrap intervals, {b.resamples} stratified resamples, seed {b.seed})")
    report = _write_outputs(results, eval_set, Path(out), worst, command) if out is not None else None
    if report is not None:
        log(f"report: {report}")
    return results, report


def _add_intervals(r: EvalResult, first: Optional[EvalResult], resamples: int, seed: int, log) -> None:
    """r.intervals, and r.versus_first when another bundle came first (the same images, paired)."""
    if resamples <= 0:
        return
    r.intervals = bootstrap(r.labels, r.scores, r.points(), r.pixel_histograms, resamples, seed)
    if first is None:
        return
    if [str(p) for p in first.files] != [str(p) for p in r.files]:
        log(f"note: {r.name} and {first.name} read different images (unreadable ones skipped): no paired comparison")
        return
    r.versus_first = paired(
        r.labels, first.scores, r.scores, first.points(), r.points(), first.pixel_histograms, r.pixel_histograms,
        resamples, seed,
    )  # fmt: skip


def _distinct_names(loaded: list[Bundle]) -> list[str]:
    """Bundle folder names; parent/name for all when two bundles in different folders share one."""
    names = [b.path.name for b in loaded]
    if len(set(names)) < len(names):
        names = [f"{b.path.parent.name}/{b.path.name}" for b in loaded]
    return names


def _evaluate_one(
    b: Bundle,
    name: str,
    eval_set: EvalSet,
    progress: bool,
    batch_size: int,
    threads: Optional[int],
    pixel_max_side: int,
    worst: int,
    runtime: Optional[RuntimeOptions] = None,
) -> EvalResult:
    """evaluate_bundle, under a transient progress bar when `progress`."""
    if not progress:
        return evaluate_bundle(b, eval_set, batch_size, threads, pixel_max_side, worst, runtime=runtime)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    ) as bar:
        task = bar.add_task(f"eval {name}", total=len(eval_set.files))
        advance = lambda k: bar.advance(task, k)  # noqa: E731
        return evaluate_bundle(
            b, eval_set, batch_size, threads, pixel_max_side, worst, advance=advance, runtime=runtime
        )


def _write_outputs(results: list[EvalResult], eval_set: EvalSet, out: Path, worst: int, command: str) -> Path:
    """OUT/quality.md (or OUT itself when it names a .md file) and a worst-miss PNG per bundle beside it."""
    if out.suffix.lower() == ".md":
        report, folder = out, out.parent
    else:
        report, folder = out / "quality.md", out
    folder.mkdir(parents=True, exist_ok=True)
    if worst > 0:
        for r in results:
            safe = r.name.replace("/", "_")
            write_worst_grid(r, folder / f"{report.stem}_worst_{safe}.png", worst)
    report.write_text(markdown(results, eval_set, command))
    return report
