"""What a newcomer tripped over (issue 11): snapshot labels, help pages, `edge events`, failed runs, export progress."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_edge, run_edge_in_process
from sinks_helpers import make_alert  # tests/ is on sys.path

from edge.annotate import annotate, heatmap_overlay
from edge.sinks.sqlite_store import SqliteSink

ROOT = Path(__file__).resolve().parent.parent
DEMO_BUNDLE = ROOT / "edge" / "demo" / "bundle"
DEMO_IMAGES = ROOT / "edge" / "demo" / "images"


@contextlib.contextmanager
def _environment(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def edge(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`edge ARGS` in this interpreter (what a help page or an error line says does not depend on the
    process; run_edge's subprocesses are kept for what does), with one wide, plain help page whatever
    the terminal."""
    with _environment(COLUMNS="150", TERM="dumb"):
        return run_edge_in_process(*args, cwd=cwd)


def words(text: str) -> str:
    """Help text with rich's box drawing and line wrapping removed: phrases can be searched whole."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# -- 1. the annotated snapshot's label --------------------------------------------------------


@pytest.mark.parametrize("width,height", [(640, 480), (120, 120), (64, 64)])
def test_snapshot_label_is_one_box_inside_the_frame(width, height):
    frame = np.full((height, width), 128, np.uint8)
    flat = np.zeros((8, 8), np.float32)
    drawn = np.any(annotate(frame, flat, 80.07, 33.31, None) != heatmap_overlay(frame, flat), axis=2)
    ys, xs = np.nonzero(drawn)
    assert len(xs), "no label drawn"
    # the whole label, box included, keeps off every edge: nothing of it is cut off
    assert xs.min() >= 1 and ys.min() >= 1 and xs.max() <= width - 2 and ys.max() <= height - 2
    label = annotate(frame, flat, 80.07, 33.31, None)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert drawn[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()  # one filled box, no stray strokes
    text = np.argwhere(label.min(axis=2) > 200)  # white text on the dark box
    assert len(text) > 10
    assert text.min(axis=0).min() >= 1 and (text.max(axis=0) <= np.array(label.shape[:2]) - 2).all()


# -- 2. and 3. help pages ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["run"], ["export"]])
def test_help_shows_no_typer_placeholders(command):
    proc = edge(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "<bool>" not in proc.stdout  # flags take no value
    assert not re.search(r"\{\w+\}", proc.stdout), proc.stdout  # arguments read as RUN_DIR, not {run_dir}
    assert "--help" in proc.stdout


def test_run_help_lists_flags_and_export_usage_names_its_argument():
    assert "--loop " in edge("run", "--help").stdout
    usage = next(line for line in edge("export", "--help").stdout.splitlines() if "Usage:" in line)
    assert usage.split()[-1] == "RUN_DIR"


def test_help_says_the_default_model_is_the_feature_model():
    top = words(edge("--help").stdout)
    assert "feature model" in top and "EfficientNet-Lite0" in top and "anomaly autoencoder" not in top
    assert "cross-validation on your good images" in top  # the default, --arch auto
    export = words(edge("export", "--help").stdout)
    assert "padim.npz + run.json" in export and "memory.npz + run.json" in export and "feature model" in export
    assert "holds model.keras and run.json" not in export  # the default feature model writes no model.keras


# -- 4. edge events ---------------------------------------------------------------------------


def test_events_without_a_store_is_one_line_and_exit_2(tmp_path):
    proc = edge("events", cwd=tmp_path)  # the default --db edge-out/events.db is not there
    assert proc.returncode == 2 and proc.stdout == ""  # no empty table
    line = one_error_line(proc)
    assert "edge-out/events.db" in line and "edge run" in line and "--db" in line


def test_events_min_score_on_the_bundles_scale(tmp_path):
    store = tmp_path / "events.db"
    sink = SqliteSink(store)
    for i, score in enumerate((25.0, 45.0, 80.0)):  # the default feature model's scale: threshold ~20
        sink.emit(make_alert(i, score=score, threshold=20.2))
    sink.close()
    proc = edge("events", "--db", str(store), "--min-score", "40")
    assert proc.returncode == 0, proc.stderr
    assert "2 of 2 matching events" in words(proc.stdout)
    # the scores as --json gives them (the table's id column is random hex: "25" could be in it)
    shown = run_edge("events", "--db", store, "--min-score", "40", "--json").stdout.splitlines()
    assert sorted(json.loads(line)["score"] for line in shown) == [45.0, 80.0]
    help_text = words(edge("events", "--help").stdout)
    assert "--min-score 40" in help_text and "--min-score 0.05" not in help_text


# -- 5. a failed edge run leaves no outputs -----------------------------------------------------


@pytest.mark.parametrize(
    "source,needle",
    [
        (["--bundle", "no-such-bundle", "--images", str(DEMO_IMAGES)], "bundle not found"),
        (["--video", "no-such-video.mp4"], "video not found"),
        (["--images", "no-such-folder"], "folder not found"),
        # --fail-fast: without it a missing camera is waited for (a camera may boot after the Pi: issue 13)
        (["--camera", "9", "--fail-fast"], "camera 9"),
    ],
)
def test_failed_run_is_one_line_and_creates_no_out(tmp_path, source, needle):
    if source[0] == "--camera" and Path("/dev/video9").exists():
        pytest.skip("this machine has a camera 9")
    args = ["--bundle", str(DEMO_BUNDLE), *source] if source[0] != "--bundle" else source
    if source[0] == "--camera":  # OpenCV's own warnings are silenced at process start: a real process
        proc = run_edge("run", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    else:
        proc = edge("run", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert needle in one_error_line(proc)
    assert not (tmp_path / "out").exists()


# -- 6. edge export's progress lines: asserted in test_quality_models.py's CLI test (one export, not two)
