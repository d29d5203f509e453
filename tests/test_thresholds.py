"""Threshold methods and metrics on known score arrays: exact values, the device's strict > rule."""

from __future__ import annotations

import numpy as np
import pytest

# Threshold search and metrics are desktop code (scikit-learn): skipped on a device-only install.
pytest.importorskip("sklearn")

from calibration.metrics import detection_metrics, false_alarm_rate, score_stats
from calibration.thresholds import Method, compute_threshold, parse_method, resolution_note
from edge.decide import Decider
from edge.errors import EdgeError

ONE_TO_TEN = np.arange(1, 11, dtype=float)


def threshold(method: str, normal, anomalous=None) -> float:
    return compute_threshold(
        parse_method(method), np.asarray(normal, float), None if anomalous is None else np.asarray(anomalous, float)
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("quantile:0.999", Method("quantile", 0.999)),
        (" Quantile:1 ", Method("quantile", 1.0)),
        ("meanstd:3", Method("meanstd", 3.0)),
        ("meanstd:0", Method("meanstd", 0.0)),
        ("fpr:0.001", Method("fpr", 0.001)),
        ("fpr:0", Method("fpr", 0.0)),
        ("f1", Method("f1")),
    ],
)
def test_parse_method_accepts_the_documented_forms(text, expected):
    assert parse_method(text) == expected


def test_method_string_round_trips_for_the_bundle():
    for text in ("quantile:0.999", "meanstd:3", "fpr:0.001", "f1", "meanstd:2.5"):
        assert str(parse_method(text)) == text


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "unknown method"),
        ("median", "unknown method"),
        ("quantile", "needs a number"),
        ("quantile:", "needs a number"),
        ("quantile:abc", "not a number"),
        ("quantile:nan", "finite"),
        ("quantile:0", "(0, 1]"),
        ("quantile:1.5", "(0, 1]"),
        ("meanstd:-1", ">= 0"),
        ("fpr:1", "[0, 1)"),
        ("fpr:-0.1", "[0, 1)"),
        ("f1:0.5", "no parameter"),
    ],
)
def test_bad_method_strings_give_one_clear_line(text, why):
    with pytest.raises(EdgeError) as info:
        parse_method(text)
    message = str(info.value)
    assert why in message
    assert "quantile:0.999 | meanstd:3 | fpr:0.001 | f1" in message
    assert "\n" not in message


def test_quantile_is_numpy_linear_quantile_of_normal_scores():
    assert threshold("quantile:0.9", ONE_TO_TEN) == pytest.approx(9.1, abs=1e-12)
    assert threshold("quantile:0.5", ONE_TO_TEN) == 5.5
    assert threshold("quantile:1", ONE_TO_TEN) == 10.0


def test_quantile_ignores_anomalous_scores():
    assert threshold("quantile:0.9", ONE_TO_TEN, [100.0, 200.0]) == threshold("quantile:0.9", ONE_TO_TEN)


def test_meanstd_is_mean_plus_k_population_std():
    normal = [2, 4, 4, 4, 5, 5, 7, 9]  # mean 5, population std 2
    assert threshold("meanstd:3", normal) == 11.0
    assert threshold("meanstd:0", normal) == 5.0
    assert threshold("meanstd:1.5", normal) == 8.0


@pytest.mark.parametrize(
    "rate, expected", [(0.0, 10.0), (0.05, 10.0), (0.1, 9.0), (0.25, 8.0), (0.5, 5.0), (0.95, 1.0)]
)
def test_fpr_is_the_normal_score_that_keeps_the_rate(rate, expected):
    assert threshold(f"fpr:{rate}", ONE_TO_TEN) == expected


def test_fpr_with_ties_is_the_smallest_threshold_meeting_the_rate():
    normal = np.array([1, 2, 2, 2, 3], float)
    # Allowing 2 false positives: only 3 can be above, any t < 2 would flag four images.
    t = threshold("fpr:0.4", normal)
    assert t == 2.0
    assert false_alarm_rate(normal, t) == 0.2


def test_fpr_exact_boundary_is_not_lost_to_rounding():
    normal = np.arange(1000, dtype=float)
    t = threshold("fpr:0.001", normal)
    assert t == 998.0  # one image (999) may be flagged
    assert false_alarm_rate(normal, t) == 0.001


