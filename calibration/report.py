"""The calibration report inside the bundle: BUNDLE/report/.

- scores.png   histogram of normal vs anomalous scores with the threshold line
- roc.png      ROC curve with the operating point (only when anomalous images were given)
- scores.csv   file, label, group, score, over_threshold (one row per scored image)
- index.html   one self-contained page: the figures embedded as base64, the numbers in tables,
               and the normal images scoring highest / anomalous images scoring lowest, shown as
               small JPEG thumbnails (the image and its anomaly map over it) with score and threshold
"""

from __future__ import annotations

import base64
import csv
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from calibration.binary_metrics import roc_curve
from edge.annotate import heatmap_overlay
from edge.bundle import Manifest, ScoreStats
from edge.decide import flagged
from edge.imaging import read_image
from edge.preprocess import Preprocessing
from edge.tiling import GeometryConfig


@dataclass
class ReportData:
    manifest: Manifest
    normal_paths: list[Path]
    normal_scores: np.ndarray
    anomalous_paths: list[Path]
    anomalous_scores: np.ndarray
    anomalous_groups: list[str]
    score_label: str
    sources: dict[str, str]  # what was read from where, for the page
    skipped: dict[str, int]
    notes: list[str]
    # image as read -> its anomaly map over the frame, for the worst images' thumbnails (None: no map)
    frame_map: Optional[Callable[[np.ndarray], np.ndarray]] = None

    @property
    def labelled(self) -> bool:
        return len(self.anomalous_scores) > 0


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_histogram(data: ReportData, path: Path) -> Path:
    plt = _pyplot()
    threshold = data.manifest.threshold
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    everything = np.concatenate([data.normal_scores, data.anomalous_scores, [threshold.value]])
    lo, hi = float(everything.min()), float(everything.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 41)
    ax.hist(data.normal_scores, bins=bins, alpha=0.6, color="tab:green", label=f"normal ({len(data.normal_scores)})")
    if data.labelled:
        ax.hist(
            data.anomalous_scores,
            bins=bins,
            alpha=0.6,
            color="tab:red",
            label=f"anomalous ({len(data.anomalous_scores)})",
        )
    ax.axvline(
        threshold.value, color="black", linestyle="--", label=f"threshold {threshold.value:.4g} ({threshold.method})"
    )
    ax.set_xlabel(data.score_label)
    ax.set_ylabel("images")
    ax.set_title("Calibration scores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_roc(data: ReportData, path: Path) -> Path:
    plt = _pyplot()
    labels = np.concatenate([np.zeros(len(data.normal_scores), int), np.ones(len(data.anomalous_scores), int)])
    scores = np.concatenate([data.normal_scores, data.anomalous_scores])
    fpr, tpr = roc_curve(labels, scores)
    t = data.manifest.threshold.value
    op_fpr = float(np.mean(flagged(data.normal_scores, t)))
    op_tpr = float(np.mean(flagged(data.anomalous_scores, t)))
    auroc = (data.manifest.metrics or {}).get("image_auroc", float("nan"))
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ax.plot(fpr, tpr, color="tab:blue", label=f"ROC (AUROC {auroc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.plot([op_fpr], [op_tpr], "o", color="black", label=f"threshold: FPR {op_fpr:.3f}, TPR {op_tpr:.3f}")
    ax.set_xlabel("false-positive rate (normal flagged)")
    ax.set_ylabel("true-positive rate (anomalous flagged)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_csv(data: ReportData, path: Path) -> Path:
    normal, anomalous = (data.normal_paths, data.normal_scores), (data.anomalous_paths, data.anomalous_scores)
    return write_scores_csv(data.manifest.threshold.value, normal, anomalous, data.anomalous_groups, path)


def write_scores_csv(
    threshold: float,
    normal: tuple[list[Path], np.ndarray],
    anomalous: tuple[list[Path], np.ndarray],
    anomalous_groups: list[str],
    path: Path,
) -> Path:
    """scores.csv: one row per scored image; `normal` and `anomalous` are (paths, scores)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "group", "score", "over_threshold"])
        for p, s in zip(*normal, strict=True):
            writer.writerow([str(p), "normal", "good", repr(float(s)), int(flagged(s, threshold))])
        for p, g, s in zip(anomalous[0], anomalous_groups, anomalous[1], strict=True):
            writer.writerow([str(p), "anomalous", g, repr(float(s)), int(flagged(s, threshold))])
    return path


def _img(path: Path, alt: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _rows(pairs) -> str:
    return "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _stats_table(name: str, stats: Optional[ScoreStats]) -> str:
    if stats is None:
        return ""
    pairs = [
        ("count", stats.count),
        ("mean", _fmt(stats.mean)),
        ("std", _fmt(stats.std)),
        ("min", _fmt(stats.min)),
        ("max", _fmt(stats.max)),
    ]
    pairs += [(f"quantile {q}", _fmt(v)) for q, v in stats.quantiles.items()]
    return f"<h2>{html.escape(name)} scores</h2><table>{_rows(pairs)}</table>"


WORST_SHOWN = 8  # per side: enough to see a pattern, few enough to keep index.html small
THUMB_SIDE = 160  # px, longest side of a thumbnail


@dataclass
class _Shown:
    """One of the worst images, read back and shrunk for its thumbnails."""

    path: Path
    group: str
    score: float
    thumb: Optional[np.ndarray]  # None: unreadable now
    heat: Optional[np.ndarray] = None  # its anomaly map at thumbnail size; None without frame_map
    heat_max: float = 0.0  # of the full-size map, for the page's shared colour scale


def _worst(paths, scores, groups, highest: bool, frame_map, n: int = WORST_SHOWN) -> list[_Shown]:
    """The n highest (or lowest) scoring images, read again, shrunk at once (frames can be 4K)."""
    order = np.argsort(scores, kind="stable")
    order = order[::-1][:n] if highest else order[:n]
    shown = []
    for i in order:
        item = _Shown(Path(paths[i]), groups[i], float(scores[i]), None)
        image = read_image(paths[i])
        if image is not None:
            item.thumb = _thumbnail(image)
            if frame_map is not None:
                heat = frame_map(image)
                size = (item.thumb.shape[1], item.thumb.shape[0])
                item.heat, item.heat_max = cv2.resize(heat, size, interpolation=cv2.INTER_AREA), float(heat.max())
        shown.append(item)
    return shown


def _thumbnail(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(1.0, THUMB_SIDE / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA) if s < 1.0 else image


def _jpeg(image: np.ndarray, alt: str) -> str:
    # JPEG: photos and heatmaps come out several times smaller than as PNG; the figures stay PNG
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        return ""
    data = base64.b64encode(encoded.tobytes()).decode("ascii")
    return f'<img class="thumb" alt="{html.escape(alt)}" src="data:image/jpeg;base64,{data}">'


def _thumbs(item: _Shown, scale: Optional[float]) -> str:
    """Table cells: the image, and its anomaly map over it (one colour scale for the whole page)."""
    if item.thumb is None:
        return '<td colspan="2">(unreadable now)</td>'
    overlay = ""
    if item.heat is not None:
        overlay = _jpeg(heatmap_overlay(item.thumb, item.heat, scale), f"anomaly map of {item.path.name}")
    return f"<td>{_jpeg(item.thumb, item.path.name)}</td><td>{overlay}</td>"


def _worst_table(title: str, items: list[_Shown], threshold: float, scale: Optional[float]) -> str:
    if not items:
        return ""
    rows = "\n".join(
        f"<tr>{_thumbs(it, scale)}<td>{html.escape(it.path.name)}<br><small>{html.escape(str(it.path))}</small></td>"
        f"<td>{html.escape(it.group)}</td><td>{it.score:.6g}</td><td>{threshold:.6g}</td>"
        f"<td>{'yes' if flagged(it.score, threshold) else 'no'}</td></tr>"
        for it in items
    )
    return (
        f"<h2>{html.escape(title)}</h2><table><tr><th>image</th><th>anomaly map</th><th>file</th><th>group</th>"
        f"<th>score</th><th>threshold</th><th>flagged (score &gt; threshold)</th></tr>{rows}</table>"
    )


def _worst_sections(data: ReportData, threshold: float) -> str:
    normal = _worst(data.normal_paths, data.normal_scores, ["good"] * len(data.normal_paths), True, data.frame_map)
    anomalous = _worst(data.anomalous_paths, data.anomalous_scores, data.anomalous_groups, False, data.frame_map)
    peaks = [it.heat_max for it in normal + anomalous if it.heat is not None]
    # one scale (red = the highest value shown) so a false alarm and a miss can be compared
    scale = max(peaks) if peaks else None
    return "\n".join(
        [
            _worst_table(
                "Normal images scoring highest (false alarms, or the nearest to one)", normal, threshold, scale
            ),
            _worst_table(
                "Anomalous images scoring lowest (misses, or the nearest to one)", anomalous, threshold, scale
            ),
        ]
    )


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f4f4f4;font-weight:600}img{max-width:100%;margin:.5em 1em .5em 0}.note{color:#8a5300}
img.thumb{margin:0;display:block}td small{color:#666}"""


def describe_geometry(preprocessing: Preprocessing, geometry: Optional[GeometryConfig]) -> str:
    """One line: what part of the frame is scored and how (for the log and the report)."""
    roi = preprocessing.roi
    parts = [f"roi {','.join(map(str, roi))}" if roi else "whole frame"]
    tiling = geometry.tiling if geometry is not None else None
    if tiling is None:
        parts.append(f"resized to {preprocessing.width}x{preprocessing.height}")
    else:
        size = (
            f"{tiling.tile[0]}x{tiling.tile[1]}"
            if tiling.tile
            else f"{preprocessing.width}x{preprocessing.height} (model size)"
        )
        parts.append(f"tiles {size}, overlap {tiling.overlap:g}")
    if geometry is not None and geometry.mask is not None:
        parts.append(f"mask {geometry.mask}")
    return ", ".join(parts)


def write_html(data: ReportData, path: Path, figures: list[Path]) -> Path:
    m = data.manifest
    t = m.threshold.value
    head = [
        ("model", f"{m.model.file} ({m.model.kind}, {m.model.quantization})"),
        ("model sha256", m.model.sha256),
        ("input", f"{m.model.input.shape} {m.model.input.dtype}"),
        (
            "preprocessing",
            f"{m.preprocessing.width}x{m.preprocessing.height} {m.preprocessing.color}"
            + (f", roi {m.preprocessing.roi}" if m.preprocessing.roi else ""),
        ),
        ("frame geometry", describe_geometry(m.preprocessing, m.geometry)),
        (
            "score",
            m.describe_score()
            if m.model.kind == "classifier"
            else m.score.kind
            + (f" (sigma {m.score.blur_sigma:g})" if m.score.kind == "max_blur" else "")
            + (f" (top {m.score.topk:g})" if m.score.kind == "topk_mean" else ""),
        ),
        ("threshold", f"{t:.6g}"),
        ("method", m.threshold.method),
        (
            "normal flagged at this threshold",
            f"{int(np.sum(flagged(data.normal_scores, t)))} of {len(data.normal_scores)}",
        ),
    ]
    head += [(k, v) for k, v in data.sources.items()]
    head += [(f"skipped ({k}, unreadable or truncated)", v) for k, v in data.skipped.items() if v]
    head += [("created", m.created), ("edge-inspect", m.edge_inspect_version)]
    metrics_html = ""
    if m.metrics:
        flat = [(k, _fmt(v)) for k, v in m.metrics.items() if k != "per_group"]
        metrics_html = f"<h2>Metrics at the threshold (anomalous = positive)</h2><table>{_rows(flat)}</table>"
        if "per_group" in m.metrics:
            rows = "\n".join(
                f"<tr><td>{html.escape(g)}</td><td>{v['count']}</td><td>{v['recall']:.4g}</td><td>{v['image_auroc']:.4g}</td></tr>"
                for g, v in m.metrics["per_group"].items()
            )
            metrics_html += (
                "<h2>Per anomalous folder</h2><table><tr><th>group</th><th>images</th><th>recall</th>"
                f"<th>AUROC vs normal</th></tr>{rows}</table>"
            )
    notes = "".join(f'<p class="note">note: {html.escape(n)}</p>' for n in data.notes)
    body = "\n".join(
        [
            f"<h1>Calibration report: {html.escape(m.model.file)}</h1>",
            notes,
            f"<table>{_rows(head)}</table>",
            "".join(_img(f, f.stem) for f in figures),
            metrics_html,
            _stats_table("Normal", m.normal_scores),
            _stats_table("Anomalous", m.anomalous_scores),
            _worst_sections(data, t),
        ]
    )
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Calibration report: '
        f"{html.escape(m.model.file)}</title><style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def write_report(data: ReportData, folder: Path) -> Path:
    """Write every report file into `folder` (created); returns index.html's path."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = [plot_histogram(data, folder / "scores.png")]
    if data.labelled:
        figures.append(plot_roc(data, folder / "roc.png"))
    write_csv(data, folder / "scores.csv")
    return write_html(data, folder / "index.html", figures)
