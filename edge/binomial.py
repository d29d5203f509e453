"""How sure a rate measured on n images is: exact (Clopper–Pearson) and Wilson binomial intervals.

A threshold set so that 5 of 100 good images score above it promises a false-alarm rate that is
only an estimate: other good images of the same line can give 2 % or 11 %. These intervals say
by how much. Pure Python (math only): calibration runs on the device, where scipy is not installed.

Clopper–Pearson inverts the binomial test: its bounds are quantiles of Beta distributions, found
here by bisection on the regularised incomplete beta function (Numerical Recipes' continued
fraction). It never covers less than its confidence (it is conservative at small n); Wilson's
score interval is closed-form and closer to nominal on average, and is what the web page draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPS = 1e-15
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b), a, b > 0, 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # the continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """x with I_x(a, b) = q, by bisection (to about 1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, confidence: float = 0.95, sides: int = 2) -> tuple[float, float]:
    """Exact interval for a rate k/n. sides=1: the one-sided upper bound (lower bound 0)."""
    _check(k, n, confidence)
    alpha = (1.0 - confidence) / (2 if sides == 2 else 1)
    low = 0.0 if k == 0 or sides == 1 else beta_quantile(alpha, k, n - k + 1)
    high = 1.0 if k == n else beta_quantile(1.0 - alpha, k + 1, n - k)
    return low, high


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k/n (closed form)."""
    _check(k, n, confidence)
    z = normal_quantile(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on erf (p in (0, 1))."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _check(k: int, n: int, confidence: float) -> None:
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact upper bound: the true rate is at most this with the stated confidence."""
    return clopper_pearson(k, n, confidence, sides=1)[1]


def images_needed(rate: float, half_width: float, confidence: float = 0.95) -> int:
    """Smallest n whose exact interval around `rate` is no wider than ± half_width (both sides)."""

    def wide(n: int) -> bool:
        k = round(rate * n)
        low, high = clopper_pearson(k, n, confidence)
        return max(k / n - low, high - k / n) > half_width

    hi = 1
    while wide(hi):
        hi *= 2
        if hi > 1 << 26:
            return hi
    lo = max(1, hi // 2)
    while lo < hi:  # the half-width shrinks with n apart from rounding wiggles; bisection is close enough
        mid = (lo + hi) // 2
        if wide(mid):
            lo = mid + 1
        else:
            hi = mid
    return hi


@dataclass(frozen=True)
class RateEstimate:
    """k of n, and its exact two-sided interval at `confidence`."""

    k: int
    n: int
    confidence: float
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.k / self.n

    @classmethod
    def of(cls, k: int, n: int, confidence: float = 0.95) -> "RateEstimate":
        low, high = clopper_pearson(k, n, confidence)
        return cls(int(k), int(n), float(confidence), low, high)

    def describe(self) -> str:
        """e.g. '5.0 % (5/100; 95 % interval 1.6–11.3 %)'."""
        return (
            f"{self.rate:.1%} ({self.k}/{self.n}; {self.confidence:.0%} interval "
            f"{100 * self.low:.1f}–{100 * self.high:.1f} %)"
        )