def test_fpr_threshold_is_minimal_and_met_by_the_device_decider():
    rng = np.random.default_rng(3)
    normal = rng.gamma(2.0, 0.01, 997)
    for rate in (0.001, 0.01, 0.05, 0.2):
        t = threshold(f"fpr:{rate}", normal)
        flagged = sum(Decider(t).update(float(s)) for s in normal)
        assert flagged / len(normal) <= rate
        lower = normal[normal < t].max()  # the next smaller candidate would exceed the rate
        assert false_alarm_rate(normal, lower) > rate


def test_f1_on_separable_scores_lies_midway_in_the_gap():
    assert threshold("f1", [1, 2, 3], [5, 6]) == 4.0


def test_f1_on_overlapping_scores_is_the_optimum():
    # Flagging > 3.25 catches all three anomalous with one false alarm: F1 = 6/7, the best possible.
    normal, anomalous = [1, 2, 3, 4], [3.5, 5, 6]
    t = threshold("f1", normal, anomalous)
    assert t == 3.25
    assert detection_metrics(np.array(normal, float), np.array(anomalous, float), t)["f1"] == pytest.approx(6 / 7)


def test_f1_tie_goes_to_the_higher_threshold():
    # Flag everything (t < 1) and flag > 3.5 both give F1 = 2/3; fewer false alarms wins.
    assert threshold("f1", [2, 3, 5], [1, 4, 6]) == 3.5


def test_f1_can_flag_everything():
    t = threshold("f1", [5], [1, 2, 3, 4, 6])
    assert 0.999 < t < 1.0


def test_f1_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, 200)
    anomalous = rng.normal(1.5, 1, 60)
    t = threshold("f1", normal, anomalous)
    values = np.unique(np.concatenate([normal, anomalous]))
    candidates = np.concatenate([[values[0] - 1], (values[:-1] + values[1:]) / 2])
    best = max(detection_metrics(normal, anomalous, c)["f1"] for c in candidates)
    assert detection_metrics(normal, anomalous, t)["f1"] == pytest.approx(best, abs=1e-12)


def test_f1_without_anomalous_says_what_to_pass():
    for anomalous in (None, []):
        with pytest.raises(EdgeError, match="--anomalous DIR"):
            threshold("f1", ONE_TO_TEN, anomalous)


def test_no_normal_scores_is_an_error():
    with pytest.raises(EdgeError, match="--normal"):
        threshold("quantile:0.9", [])


def test_detection_metrics_use_the_strict_device_rule():
    m = detection_metrics(np.array([1.0, 2.0]), np.array([2.0, 3.0]), 2.0)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 0, 2, 1)
    assert m["precision"] == 1.0 and m["recall"] == 0.5


def test_detection_metrics_known_values():
    m = detection_metrics(np.array([1, 2, 3, 4], float), np.array([3.5, 5, 6], float), 3.25)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 3, 0)
    assert m["precision"] == 0.75
    assert m["recall"] == 1.0
    assert m["f1"] == pytest.approx(6 / 7)
    assert m["false_positive_rate"] == 0.25
    assert m["image_auroc"] == pytest.approx(11 / 12)  # 11 of 12 (anomalous, normal) pairs ordered right
    assert (m["n_normal"], m["n_anomalous"]) == (4, 3)
    assert "per_group" not in m


def test_detection_metrics_per_group_when_several_folders():
    normal = np.array([1, 2, 3], float)
    anomalous = np.array([4, 5, 2.5, 0.5], float)
    m = detection_metrics(normal, anomalous, 3.0, ["crack", "crack", "fray", "fray"])
    assert m["per_group"]["crack"] == {"count": 2, "recall": 1.0, "image_auroc": 1.0}
    assert m["per_group"]["fray"]["recall"] == 0.0
    assert m["per_group"]["fray"]["image_auroc"] == pytest.approx(2 / 6)


def test_score_stats_exact():
    s = score_stats(np.array([2, 4, 4, 4, 5, 5, 7, 9], float))
    assert (s.count, s.mean, s.std, s.min, s.max) == (8, 5.0, 2.0, 2.0, 9.0)
    assert s.quantiles["0.5"] == 4.5
    assert set(s.quantiles) == {"0.01", "0.05", "0.5", "0.95", "0.99", "0.999"}


def test_resolution_note_only_when_the_set_is_too_small():
    assert "100 normal images" in resolution_note(parse_method("quantile:0.999"), 100)
    assert resolution_note(parse_method("quantile:0.999"), 5000) is None
    assert "at least 1000" in resolution_note(parse_method("fpr:0.001"), 300)
    assert resolution_note(parse_method("fpr:0.01"), 300) is None
    assert resolution_note(parse_method("meanstd:3"), 3) is None
