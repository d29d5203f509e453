"""Sensitivity without retraining: what each threshold would have given on the calibration scores,
and the threshold override recorded beside the bundle.

The scores come from the bundle's calibration report (report/scores.csv: one row per scored image,
labelled normal or anomalous), or, for a bundle without its report, from the score statistics in
bundle.json (quantiles: the rates are then approximate and said to be). The override is a JSON file
beside the bundle folder (`<bundle>.threshold.json`, or web.override): the threshold in force and
the history of changes (who, when, old, new, the rates it implies). The bundle and its hashes are
never touched; the override names the model's sha256 and is ignored, with a warning, for another model.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from edge.binomial import wilson
from edge.bundle import Bundle, ScoreStats
from edge.errors import EdgeError

SCORES_CSV = Path("report") / "scores.csv"
CURVE_POINTS = 400  # scores per class sent to the page (its slider computes the rates from them)


@dataclass
class CalibrationScores:
    normal: np.ndarray  # sorted
    anomalous: np.ndarray  # sorted; empty when calibration had no anomalous images
    source: str  # where they were read
    exact: bool  # False: reconstructed from quantiles

    @property
    def range(self) -> tuple[float, float]:
        both = np.concatenate([self.normal, self.anomalous])
        return float(both.min()), float(both.max())

    def rates(self, threshold: float) -> dict:
        """The device's rule (strictly above is flagged) applied to the calibration scores.

        With the 95 % Wilson interval of the false-alarm rate (the page draws the same one): a rate
        measured on a few hundred good images is an estimate.
        """
        far = _share_over(self.normal, threshold)
        n = int(self.normal.size)
        return {
            "false_alarm_rate": far,
            "false_alarm_interval": list(wilson(round(far * n), n)) if n else None,
            "recall": _share_over(self.anomalous, threshold) if self.anomalous.size else None,
        }

    def to_dict(self) -> dict:
        lo, hi = self.range
        return {
            "source": self.source,
            "exact": self.exact,
            "range": [lo, hi],
            "normal_count": int(self.normal.size),
            "anomalous_count": int(self.anomalous.size),
            "normal": _thin(self.normal),
            "anomalous": _thin(self.anomalous),
        }


def _share_over(sorted_scores: np.ndarray, threshold: float) -> float:
    over = sorted_scores.size - np.searchsorted(sorted_scores, threshold, side="right")
    return float(over / max(sorted_scores.size, 1))


def _thin(sorted_scores: np.ndarray) -> list[float]:
    if sorted_scores.size > CURVE_POINTS:
        sorted_scores = sorted_scores[np.linspace(0, sorted_scores.size - 1, CURVE_POINTS).round().astype(int)]
    return [float(f"{s:.6g}") for s in sorted_scores]


def _from_stats(stats: ScoreStats, points: int = 200) -> np.ndarray:
    """An approximate sorted sample from min, quantiles and max (piecewise linear between them)."""
    known = sorted({0.0: stats.min, 1.0: stats.max, **{float(q): v for q, v in stats.quantiles.items()}}.items())
    probs, values = zip(*known, strict=True)
    return np.interp(np.linspace(0, 1, min(points, max(stats.count, 2))), probs, values)


def scores_csv(variant: Optional[str] = None) -> Path:
    """report/scores.csv; a variant model's own calibration scores (edge.bundle.VariantCalibration):
    report/scores.<variant>.csv."""
    return SCORES_CSV if variant is None else SCORES_CSV.with_name(f"scores.{variant}.csv")


def calibration_scores(bundle: Bundle) -> Optional[CalibrationScores]:
    """The bundle's calibration scores (of the model in force: Bundle.variant), or None when it keeps none."""
    relative = scores_csv(bundle.variant)
    path = bundle.path / relative
    if path.is_file():
        normal, anomalous = [], []
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                (normal if row.get("label") == "normal" else anomalous).append(float(row["score"]))
        if normal:
            return CalibrationScores(np.sort(normal), np.sort(anomalous), str(relative), True)
    m = bundle.manifest
    if m.normal_scores is None:
        return None
    anomalous = _from_stats(m.anomalous_scores) if m.anomalous_scores is not None else np.empty(0)
    return CalibrationScores(_from_stats(m.normal_scores), anomalous, "bundle.json quantiles", False)


