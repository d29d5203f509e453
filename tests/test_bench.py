"""`edge bench`: runs on a tiny real bundle, reports every field, never loads TensorFlow.

No timing assertions: the numbers depend on the machine; the tests check that each measurement
is there and is what a user would read (frames counted, model size right, percentiles ordered).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge_in_process
from synthetic import write_video
from test_no_tensorflow import BLOCK_TF  # tensorflow made unimportable in the child

from edge.bundle import load_bundle


def edge_cli(*args: str, block_tf: bool = True, timeout: int = 240) -> subprocess.CompletedProcess:
    """`edge ARGS` in a fresh interpreter; after it, the child asserts TensorFlow was never imported."""
    code = (BLOCK_TF if block_tf else "import sys\n") + textwrap.dedent(
        f"""
        from edge_cli.app import main
        sys.argv = ["edge", *{list(args)!r}]
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
        else:
            code = 0
        assert "tensorflow" not in sys.modules, "edge bench imported TensorFlow"
        sys.exit(code)
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bench_bundle(int8_model, tmp_path_factory) -> Path:
    from benchmarks.helpers import quick_bundle

    return quick_bundle(int8_model, tmp_path_factory.mktemp("bench") / "bundle", threshold=0.02).path


@pytest.fixture(scope="module")
def bench_result(bench_bundle, tmp_path_factory) -> dict:
    """One `edge bench` run over a real video and synthetic frames, 1 and 2 threads, JSON on stdout."""
    video = write_video(tmp_path_factory.mktemp("video") / "line.avi", 30, {5, 17}, size=96)
    result = edge_cli(
        "bench",
        str(bench_bundle),
        "--video",
        str(video),
        "--size",
        "160x120",
        "--threads",
        "1,2",
        "--frames",
        "20",
        "--invokes",
        "10",
        "--tiles",
        "3",
        "--profile",
        "--json",
        "-",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _ordered(stats: dict) -> bool:
    return 0 <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def test_bench_reports_model_machine_memory_and_no_tensorflow(bench_result, bench_bundle):
    b = bench_result["bundle"]
    manifest = load_bundle(bench_bundle).manifest
    assert b["model_bytes"] == (bench_bundle / manifest.model.file).stat().st_size
    assert b["quantization"] == "int8" and b["input"].startswith("32x32x1")
    m = bench_result["machine"]
    assert m["cores"] >= 1 and m["cpu"] and m["interpreter"] in ("ai-edge-litert", "tflite-runtime")
    assert bench_result["peak_rss_mb"] > 10
    assert bench_result["tensorflow_loaded"] is False
    assert "bench" in bench_result["command"]


def test_bench_measures_invoke_tiles_and_pipeline_per_thread_count(bench_result):
    runs = bench_result["runs"]
    assert [r["threads"] for r in runs] == [1, 2]
    for run in runs:
        inv = run["invoke"]
        assert inv["fps"] > 0 and inv["cpu_ms"] > 0
        assert inv["ms"]["n"] == 10 and _ordered(inv["ms"])
        tiles = run["tiles"]
        assert tiles["tiles"] == 3 and tiles["one_by_one_ms_per_tile"] > 0
        # exports have a fixed batch of one (export.convert.with_batch_of_one): nothing to batch
        assert tiles["batched_ms_per_tile"] is None
        assert [p["source"] for p in run["pipelines"]] == ["video line.avi", "synthetic 160x120"]
        video, synthetic = run["pipelines"]
        assert video["frame_size"] == "96x96" and synthetic["frame_size"] == "160x120"
        for p in run["pipelines"]:
            # 20 measured frames after the warm-up ones; a 30-frame clip is looped if needed.
            assert p["frames"] >= 20 and p["inspected"] == p["frames"] and p["dropped"] == 0
            assert p["fps"] > 0 and p["vs_invoke"] > 0 and p["cpu_ms_per_frame"] > 0
            assert 0 < p["main_thread_cpu_ms_per_frame"] and p["vs_invoke_cpu"] > 0
            assert p["peak_rss_mb"] is None or 10 < p["peak_rss_mb"] <= bench_result["peak_rss_mb"]
            for stage in ("preprocess", "model", "score", "decide", "latency"):
                assert _ordered(p["stages_ms"][stage]), stage
            assert p["stages_ms"]["cycle"]["n"] == p["inspected"] - 1


def test_bench_profile_shows_the_interpreter(bench_result):
    assert "Invoke" in bench_result["profile"]
    assert bench_result["profile_run"]["threads"] == 1


def test_bench_tables_for_people(bench_bundle):
    result = edge_cli(
        "bench", str(bench_bundle), "--size", "64x48", "--threads", "1", "--frames", "10", "--tiles", "0", "-q"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("interpreter alone", "pipeline throughput", "pipeline latency", "TensorFlow loaded: no"):
        assert heading in out
    assert "synthetic 64x48" in out


def test_bench_paced_camera_drops_frames_it_cannot_take(bench_bundle, tmp_path):
    # A 1000 fps "camera" outruns any model: latest-frame mode drops and counts, never queues.
    out = tmp_path / "bench.json"
    # In this process: what is asserted is the JSON it writes (the fresh interpreter that checks no
    # TensorFlow is loaded is bench_result's and test_bench_tables_for_people's; one costs ~1.2 CPU-s).
    result = run_edge_in_process(
        "bench",
        str(bench_bundle),
        "--size",
        "640x480",
        "--rate",
        "1000",
        "--threads",
        "1",
        "--frames",
        "15",
        "--tiles",
        "0",
        "-q",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    p = json.loads(out.read_text())["runs"][0]["pipelines"][0]
    assert p["source"] == "synthetic 640x480 at 1000 fps"
    assert p["inspected"] >= 15


# Bad input: every case inside this process (exit status and stderr are main()'s, a fresh interpreter
# per case costs ~1.2 CPU-s); the first also in a real process, as a user runs it.
@pytest.mark.parametrize(
    "args, message, real_process",
    [
        (["--size", "640by480"], "--size '640by480': give WIDTHxHEIGHT", True),
        (["--threads", "1,zero"], "--threads '1,zero'", False),
        (["--video", "no-such.mp4"], "video not found: no-such.mp4", False),
        (["--video", "clip.mp4", "--rate", "30"], "--rate paces synthetic frames", False),
    ],
)
def test_bench_bad_options_are_one_line(bench_bundle, args, message, real_process):
    result = (edge_cli if real_process else run_edge_in_process)("bench", str(bench_bundle), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_missing_bundle_is_one_line(tmp_path):
    result = run_edge_in_process("bench", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "bundle not found" in result.stderr and "Traceback" not in result.stderr


# -- the optimisations keep behaviour ---------------------------------------------------------------


def test_set_input_in_place_gives_the_same_outputs_as_set_tensor(int8_model):
    from edge.model import TFLiteModel

    model = TFLiteModel(int8_model, num_threads=1)
    batch = np.random.default_rng(0).integers(0, 256, (model.fixed_batch or 3, *model.input_hwc), dtype=np.uint8)
    fast = model.predict(batch)[0]
    interp = model._interpreter  # the plain TFLite way, for reference
    interp.set_tensor(interp.get_input_details()[0]["index"], model.quantize_input(batch))
    interp.invoke()
    plain = model.dequantize(interp.get_tensor(interp.get_output_details()[0]["index"]), model.outputs[0])
    np.testing.assert_array_equal(fast, plain)
    assert fast.shape == batch.shape and fast.dtype == np.float32


def test_grey_before_resize_stays_within_one_level_of_resize_before_grey():
    from edge.preprocess import Preprocessing, Preprocessor

    rng = np.random.default_rng(3)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
    pre = Preprocessor(Preprocessing(width=128, height=96, color="grey"))
    out = pre.prepare(frame)
    reference = cv2.cvtColor(cv2.resize(frame, (128, 96), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    assert out.shape == (96, 128, 1)
    assert np.abs(out[..., 0].astype(int) - reference.astype(int)).max() <= 1
    # The returned array is the caller's: the next frame does not overwrite it.
    kept = out.copy()
    pre.prepare(255 - frame)
    np.testing.assert_array_equal(out, kept)


def test_a_fixed_batch_model_takes_a_batch_one_by_one(trained_run, int8_model, tmp_path):
    """Exported with batch 1 (the whole graph in XNNPACK), predict() still takes N frames."""
    pytest.importorskip("tensorflow")
    import keras

    from edge.errors import EdgeError
    from edge.model import TFLiteModel
    from export.convert import convert_keras

    model = keras.models.load_model(trained_run / "model.keras", compile=False)
    path, free = tmp_path / "fixed.tflite", tmp_path / "free.tflite"
    path.write_bytes(convert_keras(model, "float32"))  # the default: batch of one
    free.write_bytes(convert_keras(model, "float32", fixed_batch=False))

    fixed = TFLiteModel(path, num_threads=1)
    assert fixed.fixed_batch == 1 and TFLiteModel(int8_model).fixed_batch == 1
    assert TFLiteModel(free).fixed_batch is None
    batch = np.random.default_rng(2).integers(0, 256, (3, *fixed.input_hwc), dtype=np.uint8)
    out = fixed.predict(batch)[0]
    assert out.shape == batch.shape
    singles = np.concatenate([fixed.predict(frame[None])[0] for frame in batch])
    np.testing.assert_array_equal(out, singles)
    with pytest.raises(EdgeError, match="fixed batch of 1"):
        fixed.set_input(batch)
