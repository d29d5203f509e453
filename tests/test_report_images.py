"""The calibration report shows the worst images, not just their names: embedded JPEG thumbnails.

A real calibration (conftest's int8_model on synthetic_mvtec, method f1) writes the page; the
test reads index.html as a browser would get it: data URIs that decode to images.
"""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration import calibrate
from calibration.report import THUMB_SIDE, WORST_SHOWN, ReportData, write_report
from edge.bundle import load_bundle
from edge.decide import flagged

NORMAL_TITLE = "Normal images scoring highest"
ANOMALOUS_TITLE = "Anomalous images scoring lowest"


@pytest.fixture(scope="module")
def bundle(int8_model, synthetic_mvtec, tmp_path_factory):
    return calibrate(
        int8_model,
        synthetic_mvtec,
        None,
        "f1",
        tmp_path_factory.mktemp("b") / "bundle",
        progress=False,
        log=lambda m: None,
    )


def section(page: str, title: str) -> str:
    """The HTML from the <h2> starting with `title` to the next <h2> (or the end)."""
    start = page.index(f"<h2>{title}")
    end = page.find("<h2>", start + 1)
    return page[start : end if end > 0 else len(page)]


def rows(html_part: str) -> list[str]:
    return re.findall(r"<tr>(<td>.*?)</tr>", html_part, re.S)


def thumbnails(html_part: str) -> list[tuple[str, np.ndarray]]:
    """(alt text, decoded image) of every embedded JPEG."""
    found = re.findall(r'<img class="thumb" alt="([^"]*)" src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html_part)
    return [
        (alt, cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_UNCHANGED))
        for alt, data in found
    ]


def csv_scores(bundle_path: Path, label: str) -> list[tuple[str, float]]:
    with open(bundle_path / "report" / "scores.csv", newline="") as f:
        return [(Path(r["file"]).name, float(r["score"])) for r in csv.DictReader(f) if r["label"] == label]


@pytest.mark.parametrize(
    "label, title, highest", [("normal", NORMAL_TITLE, True), ("anomalous", ANOMALOUS_TITLE, False)]
)
def test_worst_images_are_embedded_with_their_anomaly_maps(bundle, label, title, highest):
    page = (bundle.path / "report" / "index.html").read_text()
    part = section(page, title)
    scored = sorted(csv_scores(bundle.path, label), key=lambda fs: fs[1], reverse=highest)
    worst = scored[:WORST_SHOWN]  # 10 of each in synthetic_mvtec: the cap applies
    assert len(scored) > WORST_SHOWN
    images = thumbnails(part)
    # per row: the image, then its anomaly map over it
    assert len(images) == 2 * len(worst)
    assert [alt for alt, _ in images[::2]] == [name for name, _ in worst]
    assert [alt for alt, _ in images[1::2]] == [f"anomaly map of {name}" for name, _ in worst]
    for _, image in images:
        assert image is not None and image.shape[:2] == (64, 64)  # small images stay at their size
    # the overlay is coloured (heatmap), the grey tile itself is not
    image, overlay = images[0][1], images[1][1]
    assert overlay.ndim == 3 and np.ptp(overlay.astype(int), axis=2).max() > 40
    # name, score, threshold and the device's verdict on each row
    t = bundle.threshold
    for row, (name, score) in zip(rows(part), worst, strict=True):
        assert name in row and f"<td>{score:.6g}</td>" in row and f"<td>{t:.6g}</td>" in row
        assert row.endswith(f"<td>{'yes' if flagged(score, t) else 'no'}</td>")


def test_large_images_are_shrunk_and_the_page_stays_small(bundle, tmp_path):
    """Big photos, 30 normal: only WORST_SHOWN per side, each at most THUMB_SIDE px; no map: no overlay."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(30):
        path = tmp_path / f"tile_{i:02d}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 255, (900, 1200), dtype=np.uint8))
        paths.append(path)
    scores = np.linspace(0.0, 1.0, 30)
    manifest = load_bundle(bundle.path).manifest
    data = ReportData(
        manifest=manifest,
        normal_paths=paths,
        normal_scores=scores,
        anomalous_paths=[],
        anomalous_scores=np.zeros(0),
        anomalous_groups=[],
        score_label="score",
        sources={},
        skipped={},
        notes=[],
    )
    page = write_report(data, tmp_path / "report").read_text()
    images = thumbnails(section(page, NORMAL_TITLE))
    assert [alt for alt, _ in images] == [f"tile_{i:02d}.jpg" for i in range(29, 29 - WORST_SHOWN, -1)]
    assert all(image.shape[:2] == (THUMB_SIDE * 3 // 4, THUMB_SIDE) for _, image in images)
    assert ANOMALOUS_TITLE not in page
    assert len(page.encode()) < 400_000  # noise is the worst case for JPEG; real tiles are smaller
