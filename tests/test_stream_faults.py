"""Streams under faults, with the real parts on loopback: an HTTP MJPEG server (tests/stream_servers.py)
and gst-rtsp-server (Debian packages, run by the system python3), read by OpenCV's own FFmpeg.

What systemd and an operator see: the exit status on SIGTERM and at --duration for every source
kind, a frozen stream noticed within stall_seconds + 1 s, a stream down at start waited for (or
refused at once with fail_fast), and a video file cut short said so.

The RTSP tests skip when gst-rtsp-server is not installed, unless EDGE_REQUIRE_RTSP=1 (CI).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from stream_servers import EdgeRun, MjpegServer, RtspServer, free_port, rtsp_unavailable, wait_until
from synthetic import write_images, write_video

from edge.capture import WatchdogConfig
from edge.errors import EdgeError
from edge.sources import SourceConfig, open_source

DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "edge" / "demo" / "bundle"


@pytest.fixture(scope="module")
def rtsp_ok() -> None:
    reason = rtsp_unavailable()
    if reason is not None:
        if os.environ.get("EDGE_REQUIRE_RTSP"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def mjpeg():
    with MjpegServer() as server:
        yield server


@pytest.fixture
def rtsp(rtsp_ok):
    server = RtspServer().start()
    yield server
    server.stop()


def summary_of(run: EdgeRun) -> dict:
    line = next(line for _, line in reversed(run.lines) if line.startswith("summary "))
    return json.loads(line[len("summary ") :])


# -- the exit status (defect 1: stream runs aborted at exit, SIGABRT 134) --------------------------


def _source_args(kind: str, tmp_path: Path, request) -> list[str]:
    if kind == "video":
        return ["--video", str(write_video(tmp_path / "line.avi", 30, set())), "--loop"]
    if kind == "images":
        write_images(tmp_path / "frames", 400, seed=1)
        return ["--images", str(tmp_path / "frames")]
    return ["--url", request.getfixturevalue(kind).url]


@pytest.mark.parametrize("kind", ["video", "images", "mjpeg", "rtsp"])
def test_sigterm_ends_every_source_kind_with_exit_0(kind, tmp_path, request):
    run = EdgeRun("--bundle", DEMO_BUNDLE, *_source_args(kind, tmp_path, request), "--out", tmp_path / "out")
    try:
        assert run.wait_for("alerts to:") is not None, run.stderr
        assert wait_until(lambda: run.proc.poll() is not None, 2.0) is False, run.stderr  # still inspecting
        status = run.terminate()
    finally:
        run.wait(5)
    assert status == 0, run.stderr
    assert "FATAL" not in run.stderr and "(signal)" in run.stderr
    assert summary_of(run)["frames"] > 0


@pytest.mark.parametrize("kind", ["mjpeg", "rtsp"])
def test_a_stream_run_ends_at_its_duration_with_exit_0(kind, tmp_path, request):
    url = request.getfixturevalue(kind).url
    run = EdgeRun("--bundle", DEMO_BUNDLE, "--url", url, "--duration", "3", "--out", tmp_path / "out")
    status = run.wait(90)
    assert status == 0, run.stderr
    assert "FATAL" not in run.stderr and "(duration)" in run.stderr
    assert summary_of(run)["frames"] > 0


def capture_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("edge-capture", "edge-open"))]


@pytest.mark.parametrize("kind", ["mjpeg", "rtsp"])
def test_closing_a_stream_leaves_no_thread_inside_ffmpeg(kind, request):
    # The cause of the abort: a reader still inside FFmpeg's read() when the interpreter exits.
    # A slow stream (2 fps) keeps the reader blocked in read() when close() is called.
    server = MjpegServer(fps=2).start() if kind == "mjpeg" else request.getfixturevalue("rtsp")
    try:
        source = open_source(config=SourceConfig(url=server.url), log=lambda m: None)
        assert source.poll(10.0) is not None
        source.close()
        assert capture_threads() == []
    finally:
        server.stop()


# -- a frozen stream (defect 7: promised within stall_seconds + 1 s) ------------------------------

STALL = 1.5


def _noticed_after_last_frame(server) -> float:
    """Freeze the server; seconds from the last frame read to the watchdog's line; then it recovers."""
    lines: list[tuple[float, str]] = []
    # OpenCV's read timeout is longer than the stall setting: the watchdog itself must notice.
    wd = WatchdogConfig(stall_seconds=STALL, read_timeout_ms=20_000, open_timeout_ms=5000, backoff_initial=0.1)
    source = open_source(config=SourceConfig(url=server.url, watchdog=wd), log=lambda m: lines.append((time.time(), m)))
    try:
        last = [source.poll(10.0)]
        assert last[0] is not None, lines
        server.stall()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("no frame for" in m for _, m in lines):
            frame = source.poll(0.05)
            last[0] = frame or last[0]
        noticed = next(t for t, m in lines if "no frame for" in m)
        server.resume()
        assert wait_until(lambda: source.reopens >= 1 and source.poll(0.1) is not None, 30), lines
        return noticed - last[0].timestamp
    finally:
        source.close()


