"""How much `edge eval`'s figures would move on another test set: stratified bootstrap intervals.

A test split of 100 good and 50 defective images is one draw of a line's images; AUROC and recall
measured on it carry sampling noise. Resampling the images with replacement (good ones among good
ones, defective among defective: each resample keeps the split's class counts) and recomputing
each metric gives its percentile interval (Efron & Tibshirani: ~1000 resamples for a 95 % interval).
`paired` resamples the same images for two bundles at once, so the interval of their difference
says whether it is more than the noise of the split.

Every resample is a vector of image multiplicities, so the metrics are computed with weights:
- image AUROC: the Mann–Whitney statistic with weights (ties count half), as binary_metrics.roc_auc;
- recall at a false-positive rate: the share of weighted defect images scoring above the weighted
  normal score that leaves at most `fpr` of the normal weight flagged (evaluate.recall_at_fpr's point);
- pixel AUROC: each image's pixels as histograms over one set of quantile bins (positives, negatives),
  a resample's pooled histograms weighted by image, AUROC from them (ties within a bin count half).
  With PIXEL_BINS quantile bins it is within ~1e-3 of the exact pooled figure (the point estimate
  itself stays exact: the bins only serve the resamples).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
PIXEL_BINS = 2048
RECALL_FPR = 0.05


def stratified_weights(labels: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) multiplicities: each class resampled with replacement to its own count."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    weights = np.zeros((resamples, labels.size), np.float64)
    for value in np.unique(labels):
        idx = np.flatnonzero(labels == value)
        weights[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), size=resamples)
    return weights


def weighted_auroc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC for each row of weights (B, n): P(defect score > normal score) + half the ties."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    order = np.argsort(neg, kind="stable")
    neg_sorted = neg[order]
    w_neg = weights[:, labels == 0][:, order]
    w_pos = weights[:, labels == 1]
    cum = np.concatenate([np.zeros((weights.shape[0], 1)), np.cumsum(w_neg, axis=1)], axis=1)
    below = cum[:, np.searchsorted(neg_sorted, pos, side="left")]
    through = cum[:, np.searchsorted(neg_sorted, pos, side="right")]
    wins = (w_pos * (below + 0.5 * (through - below))).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / (w_pos.sum(axis=1) * w_neg.sum(axis=1))


def weighted_recall_at_fpr(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, fpr: float) -> np.ndarray:
    """Recall when at most `fpr` of the (weighted) normal images may be flagged, per row of weights."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    neg, pos = scores[labels == 0], scores[labels == 1]
    order = np.argsort(-neg, kind="stable")
    neg_desc = neg[order]
    w_neg = weights[:, labels == 0][:, order]
    w_pos = weights[:, labels == 1]
    allowed = np.floor(fpr * w_neg.sum(axis=1) + 1e-9)
    # Tied normal scores are flagged together: count each distinct score's whole weight at its last copy.
    cum = np.cumsum(w_neg, axis=1)
    last_of_tie = np.concatenate([neg_desc[1:] != neg_desc[:-1], [True]])
    cum_at = np.where(last_of_tie[None, :], cum, -np.inf)
    # the highest normal score whose flagging (with all above it) exceeds the allowance: the cut
    over = cum_at > allowed[:, None]
    first = np.argmax(over, axis=1)
    cut = np.where(over.any(axis=1), neg_desc[first], -np.inf)
    found = (w_pos * (pos[None, :] > cut[:, None])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return found / w_pos.sum(axis=1)


@dataclass
class PixelHistograms:
    """Each pixel-evaluated image's positive and negative pixels counted in shared quantile bins."""

    image_index: np.ndarray  # (m,) index of the image among the evaluated ones
    positives: np.ndarray  # (m, bins)
    negatives: np.ndarray  # (m, bins)

    @classmethod
    def of(cls, masks: Sequence[np.ndarray], maps: Sequence[np.ndarray], image_index: Sequence[int]):
        values = np.concatenate([a.ravel() for a in maps]).astype(np.float32)
        step = max(1, values.size // 200_000)  # the bin edges from a sample: a few 10⁵ values suffice
        edges = np.unique(np.quantile(values[::step], np.linspace(0, 1, PIXEL_BINS + 1)[1:-1]))
        bins = edges.size + 1
        pos, neg = np.zeros((len(maps), bins)), np.zeros((len(maps), bins))
        for i, (mask, a) in enumerate(zip(masks, maps, strict=True)):
            which = np.searchsorted(edges, a.ravel(), side="right")
            truth = mask.ravel().astype(bool)
            pos[i] = np.bincount(which[truth], minlength=bins)
            neg[i] = np.bincount(which[~truth], minlength=bins)
        return cls(np.asarray(image_index, int), pos, neg)

    def auroc(self, weights: np.ndarray) -> np.ndarray:
        w = weights[:, self.image_index]
        pos, neg = w @ self.positives, w @ self.negatives
        below = np.cumsum(neg, axis=1) - neg
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


@dataclass
class Interval:
    point: float
    low: float
    high: float

    def describe(self, digits: int = 3) -> str:
        if not np.isfinite(self.low):
            return "n/a"
        return f"{self.low:.{digits}f}–{self.high:.{digits}f}"

    def to_dict(self) -> dict:
        return {"point": self.point, "low": self.low, "high": self.high}


@dataclass
class Bootstrap:
    """Percentile intervals of a bundle's metrics (or of a paired difference) over `resamples`."""

    resamples: int
    seed: int
    confidence: float
    seconds: float
    intervals: dict[str, Interval]  # "image_auroc", "pixel_auroc", "recall_at_5pct_fpr"

    def within_noise(self, metric: str) -> Optional[bool]:
        """For a difference: does its interval hold 0? None when it could not be computed."""
        i = self.intervals.get(metric)
        if i is None or not np.isfinite(i.low):
            return None
        return bool(i.low <= 0 <= i.high)


def _interval(point: float, draws: np.ndarray, confidence: float) -> Interval:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0 or not np.isfinite(point):
        return Interval(point, float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(float(point), float(low), float(high))


def _draws(labels, scores, pixels: Optional[PixelHistograms], weights: np.ndarray) -> dict[str, np.ndarray]:
    out = {
        "image_auroc": weighted_auroc(labels, scores, weights),
        "recall_at_5pct_fpr": weighted_recall_at_fpr(labels, scores, weights, RECALL_FPR),
    }
    if pixels is not None:
        out["pixel_auroc"] = pixels.auroc(weights)
    return out


def bootstrap(
    labels: np.ndarray,
    scores: np.ndarray,
    points: dict[str, float],
    pixels: Optional[PixelHistograms] = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Bootstrap:
    """Intervals around `points` (the exact figures) from stratified resamples of the images."""
    t0 = time.perf_counter()
    weights = stratified_weights(labels, resamples, seed)
    draws = _draws(labels, scores, pixels, weights)
    intervals = {k: _interval(points.get(k, float("nan")), v, confidence) for k, v in draws.items()}
    return Bootstrap(resamples, seed, confidence, time.perf_counter() - t0, intervals)


def paired(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    points_a: dict[str, float],
    points_b: dict[str, float],
    pixels_a: Optional[PixelHistograms] = None,
    pixels_b: Optional[PixelHistograms] = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Bootstrap:
    """Intervals of b − a with both bundles scored on the same resampled images."""
    t0 = time.perf_counter()
    weights = stratified_weights(labels, resamples, seed)
    a = _draws(labels, scores_a, pixels_a, weights)
    b = _draws(labels, scores_b, pixels_b, weights)
    intervals = {
        k: _interval(points_b.get(k, float("nan")) - points_a.get(k, float("nan")), b[k] - a[k], confidence)
        for k in a
        if k in b
    }
    return Bootstrap(resamples, seed, confidence, time.perf_counter() - t0, intervals)
