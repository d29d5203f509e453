"""Two-class metrics in numpy: ROC curve and AUC, precision-recall curve, counts at a threshold.

Calibration runs on the device, where scikit-learn is not installed, so these replace the few
scikit-learn functions it used. Each one follows scikit-learn's own arithmetic step for step
(the same sort, the same cumulative sums, the same dropped ROC points, the same trapezoids), so
the figures in bundle.json are the same to the last bit; tests/test_device_calibration.py
compares them with scikit-learn's wherever it is installed.

Labels: 1 = anomalous (the positive class), 0 = normal; higher score = more anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _curve_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positives, true positives, threshold) at each distinct score, highest score first.

    As sklearn.metrics._ranking._binary_clf_curve: counts for the rule score >= threshold.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, np.float64)
    order = np.argsort(scores, kind="stable")[::-1]
    scores, truth = scores[order], (labels[order] == 1).astype(np.float64)
    distinct = np.nonzero(np.diff(scores))[0]
    ends = np.concatenate([distinct, [truth.size - 1]])
    tps = np.cumsum(truth, dtype=np.float64)[ends]
    fps = 1 + ends.astype(np.float64) - tps
    return fps, tps, scores[ends]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) from (0, 0), with scikit-learn's dropped collinear points."""
    fps, tps, _ = _curve_counts(labels, scores)
    if fps.size > 2:
        # a point with no corner (zero second difference in both counts) adds nothing to the curve
        corners = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.nonzero(np.concatenate([[True], corners, [True]]))[0]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.concatenate([[0.0], fps]), np.concatenate([[0.0], tps])
    return fps / fps[-1], tps / tps[-1]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by trapezoids; NaN when only one class is present."""
    labels = np.asarray(labels)
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    fpr, tpr = roc_curve(labels, scores)
    return float((np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0).sum())


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) as scikit-learn's: thresholds ascending, a last (1, 0) point without one."""
    fps, tps, thresholds = _curve_counts(labels, scores)
    predicted = tps + fps
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted != 0, tps / predicted, 0.0)
        recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return (
        np.concatenate([precision[::-1], [1.0]]),
        np.concatenate([recall[::-1], [0.0]]),
        thresholds[::-1],
    )


@dataclass(frozen=True)
class Counts:
    """Confusion counts of a flagged/not-flagged decision against the labels."""

    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def of(cls, labels: np.ndarray, predicted: np.ndarray) -> "Counts":
        truth, said = np.asarray(labels) == 1, np.asarray(predicted).astype(bool)
        return cls(
            tp=int(np.sum(truth & said)),
            fp=int(np.sum(~truth & said)),
            tn=int(np.sum(~truth & ~said)),
            fn=int(np.sum(truth & ~said)),
        )

    def precision_recall_f1(self) -> tuple[float, float, float]:
        """As precision_recall_fscore_support(average="binary", zero_division=0): 0 where undefined."""
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        # scikit-learn >= 1.3 computes F1 from the counts, not from precision and recall
        denominator = 2 * self.tp + self.fp + self.fn
        f1 = 2 * self.tp / denominator if denominator else 0.0
        return float(precision), float(recall), float(f1)