@pytest.mark.parametrize("kind", ["mjpeg", "rtsp"])
def test_a_frozen_stream_is_noticed_within_stall_seconds_plus_1(kind, request):
    server = request.getfixturevalue(kind)
    assert _noticed_after_last_frame(server) <= STALL + 1.0


# -- down at start (defect 8) ---------------------------------------------------------------------


def test_a_stream_down_at_start_is_waited_for_then_read():
    lines: list[str] = []
    server = MjpegServer(port=free_port())
    wd = WatchdogConfig(backoff_initial=0.1, backoff_max=0.5, open_timeout_ms=2000)
    source = open_source(config=SourceConfig(url=server.url, watchdog=wd), log=lines.append)
    try:
        assert source.poll(1.0) is None and not source.ended
        assert any("not there at start" in line for line in lines)
        server.start()
        assert wait_until(lambda: source.poll(0.1) is not None, 30), lines
        assert source.reopens == 1
    finally:
        source.close()
        server.stop()


def test_a_stream_down_at_start_with_fail_fast_is_one_clear_error():
    with pytest.raises(EdgeError, match="cannot open stream"):
        open_source(config=SourceConfig(url=f"http://127.0.0.1:{free_port()}/x.mjpg", fail_fast=True))


def test_a_stream_down_at_start_gives_up_after_max_reopens():
    wd = WatchdogConfig(backoff_initial=0.05, backoff_max=0.1, open_timeout_ms=1000, max_reopens=2)
    source = open_source(
        config=SourceConfig(url=f"http://127.0.0.1:{free_port()}/x.mjpg", watchdog=wd), log=lambda m: None
    )
    try:
        source.start()
        assert wait_until(lambda: source.ended, 30)
        assert "gave up after 2 reopen attempts" in source.error
    finally:
        source.close()


def test_edge_run_waits_for_a_stream_down_at_start_and_stops_cleanly(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    fail_fast = EdgeRun("--bundle", DEMO_BUNDLE, "--url", url, "--fail-fast", "--out", tmp_path / "a")
    assert fail_fast.wait(60) == 2 and "cannot open stream" in fail_fast.stderr
    waiting = EdgeRun("--bundle", DEMO_BUNDLE, "--url", url, "--out", tmp_path / "b")
    try:
        assert waiting.wait_for("not there at start") is not None, waiting.stderr
        assert waiting.wait_for("alerts to:") is not None, waiting.stderr
        status = waiting.terminate()
    finally:
        waiting.wait(5)
    assert status == 0, waiting.stderr


# -- a video file cut short (defect 9) ------------------------------------------------------------


def _cut(path: Path, keep: float, extra: int = 0) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[: int(len(data) * keep) + extra])
    return cut


def _write_ts(path: Path, frames: int) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MPEG-TS")
    for i in range(frames):
        writer.write(np.full((64, 64, 3), (i * 7) % 256, np.uint8))
    writer.release()
    return path


def _read_all(config: SourceConfig, lines: list[str]):
    source = open_source(config=config, log=lines.append)
    frames = list(source.frames())
    source.close()
    return source, frames


@pytest.mark.parametrize("container", ["avi", "ts"])
def test_a_video_cut_short_is_said_once_and_counted(container, tmp_path):
    whole = write_video(tmp_path / "line.avi", 60, set()) if container == "avi" else _write_ts(tmp_path / "l.ts", 60)
    lines: list[str] = []
    source, frames = _read_all(SourceConfig(video=str(whole)), lines)
    assert len(frames) == 60 and source.truncated == 0 and not lines
    source, frames = _read_all(SourceConfig(video=str(_cut(whole, 0.5, extra=77))), lines)
    assert 0 < len(frames) < 60 and source.truncated == 1
    assert len([line for line in lines if "cut short" in line]) == 1


def test_edge_run_over_a_cut_video_exits_0_with_one_line_and_the_count(tmp_path):
    cut = _cut(write_video(tmp_path / "line.avi", 40, set()), 0.5)
    run = EdgeRun("--bundle", DEMO_BUNDLE, "--video", cut, "--out", tmp_path / "out")
    assert run.wait(90) == 0, run.stderr
    assert len([line for _, line in run.lines if "cut short" in line]) == 1
    assert summary_of(run)["truncated"] == 1
