"""Numbers for the bundle and the report: score statistics and detection metrics at a threshold.

Anomalous is the positive class; a score is flagged when ``score > threshold``: the device's rule,
edge.decide.flagged, used here so the metrics count what the device will do.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from calibration.binary_metrics import Counts, roc_auc
from edge.bundle import ScoreStats
from edge.decide import flagged

QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99, 0.999)


def score_stats(scores: np.ndarray) -> ScoreStats:
    """count, mean, std (ddof=0), min, max and a few quantiles, as stored in bundle.json."""
    s = np.asarray(scores, np.float64)
    return ScoreStats(
        count=int(s.size),
        mean=float(s.mean()),
        std=float(s.std()),
        min=float(s.min()),
        max=float(s.max()),
        quantiles={f"{q:g}": float(np.quantile(s, q)) for q in QUANTILES},
    )


def labelled(normal: np.ndarray, anomalous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) with 0 = normal, 1 = anomalous."""
    labels = np.concatenate([np.zeros(len(normal), int), np.ones(len(anomalous), int)])
    return labels, np.concatenate([normal, anomalous]).astype(np.float64)


def false_alarm_rate(normal: np.ndarray, threshold: float) -> float:
    """Fraction of normal images the device would flag."""
    return float(np.mean(flagged(normal, threshold)))


def detection_metrics(
    normal: np.ndarray,
    anomalous: np.ndarray,
    threshold: float,
    groups: Optional[list[str]] = None,
) -> dict:
    """Image AUROC, precision/recall/F1 and confusion counts at `threshold`.

    `groups` names the folder (e.g. MVTec defect type) of each anomalous score; when there is
    more than one, recall and AUROC per group are added under "per_group".
    """
    labels, scores = labelled(normal, anomalous)
    counts = Counts.of(labels, flagged(scores, threshold))
    precision, recall, f1 = counts.precision_recall_f1()
    tp, fp, tn, fn = counts.tp, counts.fp, counts.tn, counts.fn
    metrics = {
        "image_auroc": roc_auc(labels, scores),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n_normal": int(len(normal)),
        "n_anomalous": int(len(anomalous)),
    }
    if groups is not None and len(set(groups)) > 1:
        per_group = {}
        group_arr = np.asarray(groups)
        for name in sorted(set(groups)):
            g = np.asarray(anomalous)[group_arr == name]
            g_labels, g_scores = labelled(normal, g)
            per_group[name] = {
                "count": int(g.size),
                "recall": float(np.mean(flagged(g, threshold))),
                "image_auroc": roc_auc(g_labels, g_scores),
            }
        metrics["per_group"] = per_group
    return metrics
