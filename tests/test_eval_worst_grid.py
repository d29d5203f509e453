"""`edge eval`'s worst-miss grid: rows filed by the device's own rule, and a title clear of the rows.

The grid is drawn for a hand-made result over conftest's synthetic_mvtec images (no model needed:
the scores are chosen so that one good and one defective image score exactly the threshold).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# `edge eval`'s grid is desktop code (scikit-learn, matplotlib): skipped on a device-only install.
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from calibration.evaluate import EvalResult, load_eval_set, outcome, worst_grid_figure, write_worst_grid
from edge.decide import Decider

THRESHOLD = 0.5


def test_a_score_at_the_threshold_is_filed_as_the_device_decides():
    at = THRESHOLD
    device_flags = Decider(THRESHOLD).update(at)
    assert device_flags is False  # the device: flagged only when strictly above
    assert outcome(False, at, THRESHOLD) == "passed"  # a good image there is no false alarm
    assert outcome(True, at, THRESHOLD) == "missed defect"
    above = np.nextafter(THRESHOLD, 1.0)
    assert Decider(THRESHOLD).update(above) is True
    assert outcome(False, above, THRESHOLD) == "false alarm"
    assert outcome(True, above, THRESHOLD) == "found"


@pytest.fixture()
def result(synthetic_mvtec) -> EvalResult:
    """10 good + 10 defective images; the top good one and the lowest defect score exactly THRESHOLD."""
    data = load_eval_set(synthetic_mvtec)
    labels = np.array([g != "good" for g in data.groups])
    scores = np.zeros(len(labels))
    scores[labels] = np.linspace(THRESHOLD, 0.9, labels.sum())
    scores[~labels] = np.linspace(0.1, THRESHOLD, (~labels).sum())
    rng = np.random.default_rng(0)
    return EvalResult(
        bundle=Path("bundle"),
        name="bundle",
        kind="autoencoder",
        quantization="int8",
        score="mean",
        threshold=THRESHOLD,
        model_bytes=0,
        ms_per_image=0.0,
        files=data.files,
        groups=data.groups,
        scores=scores,
        image_auroc=1.0,
        pixel_auroc=1.0,
        threshold_metrics={},
        per_defect={},
        _views={"maps": [rng.random((16, 16)).astype(np.float32) for _ in data.files]},
    )


def _row_titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes[::3]]


def test_grid_rows_say_what_the_device_does_at_the_threshold(result):
    import matplotlib.pyplot as plt

    fig = worst_grid_figure(result, 3)
    titles = _row_titles(fig)
    plt.close(fig)
    assert len(titles) == 6
    # worst defect first (score 0.5 = threshold: missed), worst good image first (0.5: not an alarm)
    assert titles[0].startswith("missed defect: defect/") and "score 0.5 ≤ threshold 0.5" in titles[0]
    assert titles[1].startswith("found: defect/") and "> threshold 0.5" in titles[1]
    assert titles[3].startswith("passed: good/") and "score 0.5 ≤ threshold 0.5" in titles[3]
    assert not any("false alarm" in t for t in titles)


def test_grid_title_does_not_overlap_the_first_row(result, tmp_path):
    import matplotlib.pyplot as plt

    fig = worst_grid_figure(result)  # the default 6 + 6 rows: the tall grid where tight_layout overlapped
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    top_row = fig.axes[:3]
    for ax in top_row:
        # the axes with its own two-line title above it
        assert not title.overlaps(ax.get_tightbbox(renderer)), ax.get_title()
        assert title.y0 >= ax.get_tightbbox(renderer).y1
    plt.close(fig)
    png = write_worst_grid(result, tmp_path / "grid.png", 2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result.worst_png == png
