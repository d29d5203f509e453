"""`edge calibrate` with frame geometry (--tile, --mask, --roi), then `edge run` with the bundle alone.

Real parts: conftest's tiny int8 autoencoder (32x32 grey input), real PNG files, the real
TFLite interpreter, `edge calibrate` and `edge run` through the CLI's entry point inside the test process
(a fresh interpreter per call costs ~1.2 CPU-s; what is asserted is the exit status and the output; one
bad-geometry case also runs as a real `python -m edge_cli` process). Frames are 128x96 — four
times the model input across — with a small (10x10) white square as the defect: shrinking such
a frame to 32x32 leaves the defect 2-3 pixels wide, tiles at the model size keep it whole.

Also here: the help-text check (rich markup used to swallow "[default: …]" in option help).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge_case, run_edge_in_process
from synthetic import good_image, write_images

from calibration import calibrate
from edge.bundle import load_bundle
from edge.detector import make_detector
from edge.imaging import read_image
from edge.pipeline import Pipeline
from edge.sources import open_source
from edge.tiling import FrameScorer, GeometryConfig, Tiler, geometry_with_options

REPO = Path(__file__).resolve().parent.parent
W, H, SIDE = 128, 96, 10
BAR = 12  # width of the bright fixture on the left edge of the "fixture" frames (masked out)


def _quiet(_message: str) -> None:
    pass


edge_cli = run_edge_in_process


def frame(rng: np.random.Generator, defect: bool, fixture: bool = False) -> np.ndarray:
    """A 128x96 grey good surface; a 10x10 white square somewhere right of the fixture when `defect`."""
    image = cv2.resize(good_image(rng, W), (W, H), interpolation=cv2.INTER_AREA)
    if fixture:
        image[:, :BAR] = 245  # a bright clamp in every frame, good or not
    if defect:
        x = int(rng.integers(2 * BAR + 4, W - SIDE - 4))
        y = int(rng.integers(4, H - SIDE - 4))
        image[y : y + SIDE, x : x + SIDE] = 255
    return image


def write_frames(folder: Path, n: int, seed: int, defect: bool, fixture: bool = False, prefix: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"{prefix}{'bad' if defect else 'good'}_{i:03d}.png"
        cv2.imwrite(str(path), frame(rng, defect, fixture))
        paths.append(path)
    return paths


def csv_scores(bundle_path: Path) -> dict[str, float]:
    with open(bundle_path / "report" / "scores.csv", newline="") as f:
        return {Path(r["file"]).name: float(r["score"]) for r in csv.DictReader(f)}


class ListSink:
    name = "list"

    def __init__(self):
        self.alerts = []

    def emit(self, alert) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        pass


def run_scores(bundle_path: Path, folder: Path) -> tuple[list[float], list, list[str]]:
    """`edge run`'s Pipeline over an image folder with the bundle alone: (frame scores, alerts, log)."""
    sink, logs = ListSink(), []
    pipeline = Pipeline(load_bundle(bundle_path), [sink], num_threads=1, log=logs.append)
    summary = pipeline.run(open_source(images=str(folder)))
    return list(summary.scores), sink.alerts, logs


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """normal/ (24 good 128x96 frames), anomalous/ (8 with a small square), inspect/ (a mix of both, copied)."""
    root = tmp_path_factory.mktemp("wide")
    good = write_frames(root / "normal", 24, seed=11, defect=False)
    bad = write_frames(root / "anomalous", 8, seed=12, defect=True)
    inspect = root / "inspect"
    inspect.mkdir()
    # Name order interleaves good and bad, so "alerts exactly on the defective frames" means something.
    for i, path in enumerate(good[:6] + bad[:4]):
        shutil.copyfile(path, inspect / f"{(i * 7) % 10:02d}_{path.name}")
    return root


