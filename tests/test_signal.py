"""Signal windows end to end: train on a signal file, int8 export, calibrate, run from a file, stdin and a
serial port (a pty as the microcontroller, real pyserial), evaluate, and the bad inputs of issue 18.

The signals are made here: sines with noise are normal; a spike, a flatline or a square wave is not.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import EdgeError
from edge.signal_data import SignalSpec, WindowAssembler, normalise, read_signal_file, to_frame
from tests.cli_helpers import run_edge_in_process

LENGTH = 64


def normal_windows(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.linspace(0, 1, LENGTH, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    cycles = rng.uniform(1.8, 2.2, (n, 1))
    return 3.0 * np.sin(2 * np.pi * cycles * t + phase) + 10 + rng.normal(0, 0.05, (n, LENGTH))


def abnormal_windows(n: int, rng: np.random.Generator) -> np.ndarray:
    out = normal_windows(n, rng)
    for i, w in enumerate(out):
        kind, at = i % 3, int(rng.integers(8, LENGTH - 24))
        if kind == 0:
            w[at : at + 2] += 12.0  # a spike
        elif kind == 1:
            w[at : at + 24] = w[at]  # the sensor sticks
        else:
            w[:] = 10 + 3.0 * np.sign(np.sin(np.linspace(0, 4 * np.pi, LENGTH)))  # another shape
    return out


def write_ucr(path: Path, normal: np.ndarray, abnormal: np.ndarray) -> Path:
    rows = [np.r_[1.0, w] for w in normal] + [np.r_[2.0, w] for w in abnormal]
    np.savetxt(path, np.asarray(rows), fmt="%.6e")
    return path


@pytest.fixture(scope="module")
def signals(tmp_path_factory) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("signals")
    train = folder / "train.csv"
    np.savetxt(train, normal_windows(240, rng), fmt="%.5f", delimiter=",")  # CSV, no label column
    test = write_ucr(folder / "test.txt", normal_windows(20, rng), abnormal_windows(9, rng))
    return {"folder": folder, "train": train, "test": test}


@pytest.fixture(scope="module")
def signal_bundle(signals) -> Path:
    """train (the CLI recognises the signal file) → int8 export → calibrate on the labelled file."""
    pytest.importorskip("tensorflow")
    folder = signals["folder"]
    run = folder / "run"
    result = run_edge_in_process(
        "train", "autoencoder", "--data", signals["train"], "--out", run, "--units", "32", "--latent", "8",
        "--epochs", "40", "--batch-size", "16", "--learning-rate", "1e-2", "--val-split", "0", "--patience", "0",
        "--threads", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "run.json").read_text())["arch"] == "signal_dense"
    result = run_edge_in_process("export", run, "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    model = Path(result.stdout.strip().splitlines()[-1])
    bundle = folder / "bundle"
    # fpr:0 puts the threshold at the highest normal window's score: alerts are then the abnormal windows only
    result = run_edge_in_process("calibrate", model, "--normal", signals["test"], "--method", "fpr:0", "--out", bundle)
    assert result.returncode == 0, result.stderr
    assert "20 normal + 9 anomalous windows" in result.stderr
    return bundle


# ------------------------------------------------------------------ reading and normalising windows


def test_ucr_csv_and_recordings_are_read_as_windows(tmp_path):
    rng = np.random.default_rng(1)
    ucr = read_signal_file(write_ucr(tmp_path / "a.txt", normal_windows(3, rng), abnormal_windows(2, rng)))
    assert ucr.windows.shape == (5, LENGTH) and list(ucr.labels) == [1, 1, 1, 2, 2]
    assert ucr.normal_label() == 1 and ucr.split()[1].sum() == 2
    csv = tmp_path / "b.csv"
    csv.write_text("label,s0,s1,s2\n0,1.5,2.5,3.5\n1,4,5,6\n")
    table = read_signal_file(csv)
    assert table.windows.tolist() == [[1.5, 2.5, 3.5], [4, 5, 6]] and table.labels.tolist() == [0, 1]
    recording = tmp_path / "r.txt"
    recording.write_text("\n".join(str(v) for v in range(10)) + "\n")
    cut = read_signal_file(recording, length=4, hop=3)
    assert cut.recording and cut.windows.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]


def test_stream_lines_make_windows_and_flatlines_normalise_to_the_middle():
    assembler = WindowAssembler(4, hop=2)
    got = [assembler.feed([v], "x") for v in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]
    assert [g.tolist() for g in got if g is not None] == [[1, 2, 3, 4], [3, 4, 5, 6]]
    assert assembler.feed([9, 1, 2, 3, 4], "x").tolist() == [1, 2, 3, 4]  # label first, then the window
    with pytest.raises(EdgeError, match="3 values"):
        assembler.feed([1, 2, 3], "line 7")
    spec = SignalSpec(length=4)
    assert normalise(np.array([2.0, 2.0, 2.0, 2.0]), spec).tolist() == [0.5] * 4
    assert to_frame(np.array([[0.0, 1.0, 2.0, 4.0]]), spec).reshape(-1).tolist() == [0, 64, 128, 255]


# ------------------------------------------------------------------ train → export → calibrate → run


def alerts_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_bundle_records_the_signal_and_calibration_sees_the_device_scores(signal_bundle):
    manifest = json.loads((signal_bundle / "bundle.json").read_text())
    assert manifest["signal"]["length"] == LENGTH and manifest["signal"]["normalise"] == "minmax"
    assert manifest["model"]["quantization"] == "int8" and manifest["preprocessing"]["width"] == LENGTH
    assert manifest["metrics"]["image_auroc"] == 1.0
    # the windows' scores, for the drift watch and the page's sensitivity dial
    assert len((signal_bundle / "report" / "scores.csv").read_text().splitlines()) == 1 + 29


def test_run_on_a_signal_file_alerts_on_the_abnormal_windows_only(signal_bundle, signals, tmp_path):
    result = run_edge_in_process(
        "run", "--bundle", signal_bundle, "--signal", signals["test"], "--out", tmp_path, "--metrics-every", "0"
    )
    assert result.returncode == 0, result.stderr
    alerts = alerts_of(result.stdout)
    # lines 21-29 of the file hold the abnormal windows (label 2)
    assert sorted(a["source"] for a in alerts) == sorted(f"test.txt:{n}" for n in range(21, 30))
    assert all(a["score"] > a["threshold"] for a in alerts)
    plot = cv2.imread(alerts[0]["annotated"])
    assert plot is not None and plot.ndim == 3 and plot.shape[1] > plot.shape[0]  # a plot, not a 1-pixel strip


def test_windows_and_samples_on_stdin(signal_bundle, signals, tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    lines = [" ".join(f"{v:.4f}" for v in w) for w in normal_windows(2, rng)]
    lines.append("12 oops 3")  # a garbled line: skipped and said, not the end
    lines += [f"{v:.4f}" for v in abnormal_windows(1, rng)[0]]  # the same abnormal window, one sample a line
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))  # what a pipe into `edge run` gives
    result = run_edge_in_process("run", "--bundle", signal_bundle, "--signal", "-", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "stdin line 3: 'oops' is not a number" in result.stderr
    assert [a["source"] for a in alerts_of(result.stdout)] == [f"stdin:{3 + LENGTH}"]
    assert '"frames": 3' in result.stderr and '"skipped": 1' in result.stderr


def test_serial_port_streaming_samples(signal_bundle, tmp_path):
    pytest.importorskip("serial")
    master, slave = os.openpty()
    port = os.ttyname(slave)
    # One continuous sine, 2 cycles per window as in training, repeating every 3 windows without a
    # seam, with a spike once per repeat: wherever the reader's first window starts (the port opens
    # at any point of the stream), one window in three holds the spike (two when it straddles).
    k = np.arange(3 * LENGTH)
    stream = 10 + 3.0 * np.sin(2 * np.pi * k / (LENGTH / 2) + 0.3)
    stream[LENGTH + 20 : LENGTH + 22] += 12.0
    stop = threading.Event()

    def microcontroller():  # prints one sample per line, over and over, until the run has its windows
        while not stop.is_set():
            for v in stream:
                os.write(master, f"{v:.4f}\r\n".encode())
            stop.wait(0.05)

    writer = threading.Thread(target=microcontroller, daemon=True)
    writer.start()
    try:
        result = run_edge_in_process(
            "run", "--bundle", signal_bundle, "--serial", port, "--baud", "9600", "--max-frames", "6",
            "--out", tmp_path, "--metrics-every", "0",
        )  # fmt: skip
    finally:
        stop.set()
        writer.join(5)
        os.close(master)
        os.close(slave)
    assert result.returncode == 0, result.stderr
    assert '"frames": 6' in result.stderr
    alerts = alerts_of(result.stdout)
    # 6 windows, one spike in every 3 windows' worth of samples: 2 flagged, or up to 4 when spikes
    # straddle window edges or the first line was cut by the port opening; never most of them
    assert 1 <= len(alerts) <= 4 and all(a["source"].startswith(f"serial:{port}:") for a in alerts)


def test_eval_on_a_labelled_signal_file(signal_bundle, signals, tmp_path):
    out = tmp_path / "signal_quality.md"
    result = run_edge_in_process("eval", signal_bundle, "--data", signals["test"], "--out", out)
    assert result.returncode == 0, result.stderr
    assert "20 normal + 9 abnormal windows" in result.stdout
    row = next(line for line in out.read_text().splitlines() if line.startswith(f"| {signal_bundle}"))
    assert "| int8 | 1.0000 | 1.0000 |" in row


# ------------------------------------------------------------------ bad input: one line, non-zero exit


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "text, says",
    [
        ("1 2 3\n1 2\n", "line 2 has 2 values, line 1 has 3"),
        ("1 2 x\n", "'x' is not a number"),
        (" ".join(["1"] * 30) + "\n", "windows of 30 samples, but the bundle's model takes 64"),
    ],
    ids=["ragged rows", "not a number", "wrong length"],
)
def test_bad_signal_files(signal_bundle, tmp_path, text, says):
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    result = run_edge_in_process("run", "--bundle", signal_bundle, "--signal", bad, "--out", tmp_path / "out")
    assert says in one_line_error(result)
    assert not (tmp_path / "out").exists()  # refused before any output was made


def test_a_signal_bundle_refuses_a_video_and_a_missing_serial_port(signal_bundle, tmp_path):
    video = tmp_path / "x.mp4"
    video.write_bytes(b"")
    result = run_edge_in_process("run", "--bundle", signal_bundle, "--video", video, "--out", tmp_path / "o")
    assert "is a signal model" in one_line_error(result) and "not --video" in result.stderr
    result = run_edge_in_process(
        "run", "--bundle", signal_bundle, "--serial", tmp_path / "ttyUSB9", "--fail-fast", "--out", tmp_path / "o"
    )
    assert "serial port" in one_line_error(result) and "not found" in result.stderr


def test_an_image_bundle_refuses_a_signal(int8_model, synthetic_mvtec, signals, tmp_path):
    from calibration import calibrate

    image_bundle = calibrate(
        int8_model, synthetic_mvtec, method="quantile:0.99", out=tmp_path / "b", progress=False, log=lambda _m: None
    )
    result = run_edge_in_process("run", "--bundle", image_bundle.path, "--signal", signals["test"])
    assert "needs a signal bundle" in one_line_error(result) and "image model" in result.stderr


def test_conv1d_variant_takes_any_window_length():
    pytest.importorskip("tensorflow")
    from train.signal import SignalTrainConfig, build_signal_autoencoder

    model = build_signal_autoencoder(30, SignalTrainConfig(arch="conv1d", latent=4, filters=(4, 8)))
    assert model.output_shape == (None, 1, 30, 1)  # 30 is padded to 32 inside the model and cropped back


def test_bench_frames_and_snapshot_plot_fit_a_signal_strip(signal_bundle):
    # edge bench BUNDLE --size 140x1 feeds colour strips of the window's size; the plot takes them too
    from edge.bench.frames import synthetic_frames
    from edge.bundle import load_bundle
    from edge.signal_plot import signal_plot

    strips = synthetic_frames(LENGTH, 1)
    assert all(s.shape == (1, LENGTH, 3) for s in strips)
    raw, annotated = signal_plot(load_bundle(signal_bundle)).render(strips[0], 0.5, 0.1, "anomaly")
    assert raw.shape == annotated.shape and annotated.ndim == 3 and not np.array_equal(raw, annotated)


def test_recalibrating_a_signal_bundle_on_the_device_is_refused_plainly(signal_bundle, signals):
    result = run_edge_in_process("calibrate", "--from", signal_bundle, "--normal", signals["test"])
    assert "is a signal model" in one_line_error(result)


def test_a_serial_port_that_vanishes_is_waited_for_like_a_camera():
    pytest.importorskip("serial")
    import time

    from edge.signal_source import open_run_source
    from edge.sources import SourceConfig, WatchdogConfig

    master, slave = os.openpty()
    port = os.ttyname(slave)
    os.close(slave)  # the run holds its own; the path lives while the master is open
    lines: list[str] = []
    config = SourceConfig(serial=port, watchdog=WatchdogConfig(backoff_initial=0.1, backoff_max=0.2))
    source = open_run_source(config, SignalSpec(length=4), log=lines.append)
    received, closed = 0, False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("not found" in line for line in lines):
            if not closed:
                os.write(master, b"1 2 3 4\n")  # a window a line, until two have come through
            if source.poll(0.1) is not None:
                received += 1
            if received >= 2 and not closed:
                os.close(master)  # the microcontroller is unplugged: its port vanishes
                closed = True
        assert received >= 2 and closed
        assert any("SerialException" in line for line in lines)  # said, then reopened with backoff
        assert any(f"serial port {port} not found" in line for line in lines)
        assert not source.ended  # waited for, as a camera is (watchdog.max_reopens ends it)
    finally:
        source.close()
        if not closed:
            os.close(master)
