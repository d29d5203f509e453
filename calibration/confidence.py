"""How sure a threshold is: the intervals stored in the bundle's threshold record (edge.bundle.Threshold).

A false-alarm rate measured on n normal images is an estimate; its exact binomial interval
(edge.binomial, numpy-free) says how far the rate on other good images of the same line may be.
The same for recall when anomalous images were given. For an fpr-type method the record also
says how many normal images pin its target rate down to ± a half-width (default: half the rate).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from calibration.thresholds import Method
from edge.binomial import clopper_pearson, images_needed, upper_bound
from edge.bundle import ImagesNeeded, RateInterval, Threshold
from edge.decide import flagged
from edge.errors import EdgeError


def rate_interval(hits: int, n: int, confidence: float) -> RateInterval:
    low, high = clopper_pearson(hits, n, confidence)
    return RateInterval(k=int(hits), n=int(n), low=low, high=high)


def check_precision(method: Method, precision: Optional[float]) -> None:
    """--precision is a half-width of the target rate's interval: positive, and only for fpr-type methods."""
    if precision is None:
        return
    if not 0 < precision < 1:
        raise EdgeError(f"bad --precision {precision:g}: a half-width of a rate, between 0 and 1, e.g. 0.02")
    if method.target_rate is None:
        raise EdgeError(f"--precision applies to fpr:R and fpr-upper:R (a target rate); --method is {method}")


def threshold_record(
    method: Method,
    value: float,
    normal: np.ndarray,
    anomalous: Optional[np.ndarray] = None,
    precision: Optional[float] = None,
) -> Threshold:
    """The bundle's threshold with its intervals at the method's confidence."""
    c = method.confidence
    normal = np.asarray(normal, np.float64)
    alarms = int(np.sum(flagged(normal, value)))
    record = Threshold(
        value=value,
        method=str(method),
        confidence=c,
        false_alarm=rate_interval(alarms, normal.size, c),
        false_alarm_upper=upper_bound(alarms, normal.size, c),
    )
    if anomalous is not None and len(anomalous):
        found = int(np.sum(flagged(np.asarray(anomalous, np.float64), value)))
        record.recall = rate_interval(found, len(anomalous), c)
    target = method.target_rate
    if target:
        half = precision if precision is not None else target / 2
        record.normal_needed = ImagesNeeded(rate=target, half_width=half, images=images_needed(target, half, c))
    return record
