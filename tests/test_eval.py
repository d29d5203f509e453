"""`edge eval`: the metric code on hand-made arrays, and a real bundle whose anomaly map is known.

The known-map bundle is a real .tflite (converted by TensorFlow, run by the TFLite interpreter)
whose "reconstruction" is a constant 0.5, so its error map is exactly (x/255 - 0.5)^2 at the
model's size. The test computes that map itself from the images and checks `edge eval` reports
the same AUROCs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge_in_process

# `edge eval` is desktop code (scikit-learn, matplotlib): skipped on a device-only install.
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from calibration.evaluate import (
    at_threshold,
    evaluate,
    image_auroc,
    load_eval_set,
    map_to_image,
    markdown,
    pixel_auroc,
    read_mask,
    recall_at_fpr,
    worst_misses,
)
from edge.errors import EdgeError

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- metrics on hand-made arrays


def test_image_auroc_known_values():
    assert image_auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert image_auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    # pairs (normal, anomalous): (.1,.35) ok, (.1,.8) ok, (.4,.35) wrong, (.4,.8) ok → 3/4
    assert image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # a tie counts one half
    assert image_auroc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(image_auroc([0, 0], [0.1, 0.2]))


def test_recall_at_fpr_is_the_share_found_with_few_good_images_flagged():
    labels = [0] * 20 + [1] * 4
    # good scores 0..19; defects at 25, 18.5, 17.5, 3
    scores = list(range(20)) + [25, 18.5, 17.5, 3]
    assert recall_at_fpr(labels, scores, 0.0) == 0.25  # above every good image: only 25
    assert recall_at_fpr(labels, scores, 0.05) == 0.5  # one good image (19) may be flagged: 25, 18.5
    assert recall_at_fpr(labels, scores, 0.10) == 0.75  # two (18, 19): 25, 18.5, 17.5
    assert recall_at_fpr(labels, scores, 1.0) == 1.0
    assert np.isnan(recall_at_fpr([1, 1], [0.1, 0.2], 0.05))


def test_pixel_auroc_pools_pixels_of_all_images():
    mask_a = np.array([[0, 1], [0, 0]], bool)
    map_a = np.array([[0.1, 0.9], [0.2, 0.3]])
    mask_b = np.zeros((1, 3), bool)  # a good image: negatives only
    map_b = np.array([[0.0, 0.95, 0.1]])
    # positives: 0.9; negatives: 0.1 0.2 0.3 0.0 0.95 0.1 → 0.9 beats 5 of 6
    assert pixel_auroc([mask_a, mask_b], [map_a, map_b]) == pytest.approx(5 / 6)
    assert pixel_auroc([mask_a], [mask_a.astype(float)]) == 1.0
    with pytest.raises(ValueError):
        pixel_auroc([mask_a], [map_b])


def test_at_threshold_flags_scores_strictly_above():
    m = at_threshold([0, 0, 1, 1, 1], [0.1, 0.5, 0.5, 0.7, 0.2], threshold=0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 0, 2, 2)
    assert m["precision"] == 1.0
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(0.5)


def test_map_to_image_resizes_and_respects_roi():
    small = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    full = map_to_image(small, (4, 6), None)
    assert full.shape == (4, 6)
    assert full[:, 0].max() < full[:, -1].min()  # right half stays hotter
    roi_map = map_to_image(small + 2, (10, 10), (2, 3, 4, 4))
    assert roi_map.shape == (10, 10)
    assert roi_map[0, 0] == pytest.approx(2.0)  # outside the ROI: the map's minimum
    assert roi_map[3:7, 2:6].max() == pytest.approx(3.0)


# ---------------------------------------------------------------- data layout


def test_load_eval_set_reads_mvtec_layout(synthetic_mvtec):
    s = load_eval_set(synthetic_mvtec)
    assert s.groups.count("good") == 10 and s.groups.count("defect") == 10
    assert s.labels.sum() == 10
    assert all(
        m is not None and m.name.endswith("_mask.png") for m, g in zip(s.masks, s.groups, strict=True) if g == "defect"
    )
    mask = read_mask(s.masks[-1], (64, 64))
    assert mask.dtype == bool and mask.any()


def test_load_eval_set_refuses_other_layouts(tmp_path):
    with pytest.raises(EdgeError, match="not found"):
        load_eval_set(tmp_path / "nope")
    with pytest.raises(EdgeError, match="MVTec AD layout"):
        load_eval_set(tmp_path)
    (tmp_path / "test" / "good").mkdir(parents=True)
    with pytest.raises(EdgeError, match="no defect folders"):
        load_eval_set(tmp_path)


def test_missing_masks_are_noted_not_fatal(synthetic_mvtec, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(synthetic_mvtec / "test", root / "test")
    s = load_eval_set(root)
    assert any("no mask" in n for n in s.notes)
    assert all(m is None for m in s.masks)


def _two_defect_types(synthetic_mvtec, root: Path) -> Path:
    """synthetic_mvtec with a second defect type, "flat": its images are blank grey with a full mask."""
    import shutil

    shutil.copytree(synthetic_mvtec, root)
    (root / "test" / "flat").mkdir()
    (root / "ground_truth" / "flat").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "test" / "flat" / f"f{i}.png"), np.full((64, 64), 128, np.uint8))
        cv2.imwrite(str(root / "ground_truth" / "flat" / f"f{i}_mask.png"), np.full((64, 64), 255, np.uint8))
    return root


def test_exclude_leaves_a_defect_type_out(synthetic_mvtec, tmp_path):
    root = _two_defect_types(synthetic_mvtec, tmp_path / "two")
    assert load_eval_set(root).groups.count("flat") == 3
    s = load_eval_set(root, exclude=["flat"])
    assert "flat" not in s.groups and s.groups.count("defect") == 10
    assert any("flat" in n and "--exclude" in n for n in s.notes)
    with pytest.raises(EdgeError, match="no such defect folder.*defect, flat"):
        load_eval_set(root, exclude=["unevn"])
    with pytest.raises(EdgeError, match="leaves no defect type"):
        load_eval_set(root, exclude=["defect", "flat"])


# ---------------------------------------------------------------- a bundle with a known map


def _constant_bundle(folder: Path, size: int, threshold: float) -> Path:
    """A real float32 .tflite that 'reconstructs' every pixel as 0.5, in a bundle."""
    from train.tfenv import import_tensorflow

    import_tensorflow(threads=1)
    import keras

    from edge.bundle import Manifest, ModelInfo, TensorSpec, write_bundle
    from edge.model import TFLiteModel
    from edge.preprocess import Preprocessing
    from edge.scoring import ScoreConfig
    from export.convert import convert_keras

    inputs = keras.Input((size, size, 1))
    conv = keras.layers.Conv2D(1, 1)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.zeros((1, 1, 1, 1), np.float32), np.full((1,), 0.5, np.float32)])
    folder.mkdir(parents=True, exist_ok=True)
    tflite = folder / "constant.tflite"
    tflite.write_bytes(convert_keras(model, "float32"))
    tm = TFLiteModel(tflite)
    manifest = Manifest(
        model=ModelInfo(
            file="model.tflite",
            sha256="",
            quantization="float32",
            input=TensorSpec(**{k: v for k, v in tm.input.to_dict().items()}),
            outputs=[TensorSpec(**o.to_dict()) for o in tm.outputs],
        ),
        preprocessing=Preprocessing(width=size, height=size, color="grey"),
        score=ScoreConfig(kind="mean"),
        threshold={"value": threshold, "method": "hand-set for the test"},
    )
    bundle_dir = folder / "bundle"
    write_bundle(bundle_dir, manifest, tflite)
    return bundle_dir


@pytest.fixture(scope="module")
def constant_bundle(tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow")
    return _constant_bundle(tmp_path_factory.mktemp("eval") / "const", size=64, threshold=0.06)


def _expected(synthetic_mvtec):
    """The same metrics computed here, from the images, without edge eval."""
    from sklearn.metrics import roc_auc_score

    s = load_eval_set(synthetic_mvtec)
    maps, scores, truths = [], [], []
    for f, g, m in zip(s.files, s.groups, s.masks, strict=True):
        x = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        e = (x - 0.5) ** 2
        maps.append(e.ravel())
        scores.append(e.mean())
        truths.append(np.zeros(e.size, bool) if g == "good" else (cv2.imread(str(m), 0) > 127).ravel())
    return (
        roc_auc_score(s.labels, scores),
        roc_auc_score(np.concatenate(truths), np.concatenate(maps)),
        np.array(scores),
        s.labels,
    )


def test_eval_reports_the_aurocs_of_a_known_map(constant_bundle, synthetic_mvtec, tmp_path):
    results, report = evaluate(
        [constant_bundle], synthetic_mvtec, tmp_path / "out", threads=1, progress=False, log=lambda m: None
    )
    r = results[0]
    want_image, want_pixel, want_scores, labels = _expected(synthetic_mvtec)
    assert r.image_auroc == pytest.approx(want_image, abs=1e-9)
    assert r.pixel_auroc == pytest.approx(want_pixel, abs=1e-6)
    assert r.pixel_auroc > 0.9  # dark blobs and bright scratches are far from 0.5 grey
    np.testing.assert_allclose(np.sort(r.scores), np.sort(want_scores), rtol=1e-5)
    want = at_threshold(labels, want_scores, 0.06)
    assert r.threshold_metrics["tp"] == want["tp"] and r.threshold_metrics["fp"] == want["fp"]
    assert set(r.per_defect) == {"defect"}
    assert r.per_defect["defect"]["image_auroc"] == pytest.approx(want_image, abs=1e-9)
    assert r.recall_at_5pct_fpr == recall_at_fpr(labels, want_scores, 0.05)

    text = report.read_text()
    assert f"{r.image_auroc:.3f}" in text and f"{r.pixel_auroc:.3f}" in text
    assert "| defect | 10 |" in text
    png = report.parent / "quality_worst_bundle.png"
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 100


def test_worst_misses_order(constant_bundle, synthetic_mvtec):
    results, _ = evaluate([constant_bundle], synthetic_mvtec, None, progress=False, log=lambda m: None)
    r = results[0]
    missed, false_alarms = worst_misses(r, 3)
    defect_scores = r.scores[r.labels == 1]
    good_scores = r.scores[r.labels == 0]
    assert r.scores[missed[0]] == defect_scores.min()
    assert r.scores[false_alarms[0]] == good_scores.max()
    assert all(r.labels[i] == 1 for i in missed) and all(r.labels[i] == 0 for i in false_alarms)


def test_cli_compares_bundles_side_by_side(constant_bundle, synthetic_mvtec, tmp_path):
    import shutil

    other = tmp_path / "other" / "bundle"
    shutil.copytree(constant_bundle, other)
    out = tmp_path / "report.md"
    proc = run_edge_in_process(
        "eval",
        str(constant_bundle),
        "--data",
        str(synthetic_mvtec),
        "--compare",
        str(other),
        "--out",
        str(out),
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "image AUROC" in proc.stdout
    text = out.read_text()
    # both bundles are called "bundle": the table names them by parent folder
    assert "| const/bundle |" in text and "| other/bundle |" in text
    assert "edge eval" in text  # the exact command is recorded
    assert len(list(tmp_path.glob("report_worst_*.png"))) == 2


def test_cli_exclude_gives_the_figures_without_that_type(constant_bundle, synthetic_mvtec, tmp_path):
    root = _two_defect_types(synthetic_mvtec, tmp_path / "two")
    # a blank grey tile "reconstructs" perfectly: its fully masked pixels score lowest of all, so
    # with it the pixel AUROC drops; without it the figures equal the one-type set's
    with_flat, _ = evaluate([constant_bundle], root, None, progress=False, log=lambda m: None)
    want_image, want_pixel, _, _ = _expected(synthetic_mvtec)
    assert with_flat[0].pixel_auroc < want_pixel - 0.1
    out = tmp_path / "report.md"
    proc = run_edge_in_process(
        "eval",
        str(constant_bundle),
        "--data",
        str(root),
        "--exclude",
        "flat",
        "--out",
        str(out),
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert f"pixel AUROC {want_pixel:.3f}" in proc.stdout and f"image AUROC {want_image:.3f}" in proc.stdout
    text = out.read_text()
    assert "test/flat left out (--exclude)" in text and "| flat |" not in text
    bad = run_edge_in_process("eval", str(constant_bundle), "--data", str(root), "--exclude", "unevn")
    assert bad.returncode == 2 and "unevn" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (["--data", "/nonexistent/data"], "not found"),
        (["--data", "{tmp}"], "MVTec AD layout"),
    ],
)
def test_cli_bad_data_is_one_line(constant_bundle, tmp_path, args, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run_edge_in_process("eval", str(constant_bundle), *args)
    assert proc.returncode == 2
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_missing_bundle_is_one_line(synthetic_mvtec, tmp_path):
    proc = run_edge_in_process("eval", str(tmp_path / "nobundle"), "--data", str(synthetic_mvtec))
    assert proc.returncode == 2 and "bundle not found" in proc.stderr and "Traceback" not in proc.stderr


def test_markdown_handles_missing_pixel_metrics(synthetic_mvtec):
    from calibration.evaluate import EvalResult

    s = load_eval_set(synthetic_mvtec)
    r = EvalResult(
        bundle=Path("b"),
        name="b",
        kind="autoencoder",
        quantization="int8",
        score="mean",
        threshold=1.0,
        model_bytes=2048,
        ms_per_image=1.0,
        files=s.files,
        groups=s.groups,
        scores=np.zeros(len(s.files)),
        image_auroc=0.5,
        pixel_auroc=float("nan"),
        threshold_metrics=at_threshold(s.labels, np.zeros(len(s.files)), 1.0),
        per_defect={"defect": {"images": 10, "image_auroc": 0.5, "pixel_auroc": float("nan"), "recall": 0.0}},
    )
    text = markdown([r], s)
    assert "| b | autoencoder | int8 | mean | 2 KiB |" in text and "n/a" in text


def test_intervals_and_a_bundle_compared_with_itself_is_within_noise(constant_bundle, synthetic_mvtec, tmp_path):
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(constant_bundle, other)
    lines = []
    results, report = evaluate(
        [constant_bundle, other], synthetic_mvtec, tmp_path / "q.md", threads=1, progress=False, log=lines.append,
        resamples=200, worst=0,
    )  # fmt: skip
    first, second = results
    for metric in ("image_auroc", "pixel_auroc"):
        i = first.intervals.intervals[metric]
        assert i.low - 1e-9 <= i.point <= i.high + 1e-9
        assert second.versus_first.within_noise(metric)
    text = "\n".join(lines)
    assert f"image AUROC {first.image_auroc:.3f} (" in text and "within noise" in text
    assert "beyond noise" not in text
    assert "200 stratified resamples" in report.read_text()