@pytest.fixture(scope="module")
def tiled_bundle(int8_model, wide, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("tiled") / "bundle"
    proc = edge_cli(
        "calibrate",
        int8_model,
        "--normal",
        wide / "normal",
        "--anomalous",
        wide / "anomalous",
        "--method",
        "f1",
        "--score",
        "max_blur",
        "--tile",
        "model",
        "--tile-overlap",
        "0.25",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc


# -- calibrate --tile, then edge run with the bundle alone ----------------------------------------------


def test_tiled_calibration_records_its_geometry(tiled_bundle):
    out, proc = tiled_bundle
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert "geometry: whole frame, tiles 32x32 (model size), overlap 0.25" in proc.stderr
    manifest = load_bundle(out).manifest
    assert manifest.geometry is not None and manifest.geometry.mask is None
    assert manifest.geometry.tiling is not None and manifest.geometry.tiling.tile is None
    assert manifest.geometry.tiling.overlap == 0.25
    assert manifest.preprocessing.roi is None
    # Tiles keep the 10x10 square whole: the calibration separates every frame.
    assert manifest.metrics["image_auroc"] == 1.0 and manifest.metrics["fp"] == 0 and manifest.metrics["fn"] == 0
    assert "tiles 32x32 (model size)" in (out / "report" / "index.html").read_text()


def test_edge_run_with_the_tiled_bundle_alone_alerts_on_the_defective_frames_with_the_calibrated_scores(
    tiled_bundle, wide, tmp_path
):
    out, _ = tiled_bundle
    calibrated = csv_scores(out)
    files = sorted((wide / "inspect").glob("*.png"))
    expected_bad = [i for i, f in enumerate(files) if "_bad_" in f.name]
    assert len(expected_bad) == 4 and expected_bad != list(range(4))

    proc = edge_cli(
        "run",
        "--bundle",
        out,
        "--images",
        wide / "inspect",
        "--out",
        tmp_path / "run",
        "--threads",
        "1",
        "--metrics-every",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr  # no tiling mismatch: it came from the bundle
    alerts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["frame_index"] for a in alerts] == expected_bad
    for a in alerts:
        name = files[a["frame_index"]].name.split("_", 1)[1]
        assert a["score"] == pytest.approx(calibrated[name], abs=1e-6)  # alerts carry 6 decimals
        x, y, w, h = a["box"]
        assert x + w <= W and y + h <= H  # the box is in frame pixels

    # Every frame, not only the alerts: the device's score is the calibration's score.
    scores, _, logs = run_scores(out, wide / "inspect")
    assert logs == []
    assert scores == [calibrated[f.name.split("_", 1)[1]] for f in files]


def test_calibration_scores_are_the_device_frame_scorer_scores(tiled_bundle, wide):
    """D's recipe, spelled out: FrameScorer(detector, Tiler(preprocessing, geometry, base=bundle))."""
    out, _ = tiled_bundle
    bundle = load_bundle(out)
    scorer = FrameScorer(
        make_detector(bundle), Tiler(bundle.manifest.preprocessing, bundle.manifest.geometry, base=out)
    )
    calibrated = csv_scores(out)
    files = sorted((wide / "anomalous").glob("*.png"))[:3] + sorted((wide / "normal").glob("*.png"))[:3]
    assert [scorer.score(read_image(f)).score for f in files] == [calibrated[f.name] for f in files]


# -- the batched path (no geometry) is the frame scorer's numbers ----------------------------------------


def test_batched_path_gives_the_frame_scorer_scores(int8_model, tmp_path):
    folder = tmp_path / "good"
    write_images(folder, 12, seed=303, size=64)
    write_frames(folder, 4, seed=304, defect=True, prefix="wide_")  # other sizes are resized alike
    batched = calibrate(
        int8_model, folder, None, "quantile:0.9", tmp_path / "batched", batch_size=8, progress=False, log=_quiet
    )
    framewise = calibrate(
        int8_model,
        folder,
        None,
        "quantile:0.9",
        tmp_path / "framewise",
        progress=False,
        log=_quiet,
        geometry=GeometryConfig(),
    )
    assert batched.manifest.geometry is None and framewise.manifest.geometry is None
    a, b = csv_scores(batched.path), csv_scores(framewise.path)
    assert a.keys() == b.keys() and len(a) == 16
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(a)], rtol=1e-6, atol=1e-9)
    assert batched.threshold == pytest.approx(framewise.threshold, rel=1e-6)


# -- mask and roi ----------------------------------------------------------------------------------------


