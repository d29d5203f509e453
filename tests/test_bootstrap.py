"""Bootstrap intervals of edge eval's figures (calibration.bootstrap): weighted metrics equal the
plain ones on the resampled images, intervals narrow with more images, a paired comparison of a
bundle with itself is within noise. numpy only, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.bootstrap import (
    PixelHistograms,
    bootstrap,
    paired,
    stratified_weights,
    weighted_auroc,
    weighted_recall_at_fpr,
)
from calibration.evaluate import image_auroc, pixel_auroc, recall_at_fpr


def _scores(n_good: int, n_bad: int, seed: int, decimals: int = 1):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_good, int), np.ones(n_bad, int)]
    return labels, np.round(rng.normal(size=labels.size) + 1.2 * labels, decimals)


@pytest.mark.parametrize("seed", range(6))
def test_weighted_metrics_equal_the_metrics_of_the_resampled_images(seed):
    labels, scores = _scores(60 + 10 * seed, 25, seed, decimals=seed % 3)  # ties at 1 decimal
    weights = stratified_weights(labels, 4, seed)
    assert np.all(weights[:, labels == 0].sum(axis=1) == np.sum(labels == 0))  # class counts kept
    for row in np.r_[np.ones((1, labels.size)), weights]:
        idx = np.repeat(np.arange(labels.size), row.astype(int))
        assert weighted_auroc(labels, scores, row[None])[0] == pytest.approx(image_auroc(labels[idx], scores[idx]))
        got = weighted_recall_at_fpr(labels, scores, row[None], 0.05)[0]
        assert got == pytest.approx(recall_at_fpr(labels[idx], scores[idx], 0.05))


def test_binned_pixel_auroc_is_close_to_the_exact_pooled_one():
    rng = np.random.default_rng(3)
    masks = [rng.random((32, 32)) < 0.1 for _ in range(20)] + [np.zeros((32, 32), bool)] * 10
    maps = [m * 0.6 + rng.random((32, 32)) for m in masks]
    binned = PixelHistograms.of(masks, maps, range(30)).auroc(np.ones((1, 30)))[0]
    assert binned == pytest.approx(pixel_auroc(masks, maps), abs=2e-3)


def test_intervals_narrow_with_more_images_and_hold_the_point():
    widths = []
    for n in (40, 160, 640):
        labels, scores = _scores(n, n // 2, seed=n, decimals=6)
        points = {"image_auroc": image_auroc(labels, scores), "recall_at_5pct_fpr": recall_at_fpr(labels, scores, 0.05)}
        b = bootstrap(labels, scores, points, resamples=400, seed=1)
        i = b.intervals["image_auroc"]
        assert i.low <= i.point <= i.high
        widths.append(i.high - i.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] > 2.5  # ~ sqrt(16) = 4 in theory


def test_a_bundle_against_itself_is_within_noise_and_a_better_one_is_not():
    labels, scores = _scores(150, 75, seed=5, decimals=6)
    points = {"image_auroc": image_auroc(labels, scores), "recall_at_5pct_fpr": recall_at_fpr(labels, scores, 0.05)}
    same = paired(labels, scores, scores.copy(), points, points, resamples=300)
    assert same.within_noise("image_auroc") and same.within_noise("recall_at_5pct_fpr")
    better = scores + 1.5 * labels
    points_b = {"image_auroc": image_auroc(labels, better), "recall_at_5pct_fpr": recall_at_fpr(labels, better, 0.05)}
    diff = paired(labels, scores, better, points, points_b, resamples=300)
    assert diff.within_noise("image_auroc") is False and diff.intervals["image_auroc"].low > 0
