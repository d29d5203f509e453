"""Threshold methods: normal (and optionally anomalous) scores → one threshold.

The device alerts when ``score > threshold`` (edge.decide.Decider), so every method here picks
its threshold for that strict rule: a frame scoring exactly the threshold is *not* flagged.

Methods (the ``--method`` string):

- ``quantile:Q``  the Q-quantile of the normal scores (numpy's default linear interpolation);
  about a fraction 1-Q of normal images will be flagged. 0 < Q <= 1.
- ``meanstd:K``   mean + K * std of the normal scores (population std, ddof=0). K >= 0.
- ``fpr:R``       the smallest threshold whose false-positive rate on the normal images is <= R:
  with n normal images, at most floor(R * n) of them score above it. The threshold is one of
  the normal scores. 0 <= R < 1.
- ``fpr-upper:R`` the smallest threshold whose false-positive rate is at most R *with the stated
  confidence* (``--confidence``, default 0.95): the most normal images m may score above it such that
  the exact one-sided upper bound of the rate, m of n, is <= R (edge.binomial). The true rate of a
  threshold set this way exceeds R in at most 5 % of calibration sets (a distribution-free
  tolerance limit); ``fpr:R`` exceeds it about half the time. Needs n >= log(1 - c) / log(1 - R)
  normal images (59 for R = 0.05 at 95 %).
- ``f1``          the threshold that maximises F1 on normal + anomalous images (anomalous is
  the positive class), found on the precision-recall curve (calibration.binary_metrics: scikit-learn's,
  in numpy). It lies midway between
  the lowest flagged score and the highest unflagged one; ties in F1 go to the higher threshold
  (fewer false alarms). Needs anomalous images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from calibration.binary_metrics import precision_recall_curve
from edge.binomial import upper_bound
from edge.errors import EdgeError

METHOD_HELP = "quantile:0.999 | meanstd:3 | fpr:0.001 | f1 | fpr-upper:0.05"
_NAMES = ("quantile", "meanstd", "fpr", "fpr-upper", "f1")
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Method:
    name: str
    param: Optional[float] = None
    confidence: float = DEFAULT_CONFIDENCE  # fpr-upper: how sure the rate is at most param

    @property
    def needs_anomalous(self) -> bool:
        return self.name == "f1"

    @property
    def target_rate(self) -> Optional[float]:
        """The false-alarm rate an fpr-type method aims at; None for the others."""
        return self.param if self.name in ("fpr", "fpr-upper") else None

    def __str__(self) -> str:
        return self.name if self.param is None else f"{self.name}:{self.param:g}"


def _bad(text: str, why: str) -> EdgeError:
    return EdgeError(f"bad --method {text!r}: {why}; use one of {METHOD_HELP}")


def parse_method(text: str, confidence: float = DEFAULT_CONFIDENCE) -> Method:
    """'quantile:0.999' → Method('quantile', 0.999); a one-line EdgeError for anything else."""
    if not 0 < confidence < 1:
        raise EdgeError(f"bad --confidence {confidence:g}: it must be between 0 and 1, e.g. 0.95")
    raw = text
    text = text.strip().lower()
    name, sep, value = text.partition(":")
    if name not in _NAMES:
        raise _bad(raw, f"unknown method {name!r}")
    if name == "f1":
        if sep:
            raise _bad(raw, "f1 takes no parameter")
        return Method("f1")
    if not value:
        raise _bad(raw, f"{name} needs a number after the colon, e.g. {_example(name)}")
    try:
        param = float(value)
    except ValueError:
        raise _bad(raw, f"{value!r} is not a number") from None
    if not math.isfinite(param):
        raise _bad(raw, "the number must be finite")
    if name == "quantile" and not 0 < param <= 1:
        raise _bad(raw, "the quantile must be in (0, 1], e.g. quantile:0.999")
    if name == "meanstd" and param < 0:
        raise _bad(raw, "k must be >= 0, e.g. meanstd:3")
    if name == "fpr" and not 0 <= param < 1:
        raise _bad(raw, "the false-positive rate must be in [0, 1), e.g. fpr:0.001")
    if name == "fpr-upper" and not 0 < param < 1:
        raise _bad(raw, "the false-positive rate must be in (0, 1), e.g. fpr-upper:0.05")
    return Method(name, param, confidence if name == "fpr-upper" else DEFAULT_CONFIDENCE)


def _example(name: str) -> str:
    return {"quantile": "quantile:0.999", "meanstd": "meanstd:3", "fpr": "fpr:0.001", "fpr-upper": "fpr-upper:0.05"}[
        name
    ]


def quantile_threshold(normal: np.ndarray, q: float) -> float:
    return float(np.quantile(normal, q))


def meanstd_threshold(normal: np.ndarray, k: float) -> float:
    return float(np.mean(normal) + k * np.std(normal))


def fpr_threshold(normal: np.ndarray, rate: float) -> float:
    """Smallest t with #(normal > t) <= floor(rate * n): the (n - m)-th smallest normal score."""
    ordered = np.sort(normal)
    n = len(ordered)
    # The small epsilon keeps e.g. 0.001 * 1000 from flooring to 0 through rounding.
    allowed = min(int(math.floor(rate * n + 1e-9)), n - 1)
    return float(ordered[n - 1 - allowed])