def test_mask_is_calibrated_in_copied_into_the_bundle_and_used_by_run(int8_model, tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_frames(data / "normal", 16, seed=21, defect=False, fixture=True)
    write_frames(data / "anomalous", 6, seed=22, defect=True, fixture=True)
    mask = np.full((H, W), 255, np.uint8)
    mask[:, : 2 * BAR] = 0  # the clamp and a margin around it are not inspected
    mask_path = tmp_path / "clamp-mask.bmp"
    cv2.imwrite(str(mask_path), mask)

    common = dict(progress=False, log=_quiet, score="max_blur")
    plain = calibrate(
        int8_model,
        data / "normal",
        data / "anomalous",
        "f1",
        tmp_path / "unmasked",
        geometry=geometry_with_options(tile="model"),
        **common,
    )
    masked = calibrate(
        int8_model,
        data / "normal",
        data / "anomalous",
        "f1",
        tmp_path / "masked",
        geometry=geometry_with_options(tile="model", mask=str(mask_path)),
        **common,
    )
    # The clamp drowns the squares unless it is masked out.
    assert masked.manifest.metrics["image_auroc"] == 1.0
    assert masked.manifest.normal_scores.max < plain.manifest.normal_scores.min

    assert masked.manifest.geometry.mask == "mask.png"
    np.testing.assert_array_equal(cv2.imread(str(masked.path / "mask.png"), cv2.IMREAD_GRAYSCALE), mask)

    # The bundle travels alone: moved, the original mask gone, run from elsewhere.
    moved = shutil.move(str(masked.path), str(tmp_path / "device" / "bundle"))
    mask_path.unlink()
    monkeypatch.chdir(tmp_path)
    scores, alerts, logs = run_scores(Path(moved), data / "anomalous")
    calibrated = csv_scores(Path(moved))
    assert logs == [] and len(alerts) == 6
    assert scores == [calibrated[f.name] for f in sorted((data / "anomalous").glob("*.png"))]

    # Calibrating again into the bundle without a mask drops it: no stale mask.png.
    again = calibrate(
        int8_model,
        data / "normal",
        data / "anomalous",
        "f1",
        moved,
        geometry=geometry_with_options(tile="model"),
        **common,
    )
    assert again.manifest.geometry.mask is None and not (Path(moved) / "mask.png").exists()


def test_roi_is_the_bundles_preprocessing_roi_and_equals_calibrating_cropped_images(int8_model, wide, tmp_path):
    x, y, w, h = 16, 8, 96, 64
    cropped = tmp_path / "cropped"
    cropped.mkdir()
    for f in sorted((wide / "normal").glob("*.png"))[:10]:
        cv2.imwrite(str(cropped / f.name), cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[y : y + h, x : x + w])
    proc = edge_cli(
        "calibrate",
        int8_model,
        "--normal",
        wide / "normal",
        "--method",
        "quantile:0.9",
        "--roi",
        f"{x},{y},{w},{h}",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        tmp_path / "roi",
    )
    assert proc.returncode == 0, proc.stderr
    bundle = load_bundle(tmp_path / "roi")
    assert bundle.manifest.preprocessing.roi == (x, y, w, h)
    assert bundle.manifest.geometry is None  # an ROI alone lives in preprocessing, as the device reads it
    plain = calibrate(int8_model, cropped, None, "quantile:0.9", tmp_path / "plain", progress=False, log=_quiet)
    with_roi, on_crops = csv_scores(bundle.path), csv_scores(plain.path)
    np.testing.assert_allclose([with_roi[k] for k in on_crops], [on_crops[k] for k in on_crops], rtol=1e-6)


# -- bad geometry options are one line --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,message,real_process",
    [
        (["--tile", "big"], "--tile 'big': give 'model'", False),
        (["--roi", "1,2,3"], "--roi '1,2,3': give x,y,w,h", False),
        (["--mask", "{tmp}/no-such-mask.png"], "mask image not found", False),
        # This one also as a real `python -m edge_cli` process: found after the model is loaded.
        (["--mask", "{tmp}/small-mask.png"], "mask is 20x20 but frames are 128x96", True),
        (["--roi", "100,80,64,64"], "lies outside the 128x96 frame", False),
    ],
)
def test_bad_geometry_is_one_line_and_exit_2(int8_model, wide, tmp_path, args, message, real_process):
    cv2.imwrite(str(tmp_path / "small-mask.png"), np.full((20, 20), 255, np.uint8))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run_edge_case(
        "calibrate",
        int8_model,
        "--normal",
        wide / "normal",
        "--no-progress",
        "--out",
        tmp_path / "b",
        *args,
        real_process=real_process,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and not line.startswith("calibrating ") and not line.startswith("geometry: ")
    ]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "b" / "bundle.json").exists()


# -- help text ----------------------------------------------------------------------------------------------


def test_run_help_shows_its_defaults(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # both read when the help is drawn
    monkeypatch.setenv("NO_COLOR", "1")
    proc = edge_cli("run", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "edge-out" in proc.stdout and "OUT/state" in proc.stdout
    assert "(default: 1)" in proc.stdout


def test_no_help_text_holds_something_rich_would_take_for_markup():
    """Typer renders help with rich markup: "[default: x]" or "[bold]" in a help string vanishes."""
    import typer.main

    from edge_cli.app import app

    tag = re.compile(r"\[/?[a-zA-Z#@][^\[\]]*\]")
    found = []

    def walk(command, path):
        for text in (command.help, getattr(command, "short_help", None)):
            if text and tag.search(text):
                found.append(f"{path}: {tag.search(text).group(0)}")
        for param in command.params:
            text = getattr(param, "help", None)
            if text and tag.search(text):
                found.append(f"{path} {param.opts[0] if param.opts else param.name}: {tag.search(text).group(0)}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "edge")
    assert found == []