class ThresholdOutOfRange(ValueError):
    def __init__(self, value: float, low: float, high: float):
        super().__init__(
            f"threshold {value:.6g} is outside the calibration scores' range [{low:.6g}, {high:.6g}]: "
            "nothing there says what it would do"
        )
        self.range = (low, high)


def check_threshold(scores: Optional[CalibrationScores], value: float) -> None:
    """A threshold the calibration scores can speak for; ValueError (or its ThresholdOutOfRange) if not."""
    if not math.isfinite(value):
        raise ValueError(f"threshold {value!r} is not a finite number")
    if scores is None:
        raise ValueError("this bundle keeps no calibration scores (report/scores.csv or bundle.json statistics)")
    low, high = scores.range
    if not low <= value <= high:
        raise ThresholdOutOfRange(value, low, high)


# -- the override file ---------------------------------------------------------------------------


def override_path(bundle: Bundle, configured: Optional[Path] = None) -> Path:
    """web.override, or `<bundle folder>.threshold.json` beside the bundle folder."""
    if configured is not None:
        return Path(configured)
    folder = bundle.path.resolve()
    return folder.parent / f"{folder.name}.threshold.json"


def load_override(bundle: Bundle, path: Path) -> Optional[dict]:
    """The override recorded for this bundle's model, or None (no file, or one made for another model)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        value = float(data["threshold"])
        made_for = str(data["model_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgeError(f"cannot read the threshold override {path} ({exc}); fix or delete it") from None
    if made_for != bundle.model_sha256 or not math.isfinite(value):
        return None
    return data


def write_override(
    bundle: Bundle, path: Path, old: float, new: float, who: str, scores: Optional[CalibrationScores]
) -> dict:
    """Append one change to the override's history and make `new` the threshold in force (atomically)."""
    previous = load_override(bundle, path) or {}
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "who": who,
        "old": old,
        "new": new,
        **(scores.rates(new) if scores is not None else {}),
        "rates_from": scores.source if scores is not None else None,
    }
    data = {
        "bundle": str(bundle.path.resolve()),
        "model_sha256": bundle.model_sha256,  # the model that runs: an ONNX model's override is its own
        "calibrated": {"value": bundle.threshold, "method": bundle.manifest.threshold.method},
        "threshold": new,
        "history": [*previous.get("history", []), entry],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return entry


class ThresholdControl:
    """The threshold in force: read by the page, moved by it (recorded first, then applied to the loop)."""

    def __init__(self, bundle: Bundle, path: Path, get, apply, scores: Optional[CalibrationScores] = None):
        self.bundle, self.path = bundle, path
        self._get, self._apply = get, apply  # the live holder the loop reads each frame (edge.decide)
        self.scores = scores if scores is not None else calibration_scores(bundle)

    @property
    def value(self) -> float:
        return float(self._get())

    def state(self) -> dict:
        record = load_override(self.bundle, self.path)
        return {
            "threshold": self.value,
            "calibrated": {"value": self.bundle.threshold, "method": self.bundle.manifest.threshold.method},
            "rates": self.scores.rates(self.value) if self.scores is not None else None,
            "scores": self.scores.to_dict() if self.scores is not None else None,
            "override": {"file": str(self.path), "last": (record.get("history") or [None])[-1]} if record else None,
        }

    def set(self, value: float, who: str) -> dict:
        """Check, record beside the bundle, apply; the recorded change. ValueError for a bad value."""
        check_threshold(self.scores, value)
        entry = write_override(self.bundle, self.path, self.value, value, who, self.scores)
        self._apply(value)
        return entry


def apply_recorded_override(pipeline, configured: Optional[Path], log) -> Optional[float]:
    """At start: the override recorded beside the bundle (by an earlier run's page) becomes the threshold."""
    bundle = pipeline.bundle
    path = override_path(bundle, configured)
    record = load_override(bundle, path)
    if record is None:
        if path.is_file():
            log(f"warning: threshold override {path} was recorded for another model; ignored")
        return None
    value = float(record["threshold"])
    last = (record.get("history") or [{}])[-1]
    pipeline.threshold.set(value)
    pipeline.metrics.threshold = value
    log(
        f"threshold {value:.6g} from the override {path} (calibrated {bundle.threshold:.6g}; "
        f"set by {last.get('who', '?')} at {last.get('time', '?')})"
    )
    return value
