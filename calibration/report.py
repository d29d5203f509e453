"""The calibration report inside the bundle: BUNDLE/report/.

- scores.png   histogram of normal vs anomalous scores with the threshold line
- roc.png      ROC curve with the operating point (only when anomalous images were given)
- scores.csv   file, label, group, score, over_threshold (one row per scored image)
- index.html   one self-contained page: the figures embedded as base64, the numbers in tables,
               and the normal images scoring highest / anomalous images scoring lowest
"""

from __future__ import annotations

import base64
import csv
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edge.bundle import Manifest, ScoreStats
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
        ax.hist(data.anomalous_scores, bins=bins, alpha=0.6, color="tab:red", label=f"anomalous ({len(data.anomalous_scores)})")
    ax.axvline(threshold.value, color="black", linestyle="--", label=f"threshold {threshold.value:.4g} ({threshold.method})")
    ax.set_xlabel(data.score_label)
    ax.set_ylabel("images")
    ax.set_title("Calibration scores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_roc(data: ReportData, path: Path) -> Path:
    from sklearn.metrics import roc_curve

    plt = _pyplot()
    labels = np.concatenate([np.zeros(len(data.normal_scores), int), np.ones(len(data.anomalous_scores), int)])
    scores = np.concatenate([data.normal_scores, data.anomalous_scores])
    fpr, tpr, _ = roc_curve(labels, scores)
    t = data.manifest.threshold.value
    op_fpr = float(np.mean(data.normal_scores > t))
    op_tpr = float(np.mean(data.anomalous_scores > t))
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
    t = data.manifest.threshold.value
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "group", "score", "over_threshold"])
        for p, s in zip(data.normal_paths, data.normal_scores):
            writer.writerow([str(p), "normal", "good", repr(float(s)), int(s > t)])
        for p, g, s in zip(data.anomalous_paths, data.anomalous_groups, data.anomalous_scores):
            writer.writerow([str(p), "anomalous", g, repr(float(s)), int(s > t)])
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
    pairs = [("count", stats.count), ("mean", _fmt(stats.mean)), ("std", _fmt(stats.std)),
             ("min", _fmt(stats.min)), ("max", _fmt(stats.max))]
    pairs += [(f"quantile {q}", _fmt(v)) for q, v in stats.quantiles.items()]
    return f"<h2>{html.escape(name)} scores</h2><table>{_rows(pairs)}</table>"


def _extremes(title: str, paths, scores, groups, highest: bool, threshold: float, n: int = 10) -> str:
    if len(scores) == 0:
        return ""
    order = np.argsort(scores)
    order = order[::-1][:n] if highest else order[:n]
    rows = "\n".join(
        f"<tr><td>{html.escape(str(paths[i]))}</td><td>{html.escape(groups[i])}</td>"
        f"<td>{scores[i]:.6g}</td><td>{'yes' if scores[i] > threshold else 'no'}</td></tr>"
        for i in order
    )
    return (f"<h2>{html.escape(title)}</h2><table><tr><th>file</th><th>group</th><th>score</th>"
            f"<th>over threshold</th></tr>{rows}</table>")


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f4f4f4;font-weight:600}img{max-width:100%;margin:.5em 1em .5em 0}.note{color:#8a5300}"""


def describe_geometry(preprocessing: Preprocessing, geometry: Optional[GeometryConfig]) -> str:
    """One line: what part of the frame is scored and how (for the log and the report)."""
    roi = preprocessing.roi
    parts = [f"roi {','.join(map(str, roi))}" if roi else "whole frame"]
    tiling = geometry.tiling if geometry is not None else None
    if tiling is None:
        parts.append(f"resized to {preprocessing.width}x{preprocessing.height}")
    else:
        size = f"{tiling.tile[0]}x{tiling.tile[1]}" if tiling.tile else f"{preprocessing.width}x{preprocessing.height} (model size)"
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
        ("preprocessing", f"{m.preprocessing.width}x{m.preprocessing.height} {m.preprocessing.color}"
                          + (f", roi {m.preprocessing.roi}" if m.preprocessing.roi else "")),
        ("frame geometry", describe_geometry(m.preprocessing, m.geometry)),
        ("score", m.score.kind + (f" (sigma {m.score.blur_sigma:g})" if m.score.kind == "max_blur" else "")
                  + (f" (top {m.score.topk:g})" if m.score.kind == "topk_mean" else "")),
        ("threshold", f"{t:.6g}"),
        ("method", m.threshold.method),
        ("normal flagged at this threshold", f"{int(np.sum(data.normal_scores > t))} of {len(data.normal_scores)}"),
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
            metrics_html += ("<h2>Per anomalous folder</h2><table><tr><th>group</th><th>images</th><th>recall</th>"
                             f"<th>AUROC vs normal</th></tr>{rows}</table>")
    notes = "".join(f'<p class="note">note: {html.escape(n)}</p>' for n in data.notes)
    body = "\n".join([
        f"<h1>Calibration report: {html.escape(m.model.file)}</h1>",
        notes,
        f"<table>{_rows(head)}</table>",
        "".join(_img(f, f.stem) for f in figures),
        metrics_html,
        _stats_table("Normal", m.normal_scores),
        _stats_table("Anomalous", m.anomalous_scores),
        _extremes("Normal images scoring highest (possible false alarms)", data.normal_paths, data.normal_scores,
                  ["good"] * len(data.normal_paths), True, t),
        _extremes("Anomalous images scoring lowest (possible misses)", data.anomalous_paths, data.anomalous_scores,
                  data.anomalous_groups, False, t),
    ])
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Calibration report: "
            f"{html.escape(m.model.file)}</title><style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")
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