def fewest_normal_for_upper(rate: float, confidence: float) -> int:
    """Normal images needed before even the highest normal score bounds the rate: (1 - R)^n <= 1 - c."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - rate) - 1e-9)


def fpr_upper_threshold(normal: np.ndarray, rate: float, confidence: float) -> float:
    """Smallest t whose false-alarm rate is <= rate with `confidence`: the most normal scores m over it
    whose exact one-sided upper bound (m of n) is <= rate; t is the (n - m)-th smallest normal score."""
    ordered = np.sort(normal)
    n = len(ordered)
    if upper_bound(0, n, confidence) > rate:
        raise EdgeError(
            f"fpr-upper:{rate:g} at {confidence:.0%} confidence needs at least "
            f"{fewest_normal_for_upper(rate, confidence)} normal images, got {n}: pass more good images, "
            f"or use fpr:{rate:g} (an estimate without that guarantee)"
        )
    lo, hi = 0, min(n - 1, int(math.floor(rate * n)))  # the bound is above k/n, so m <= floor(rate * n)
    while lo < hi:  # the upper bound grows with m: the largest m that keeps it <= rate
        mid = (lo + hi + 1) // 2
        if upper_bound(mid, n, confidence) <= rate:
            lo = mid
        else:
            hi = mid - 1
    return float(ordered[n - 1 - lo])


def f1_threshold(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """F1-optimal threshold for the rule score > t (anomalous = positive class)."""
    scores = np.concatenate([normal, anomalous]).astype(np.float64)
    labels = np.concatenate([np.zeros(len(normal), int), np.ones(len(anomalous), int)])
    precision, recall, cuts = precision_recall_curve(labels, scores)
    # precision/recall[i] hold for the rule score >= cuts[i]; the last entries have no cut.
    p, r = precision[:-1], recall[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    # Mathematically equal F1s can differ in the last bit; treat them as a tie.
    best = np.flatnonzero(np.isclose(f1, f1.max(), rtol=1e-9, atol=0))
    cut = float(cuts[best.max()])  # cuts ascend: the last best one is the highest threshold
    below = scores[scores < cut]
    if below.size == 0:
        # Flag everything: any t just under the lowest score does it.
        return float(np.nextafter(cut, -np.inf))
    lo = float(below.max())
    mid = lo + (cut - lo) / 2
    return mid if lo <= mid < cut else lo


def check_anomalous(method: Method, n_anomalous: int) -> None:
    """One clear line when the method needs anomalous images and there are none."""
    if method.needs_anomalous and n_anomalous == 0:
        raise EdgeError(
            f"--method {method} needs anomalous images: pass --anomalous DIR (or an MVTec AD root as --normal, "
            "whose test/<defect> folders are used), or choose quantile:Q, meanstd:K or fpr:R"
        )


def check_normal_count(method: Method, n_normal: int) -> None:
    """fpr-upper cannot promise its bound on too few normal images: one clear line before any scoring."""
    if method.name != "fpr-upper":
        return
    needed = fewest_normal_for_upper(method.param, method.confidence)
    if n_normal < needed:
        raise EdgeError(
            f"--method {method} at {method.confidence:.0%} confidence needs at least {needed} normal images, "
            f"found {n_normal}: pass more good images, or use fpr:{method.param:g} (an estimate without that guarantee)"
        )


def compute_threshold(method: Method, normal: np.ndarray, anomalous: Optional[np.ndarray] = None) -> float:
    """The threshold for `method` from score arrays (higher score = more anomalous)."""
    normal = np.asarray(normal, np.float64)
    if normal.size == 0:
        raise EdgeError("no normal scores to calibrate on; pass a folder of good images with --normal")
    if method.name == "quantile":
        return quantile_threshold(normal, method.param)
    if method.name == "meanstd":
        return meanstd_threshold(normal, method.param)
    if method.name == "fpr":
        return fpr_threshold(normal, method.param)
    if method.name == "fpr-upper":
        return fpr_upper_threshold(normal, method.param, method.confidence)
    if method.name == "f1":
        check_anomalous(method, 0 if anomalous is None else len(anomalous))
        return f1_threshold(normal, np.asarray(anomalous, np.float64))
    raise EdgeError(f"unknown method {method.name!r}; use one of {METHOD_HELP}")


def resolution_note(method: Method, n_normal: int) -> Optional[str]:
    """A warning when the method asks for finer resolution than the normal set can give."""
    if method.name == "quantile" and (1 - method.param) * n_normal < 1 and method.param < 1:
        return (
            f"{method} on {n_normal} normal images is beyond what they can resolve (1/{n_normal}): "
            "the threshold is close to the highest normal score; more normal images give a steadier one"
        )
    if method.name == "fpr" and method.param > 0 and method.param * n_normal < 1:
        return (
            f"{method} on {n_normal} normal images allows no false positive at all: the threshold is the "
            f"highest normal score; at least {math.ceil(1 / method.param)} normal images are needed to resolve it"
        )
    return None
