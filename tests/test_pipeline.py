"""The device loop end to end: real videos (OpenCV), the real int8 TFLite model, real signals.

The bundle is the shared tiny int8 autoencoder with the max_blur score and a hand-set
threshold (0.1): on these synthetic frames good ones score below ~0.05 and a white square
above ~0.2, so which frames alert is known. Part-trigger runs use a stand-in detector whose
answer is the brightness of the part, because there the trigger, not the model, is under test.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge_case
from synthetic import good_image

from edge.alert import Alert
from edge.bundle import Manifest, ModelInfo, TensorSpec, Threshold, load_bundle, read_card, write_bundle
from edge.capture import Frame
from edge.decide import DecisionConfig, PartTriggerConfig
from edge.detector import Detection
from edge.metrics import Metrics, MetricsConfig
from edge.pipeline import Pipeline
from edge.scoring import ScoreConfig
from edge.sinks.snapshots import SnapshotStore as SnapshotWriter  # the snapshot folder edge run writes
from edge.sources import SourceConfig, WatchdogConfig, open_source
from edge.tiling import GeometryConfig, TilingConfig

THRESHOLD = 0.1
REPO = Path(__file__).resolve().parent.parent


def make_bundle(model: Path, out: Path, geometry: GeometryConfig | None = None) -> Path:
    from edge.model import TFLiteModel

    card = read_card(model)
    tflite = TFLiteModel(model)
    spec = lambda info: TensorSpec(**info.to_dict())  # noqa: E731
    manifest = Manifest(
        model=ModelInfo(
            file=model.name,
            sha256="",
            kind="autoencoder",
            quantization=card.quantization,
            input=spec(tflite.input),
            outputs=[spec(o) for o in tflite.outputs],
        ),
        preprocessing=card.preprocessing,
        score=ScoreConfig(kind="max_blur"),
        threshold=Threshold(value=THRESHOLD, method="hand-set for tests"),
        geometry=geometry,
    )
    write_bundle(out, manifest, model)
    return out


@pytest.fixture(scope="module")
def bundle_dir(int8_model, tmp_path_factory) -> Path:
    return make_bundle(int8_model, tmp_path_factory.mktemp("bundle") / "b")


def square_frame(rng, size=(64, 64), square: tuple[int, int] | None = None, side: int = 16) -> np.ndarray:
    """A good surface (BGR), with a white square at `square` (x, y) when given."""
    w, h = size
    image = cv2.resize(good_image(rng, max(w, h)), (w, h))
    if square is not None:
        x, y = square
        image[y : y + side, x : x + side] = 255
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


def write_square_video(path: Path, n: int, defects: dict[int, tuple[int, int]], size=(64, 64), side=16, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size, True)
    assert writer.isOpened()
    for i in range(n):
        writer.write(square_frame(rng, size, defects.get(i), side))
    writer.release()
    return path


class ListSink:
    name = "list"

    def __init__(self):
        self.alerts: list[Alert] = []

    def emit(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        pass


class BrokenSink:
    name = "broken"

    def emit(self, alert: Alert) -> None:
        raise ConnectionError("broker gone")

    def close(self) -> None:
        pass


def no_capture_threads_left() -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith(("edge-capture", "edge-watchdog"))]:
            return True
        time.sleep(0.05)
    return False


# -- video files, real model -----------------------------------------------------------------------


def test_defective_frames_of_a_video_raise_alerts_with_box_and_snapshots(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "belt.avi", 30, {8: (10, 12), 20: (40, 36)})
    sink, logs = ListSink(), []
    pipeline = Pipeline(
        load_bundle(bundle_dir), [sink], SnapshotWriter(tmp_path / "snaps"), num_threads=1, log=logs.append
    )
    summary = pipeline.run(open_source(video=str(video)))
    assert summary.frames == 30 and summary.inspected == 30 and summary.dropped == 0
    assert summary.stopped_by == "end of input"
    assert [a.frame_index for a in sink.alerts] == [8, 20]
    first = sink.alerts[0]
    assert (
        first.source == "belt.avi"
        and first.label == "anomaly"
        and first.threshold == THRESHOLD
        and first.score > THRESHOLD
    )
    x, y, w, h = first.box
    assert x <= 14 and y <= 16 and x + w >= 22 and y + h >= 24  # around the square at (10, 12)
    assert Path(first.snapshot).is_file() and Path(first.annotated).is_file()
    assert cv2.imread(first.snapshot).shape == (64, 64, 3)
    assert first.time.endswith("+00:00") and len(first.id) == 32
    assert logs == []
    assert no_capture_threads_left()


def test_tiling_finds_a_small_defect_that_shrinking_the_frame_loses(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "wide.avi", 6, {3: (120, 50)}, size=(160, 96), side=10)
    bundle = load_bundle(bundle_dir)
    runs = {}
    for name, geometry in (("shrunk", None), ("tiled", GeometryConfig(tiling=TilingConfig(overlap=0.25)))):
        sink, logs = ListSink(), []
        pipeline = Pipeline(bundle, [sink], num_threads=1, geometry=geometry, log=logs.append)
        summary = pipeline.run(open_source(video=str(video)))
        runs[name] = (summary, sink, logs)
    shrunk, tiled = runs["shrunk"][0], runs["tiled"][0]
    assert tiled.scores[3] > THRESHOLD and tiled.scores[3] > 2 * shrunk.scores[3]
    alerts = runs["tiled"][1].alerts
    assert [a.frame_index for a in alerts] == [3]
    x, y, w, h = alerts[0].box
    assert 114 <= x <= 120 and 44 <= y <= 50 and x + w >= 130 and y + h >= 60  # in frame pixels
    assert "differs from the calibrated none" in runs["tiled"][2][0]  # bundle was calibrated untiled


def test_the_health_checks_grey_copy_is_made_in_the_capture_thread(bundle_dir, tmp_path, monkeypatch):
    """The loop does source -> model -> score -> decide: the health checks' per-frame image work
    (a grey, shrunk copy of each frame) is done by the capture thread beside the model input; the
    loop only reads the small copy."""
    import edge.health
    import edge.pipeline
    from edge.health import HealthConfig, HealthWatch
    from edge.watch import Watch

    video = write_square_video(tmp_path / "v.avi", 12, {3: (20, 20)})
    made_in: list[str] = []
    real = edge.health.small_grey

    def spy(image, width):
        made_in.append(threading.current_thread().name)
        return real(image, width)

    monkeypatch.setattr(edge.health, "small_grey", spy)
    monkeypatch.setattr(edge.pipeline, "small_grey", spy, raising=False)
    pipeline = Pipeline(load_bundle(bundle_dir), [ListSink()], num_threads=1, log=lambda m: None)
    pipeline.watch = Watch(HealthWatch(HealthConfig()), None)
    summary = pipeline.run(open_source(video=str(video)))
    assert summary.inspected == 12
    assert len(made_in) >= 12 and all(name.startswith("edge-capture") for name in made_in), made_in
    assert "std" in pipeline.watch.health.last  # the checks ran on the copies


def test_model_input_is_prepared_in_the_capture_thread_with_the_same_scores(bundle_dir, tmp_path):
    # Tiled: the capture thread's tiles come from a reused buffer, and several frames wait in the
    # every-frame queue at once; each must keep its own input.
    video = write_square_video(tmp_path / "wide.avi", 12, {3: (120, 50), 9: (20, 30)}, size=(160, 96), side=10)
    bundle = load_bundle(bundle_dir)
    geometry = GeometryConfig(tiling=TilingConfig(overlap=0.25))
    cap = cv2.VideoCapture(str(video))
    images = [cap.read()[1] for _ in range(12)]
    cap.release()
    runs = {}
    for name in ("capture thread", "inspection loop"):
        sink = ListSink()
        pipeline = Pipeline(bundle, [sink], num_threads=1, geometry=geometry, log=lambda m: None)
        threads: list[str] = []
        original = pipeline._prepare_in_capture

        def spy(image, original=original, threads=threads):
            threads.append(threading.current_thread().name)
            return original(image)

        pipeline._prepare_in_capture = spy
        source = open_source(video=str(video)) if name == "capture thread" else ListSource(images)
        summary = pipeline.run(source)
        runs[name] = (summary, sink, threads)
    moved, inline = runs["capture thread"], runs["inspection loop"]
    assert len(moved[2]) == 12 and all(t.startswith("edge-capture") for t in moved[2])
    assert inline[2] == []  # a source without a capture thread: prepared in the loop, as before
    assert list(moved[0].scores) == pytest.approx(list(inline[0].scores), abs=1e-6)
    assert [a.frame_index for a in moved[1].alerts] == [a.frame_index for a in inline[1].alerts] == [3, 9]
    assert moved[0].stage_seconds["preprocess"] > 0  # still reported, timed where it ran
    assert no_capture_threads_left()


def test_bundle_geometry_applies_and_its_mask_is_found_in_the_bundle(int8_model, tmp_path, monkeypatch):
    mask = np.full((64, 64), 255, np.uint8)
    mask[:32] = 0  # top half ignored
    bundle_dir = make_bundle(int8_model, tmp_path / "masked", GeometryConfig(mask="mask.png"))
    cv2.imwrite(str(bundle_dir / "mask.png"), mask)
    video = write_square_video(tmp_path / "v.avi", 4, {1: (20, 4), 2: (20, 40)})
    sink, logs = ListSink(), []
    monkeypatch.chdir(tmp_path.parent)  # the mask path is relative to the bundle, not the working directory
    summary = Pipeline(load_bundle(bundle_dir), [sink], num_threads=1, log=logs.append).run(
        open_source(video=str(video))
    )
    assert [a.frame_index for a in sink.alerts] == [2]  # the square in the ignored half does not count
    assert summary.scores[1] < THRESHOLD and logs == []


def test_a_sink_that_raises_is_logged_and_the_others_still_get_every_alert(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "v.avi", 12, {2: (5, 5), 7: (30, 30)})
    sink, logs = ListSink(), []
    metrics = Metrics(MetricsConfig(every_seconds=0))
    pipeline = Pipeline(load_bundle(bundle_dir), [BrokenSink(), sink], num_threads=1, log=logs.append, metrics=metrics)
    summary = pipeline.run(open_source(video=str(video)))
    assert [a.frame_index for a in sink.alerts] == [2, 7]
    assert summary.sink_errors == 2 and metrics.alerts == 2
    assert (
        len(logs) == 2
        and logs[0].startswith("sink broken failed on alert")
        and "ConnectionError: broker gone" in logs[0]
    )


def test_the_gpio_reject_line_fires_before_snapshots_and_the_other_sinks(bundle_dir, tmp_path):
    pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory

    from edge.sinks.gpio import GpioSink

    factory = MockFactory()
    gpio = GpioSink(17, pulse_ms=5, pin_factory=factory)
    seen = []  # (what, pulses given by then, snapshot path known)

    class Witness(ListSink):
        def emit(self, alert: Alert) -> None:
            seen.append(("sink", gpio.pulses, alert.snapshot is not None))

    class WatchedSnapshots(SnapshotWriter):
        def write(self, alert, frame, annotated) -> None:
            seen.append(("snapshot", gpio.pulses, False))
            super().write(alert, frame, annotated)

    video = write_square_video(tmp_path / "v.avi", 12, {2: (5, 5), 7: (30, 30)})
    # configured last, pulsed first
    pipeline = Pipeline(
        load_bundle(bundle_dir),
        [Witness(), gpio],
        WatchedSnapshots(tmp_path / "snaps"),
        num_threads=1,
        log=lambda m: None,
    )
    summary = pipeline.run(open_source(video=str(video)))
    gpio.close()
    assert summary.alerts == 2 and gpio.pulses == 2
    assert seen == [("snapshot", 1, False), ("sink", 1, True), ("snapshot", 2, False), ("sink", 2, True)]
    assert True in [s.state for s in factory.pin(17).states]  # the pin really went high


def test_a_camera_that_dies_mid_stream_is_reopened_and_inspection_goes_on(bundle_dir, tmp_path):
    rng = np.random.default_rng(0)
    state = {"reads": 0, "opens": 0}

    class Camera:
        def read(self):
            state["reads"] += 1
            if state["reads"] == 6:
                raise OSError("VIDIOC_DQBUF: No such device")  # unplugged
            time.sleep(0.005)
            square = (20, 20) if state["reads"] == 12 else None
            return True, square_frame(rng, square=square)

        def release(self):
            pass

    def opener():
        state["opens"] += 1
        if state["opens"] == 2:
            raise RuntimeError("no such device yet")  # first retry: not back yet
        return Camera()

    logs: list[str] = []
    source = open_source(
        config=SourceConfig(camera=0, mode="every", watchdog=WatchdogConfig(backoff_initial=0.01, stall_seconds=1)),
        opener=opener,
        log=logs.append,
    )
    sink = ListSink()
    summary = Pipeline(load_bundle(bundle_dir), [sink], num_threads=1, log=logs.append).run(source, max_frames=20)
    assert summary.frames == 20 and summary.stopped_by == "max-frames"
    assert summary.reopens == 1 and state["opens"] == 3
    assert [a.frame_index for a in sink.alerts] == [10]  # the 12th read is the 11th frame delivered
    assert any("reopen failed" in line for line in logs)
    assert no_capture_threads_left()


def test_stop_ends_a_run_on_a_looping_video_and_the_capture_thread(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "v.avi", 10, {})
    pipeline = Pipeline(load_bundle(bundle_dir), [], num_threads=1, log=lambda m: None)
    source = open_source(config=SourceConfig(video=str(video), loop=True))
    timer = threading.Timer(0.5, pipeline.stop)
    timer.start()
    summary = pipeline.run(source)
    assert summary.stopped_by == "signal" and summary.frames > 10  # it looped until stopped
    assert no_capture_threads_left()


def test_max_frames_and_duration(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "v.avi", 10, {})
    bundle = load_bundle(bundle_dir)
    summary = Pipeline(bundle, [], num_threads=1).run(
        open_source(config=SourceConfig(video=str(video), loop=True)), max_frames=25
    )
    assert summary.frames == 25 and summary.stopped_by == "max-frames"
    summary = Pipeline(bundle, [], num_threads=1).run(
        open_source(config=SourceConfig(video=str(video), loop=True)), duration=0.3
    )
    assert summary.stopped_by == "duration" and summary.frames > 0


def test_metrics_lines_during_a_run(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "v.avi", 10, {})
    logs: list[str] = []
    metrics = Metrics(MetricsConfig(every_seconds=0.05), log=logs.append)
    source = open_source(config=SourceConfig(video=str(video), loop=True))
    Pipeline(load_bundle(bundle_dir), [], num_threads=1, metrics=metrics).run(source, duration=0.6)
    lines = [line for line in logs if line.startswith("metrics: ")]
    assert lines, logs
    assert all(" dropped 0 " in line and "model " in line and "total " in line for line in lines)


# -- part trigger (stand-in detector) ----------------------------------------------------------------


class PartBrightness:
    """Score = brightest pixel of the frame / 255: a part with a 250 spot is 'bad' at threshold 0.8."""

    label = "anomaly"
    score = None

    def detect(self, batch_u8):
        maps = batch_u8.astype(np.float32).mean(axis=3) / 255.0
        return Detection(maps.reshape(len(maps), -1).max(axis=1), maps)


class ListSource:
    name = "list"
    skipped = 0

    def __init__(self, images):
        self.images = images

    def frames(self):
        for i, image in enumerate(self.images):
            yield Frame(i, image, "belt", time.time())

    def close(self):
        pass


def belt(rng, part_level=None, spot=None):
    frame = np.clip(80 + rng.normal(0, 2, (64, 96)), 0, 255).astype(np.uint8)
    if part_level is not None:
        frame[16:48, 30:70] = part_level
        if spot is not None:
            frame[30:34, 50:54] = spot
    return frame


@pytest.mark.parametrize("pick", ["max", "first"])
def test_part_trigger_one_alert_per_bad_part(bundle_dir, pick):
    rng = np.random.default_rng(0)
    frames = [belt(rng) for _ in range(8)]  # 5 learned as the empty belt, 3 empty
    frames += [belt(rng, 150) for _ in range(4)] + [belt(rng) for _ in range(4)]  # good part (indices 8-11)
    frames += [belt(rng, 150, s) for s in (160, 230, 250, 240, 150)] + [belt(rng) for _ in range(4)]  # bad part (16-20)
    frames += [belt(rng, 150, s) for s in (250, 210)]  # bad part still in view at the end (indices 25-26)
    decision = DecisionConfig(part_trigger=PartTriggerConfig(learn_frames=5, leave_frames=2, pick=pick))
    bundle = load_bundle(bundle_dir)
    bundle.manifest.threshold.value = 0.8
    sink = ListSink()
    pipeline = Pipeline(bundle, [sink], decision=decision, detector=PartBrightness(), log=lambda m: None)
    summary = pipeline.run(ListSource(frames))
    expected = [18, 25] if pick == "max" else [17, 25]  # highest frame of each bad part, or its first bad one
    assert [a.frame_index for a in sink.alerts] == expected
    assert [a.extra["part"] for a in sink.alerts] == [2, 3]
    assert summary.parts == 3
    # Only frames with a part in view are scored: 4 + 5 + 2, plus the first empty frame after each
    # of the two parts that left (leave_frames=2: one quiet frame is not yet "gone").
    assert summary.inspected == 4 + 5 + 2 + 2 and summary.frames == 27


# -- the command line ---------------------------------------------------------------------------------


def test_cli_run_with_tiling_roi_and_metrics(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "wide.avi", 8, {5: (120, 50)}, size=(160, 96), side=10)
    result = run_edge_case(
        "run",
        "--bundle",
        str(bundle_dir),
        "--video",
        str(video),
        "--out",
        str(tmp_path / "out"),
        "--tile",
        "model",
        "--roi",
        "0,0,160,96",
        "--metrics-every",
        "0",
        "--threads",
        "1",
    )
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["frame_index"] for a in alerts] == [5]
    summary = json.loads(result.stderr.split("summary ", 1)[1].splitlines()[0])
    assert summary["frames"] == 8 and summary["stopped_by"] == "end of input"


# Every case inside this process; the first also as a real `python -m edge_cli` process.
@pytest.mark.parametrize(
    "args,message,real_process",
    [
        (["--roi", "1,2,3"], "--roi '1,2,3': give x,y,w,h", True),
        (["--tile", "big"], "--tile 'big': give 'model'", False),
        (["--mode", "sometimes"], "bad source options", False),
        (["--roi", "100,100,64,64"], "lies outside the 64x64 frame", False),
        (["--loop", "--images", "x"], "give exactly one source", False),
        (
            ["--prometheus-port", "{busy}", "--max-frames", "1"],
            "cannot serve Prometheus metrics on 127.0.0.1:{busy}",
            False,
        ),
    ],
)
def test_cli_bad_options_are_one_line_and_exit_2(bundle_dir, tmp_path, args, message, real_process):
    video = write_square_video(tmp_path / "v.avi", 3, {})
    with socket.socket() as busy:  # a port already taken, for the Prometheus case
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        args = [a.replace("{busy}", port) for a in args]
        message = message.replace("{busy}", port)
        result = run_edge_case(
            "run",
            "--bundle",
            str(bundle_dir),
            "--video",
            str(video),
            "--out",
            str(tmp_path / "out"),
            *args,
            real_process=real_process,
            timeout=120,
        )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_a_running_inspection_cleanly(bundle_dir, tmp_path):
    video = write_square_video(tmp_path / "v.avi", 10, {4: (10, 10)})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_cli",
            "run",
            "--bundle",
            str(bundle_dir),
            "--video",
            str(video),
            "--loop",
            "--out",
            str(tmp_path / "out"),
            "--threads",
            "1",
            "--metrics-every",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_alert = proc.stdout.readline()  # an alert line means frames are flowing
        assert json.loads(first_alert)["frame_index"] == 4
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping (signal received)" in err and "(signal)" in err
    events = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert len(events) == 1 + len(out.splitlines())  # every alert printed is also in the file
