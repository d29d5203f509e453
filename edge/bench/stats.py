"""Latency statistics of a benchmark, in milliseconds, and the median of repeated measurements."""

from __future__ import annotations

from typing import Callable

import numpy as np

from edge.metrics import Metrics

QUANTILES = (50, 95, 99)


def latency_stats(seconds: np.ndarray) -> dict:
    """Milliseconds: mean, p50, p95, p99, max over the samples."""
    s = np.asarray(seconds, np.float64) * 1000.0
    if s.size == 0:
        return {"n": 0}
    p = np.percentile(s, QUANTILES)
    return {
        "n": int(s.size),
        "mean": round(float(s.mean()), 3),
        "p50": round(float(p[0]), 3),
        "p95": round(float(p[1]), 3),
        "p99": round(float(p[2]), 3),
        "max": round(float(s.max()), 3),
    }


def metric_stats(metrics: Metrics, stage: str) -> dict:
    """p50, p95, p99 and max of one stage as the pipeline's own metrics recorded it, in ms."""
    p = metrics.percentiles(stage, 0, qs=(*QUANTILES, 100))
    if p is None:
        return {"n": 0}
    ms = [round(1000 * float(v), 3) for v in p]
    return {"p50": ms[0], "p95": ms[1], "p99": ms[2], "max": ms[3]}


def median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def pick_median(items: list[dict], key: Callable[[dict], float]) -> dict:
    """The repeat whose `key` is the median one (the lower middle for an even count)."""
    ordered = sorted(items, key=key)
    return ordered[(len(ordered) - 1) // 2]
