"""How sure a threshold is (issue 19): binomial intervals, fpr-upper, the bundle's threshold record.

The interval math is numpy-free (edge.binomial: calibration runs on devices without scipy); coverage
and the fpr-upper guarantee are checked by simulation with seeded draws, the CLI on conftest's model.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from cli_helpers import run_edge_in_process
from synthetic import write_images

from calibration.thresholds import compute_threshold, parse_method
from edge.binomial import clopper_pearson, images_needed, upper_bound, wilson
from edge.bundle import load_bundle
from edge.errors import EdgeError


def test_clopper_pearson_known_values():
    # 5 of 100: the textbook exact interval (R's binom.test: 0.01643, 0.11283)
    low, high = clopper_pearson(5, 100)
    assert low == pytest.approx(0.016432, abs=1e-5) and high == pytest.approx(0.112835, abs=1e-5)
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0
    # rule of three: 0 of n, one-sided 95 % upper bound ~ 3/n
    assert upper_bound(0, 300) == pytest.approx(1 - 0.05 ** (1 / 300), rel=1e-9)


@pytest.mark.parametrize("n,rate", [(100, 0.05), (300, 0.02), (60, 0.2)])
def test_intervals_cover_the_true_rate_about_as_often_as_promised(n, rate):
    rng = np.random.default_rng(n)
    draws = rng.binomial(n, rate, size=4000)

    def coverage(interval) -> float:
        covers = {int(k): interval(int(k), n)[0] <= rate <= interval(int(k), n)[1] for k in np.unique(draws)}
        return float(np.mean([covers[int(k)] for k in draws]))

    exact, score = coverage(clopper_pearson), coverage(wilson)
    assert 0.94 <= exact <= 0.995  # exact: never below nominal (up to simulation noise), a little above
    assert 0.92 <= score <= 0.98  # Wilson: near nominal on average


def test_fpr_upper_meets_its_target_on_fresh_normal_images_in_most_seeds():
    """The threshold from 200 normal scores, judged on 20 000 fresh ones: rate <= 5 % in >= ~95 % of sets."""
    met, plain_met = 0, 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        calibration, fresh = rng.normal(size=200), rng.normal(size=20_000)
        t = compute_threshold(parse_method("fpr-upper:0.05"), calibration)
        met += np.mean(fresh > t) <= 0.05
        plain_met += np.mean(fresh > compute_threshold(parse_method("fpr:0.05"), calibration)) <= 0.05
    assert met / seeds >= 0.9
    assert plain_met / seeds < 0.8  # the plain estimate overshoots often: why fpr-upper exists


def test_fpr_upper_on_too_few_images_says_how_many_it_needs():
    with pytest.raises(EdgeError, match="at least 59 normal images"):
        compute_threshold(parse_method("fpr-upper:0.05"), np.arange(40.0))
    with pytest.raises(EdgeError, match="confidence"):
        parse_method("fpr-upper:0.05", confidence=1.5)


def test_images_needed_shrinks_with_the_asked_precision():
    wide, narrow = images_needed(0.05, 0.025), images_needed(0.05, 0.01)
    assert narrow > 4 * wide * 0.8  # ~1/h²
    k = round(0.05 * narrow)
    low, high = clopper_pearson(k, narrow)
    assert max(k / narrow - low, high - k / narrow) <= 0.01


def test_calibrate_reports_and_stores_the_intervals(int8_model, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_images(good, 70, seed=31, size=64)
    write_images(bad, 12, seed=32, defective=True, size=64)
    out = tmp_path / "bundle"
    proc = run_edge_in_process(
        "calibrate", int8_model, "--normal", good, "--anomalous", bad, "--method", "fpr-upper:0.05",
        "--out", out, "--no-progress", "--precision", "0.02",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = load_bundle(out).manifest.threshold
    assert record.method == "fpr-upper:0.05" and record.confidence == 0.95
    assert record.false_alarm.n == 70 and record.false_alarm_upper <= 0.05
    assert record.false_alarm.low <= record.false_alarm.rate <= record.false_alarm.high
    assert record.recall.n == 12
    assert record.normal_needed.images == images_needed(0.05, 0.02)
    assert "95% interval" in proc.stderr and f"needs about {record.normal_needed.images} normal images" in proc.stderr
    info = run_edge_in_process("info", out)
    assert info.returncode == 0 and "with 95% confidence" in info.stdout


def test_an_older_bundle_without_the_record_still_loads(int8_model, tmp_path):
    good = tmp_path / "good"
    write_images(good, 25, seed=33, size=64)
    out = tmp_path / "b"
    assert run_edge_in_process("calibrate", int8_model, "--normal", good, "--out", out, "--no-progress").returncode == 0
    manifest = json.loads((out / "bundle.json").read_text())
    manifest["threshold"] = {k: manifest["threshold"][k] for k in ("value", "method")}  # as written before
    (out / "bundle.json").write_text(json.dumps(manifest))
    threshold = load_bundle(out).manifest.threshold
    assert threshold.false_alarm is None and threshold.describe_confidence() == []
    assert math.isfinite(threshold.value)


def test_the_web_dial_gives_the_interval_of_the_rate_it_shows():
    from edge.web.sensitivity import CalibrationScores

    scores = CalibrationScores(np.arange(100.0), np.arange(50.0, 80.0), "test", True)
    rates = scores.rates(94.5)  # 5 of 100 normal scores are above
    assert rates["false_alarm_rate"] == 0.05
    assert rates["false_alarm_interval"] == pytest.approx(list(wilson(5, 100)))
