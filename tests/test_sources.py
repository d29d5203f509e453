"""Sources: video files and image folders (real OpenCV), and a camera that dies and comes back.

The camera is the one thing mocked: a fake backend injected as the opener, which delivers,
raises, blocks, refuses to open, then recovers, so the watchdog can be watched at work.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from synthetic import write_images, write_video

from edge.capture import Capture, LatestMailbox, WatchdogConfig
from edge.errors import EdgeError
from edge.sources import SourceConfig, open_source, source_from_options

FAST = WatchdogConfig(stall_seconds=0.3, backoff_initial=0.01, backoff_max=0.05)


def collect(source, limit: int = 10_000, timeout: float = 20.0) -> list:
    """Frames until the source ends (or `limit`), with a deadline so a bug cannot hang the suite."""
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < limit and time.monotonic() < deadline:
        frame = source.poll(0.1)
        if frame is not None:
            frames.append(frame)
        elif source.ended:
            break
    return frames


# -- files and folders ---------------------------------------------------------------------------


def test_video_file_delivers_every_frame_in_order(tmp_path):
    video = write_video(tmp_path / "belt.avi", 25, set())
    source = open_source(video=str(video))
    time.sleep(0.2)  # a slow consumer must not lose frames of a file
    frames = collect(source)
    source.close()
    assert [f.index for f in frames] == list(range(25))
    assert source.mode == "every" and source.dropped == 0
    assert frames[0].source == "belt.avi" and frames[0].image.shape == (64, 64, 3)


def test_video_loop_starts_again(tmp_path):
    video = write_video(tmp_path / "short.avi", 10, set())
    source = open_source(config=SourceConfig(video=str(video), loop=True))
    frames = collect(source, limit=35)
    source.close()
    assert len(frames) == 35 and source.capture.loops == 3
    assert [f.index for f in frames] == list(range(35))


def test_image_folder_skips_unreadable_files_and_names_each_frame(tmp_path):
    write_images(tmp_path / "imgs", 4, seed=0)
    (tmp_path / "imgs" / "good_001.png").write_bytes(b"\x89PNG truncated")
    source = open_source(images=str(tmp_path / "imgs"))
    frames = [f for f in source.frames()]
    source.close()
    assert [f.source for f in frames] == ["good_000.png", "good_002.png", "good_003.png"]
    assert source.skipped == 1


def test_folder_of_only_unreadable_images_is_a_clear_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"nope")
    source = open_source(images=str(tmp_path / "bad"))
    with pytest.raises(EdgeError, match="none of the 1 images"):
        list(source.frames())
    source.close()


def test_empty_video_is_a_clear_error(tmp_path):
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(EdgeError, match="cannot open video|delivered no frames"):
        source = open_source(video=str(tmp_path / "empty.avi"))
        list(source.frames())


@pytest.mark.parametrize(
    "config,message",
    [
        (dict(video="missing.avi"), "video not found"),
        (dict(images="missing_dir"), "folder not found"),
        (
            dict(camera="/dev/v4l/by-id/usb-no-such-camera-video-index0", fail_fast=True),
            "camera /dev/v4l/by-id/usb-no-such-camera",
        ),
        (dict(picamera2=0), "Picamera2 is not installed"),
    ],
)
def test_sources_that_cannot_open_say_why(config, message):
    if "picamera2" in config:
        try:
            import picamera2  # noqa: F401

            pytest.skip("Picamera2 is installed here")
        except ImportError:
            pass
    with pytest.raises(EdgeError, match=message):
        open_source(config=SourceConfig(**config))


def test_gstreamer_without_support_in_opencv_is_a_clear_error():
    import cv2

    if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(EdgeError, match="built without GStreamer"):
        open_source(config=SourceConfig(gstreamer="videotestsrc ! appsink"))


@pytest.mark.parametrize(
    "config,message",
    [
        (dict(), "exactly one source"),
        (dict(camera=0, video="a.avi"), "got camera, video"),
        (dict(camera=0, loop=True), "loop applies to a video"),
        (dict(url="192.168.1.10/stream"), "scheme"),
        (dict(camera=0, fourcc="MJPEG"), "4 characters"),
        (dict(camera=0, colour=1), "Extra inputs"),
    ],
)
def test_source_config_refuses_bad_combinations(config, message):
    with pytest.raises(ValueError, match=message):
        SourceConfig(**config)


def test_modes_default_to_every_for_files_and_latest_for_live_sources():
    assert SourceConfig(video="a.avi").effective_mode == "every"
    assert SourceConfig(images="d").effective_mode == "every"
    assert SourceConfig(camera=0).effective_mode == "latest"
    assert SourceConfig(url="rtsp://cam/stream").effective_mode == "latest"
    assert SourceConfig(camera=0, mode="every").effective_mode == "every"


def test_command_line_source_replaces_the_config_file_source():
    base = SourceConfig(camera="/dev/v4l/by-id/cam", watchdog=WatchdogConfig(stall_seconds=9))
    merged = source_from_options(base, video="run.avi", loop=True, camera=None)
    assert merged.kind == "video" and merged.loop and merged.watchdog.stall_seconds == 9
    assert source_from_options(base, mode="every").camera == "/dev/v4l/by-id/cam"
    with pytest.raises(EdgeError, match="bad source options: .*loop applies"):
        source_from_options(base, loop=True)


def test_url_credentials_are_not_in_the_source_name():
    from edge.sources import source_name

    assert source_name(SourceConfig(url="rtsp://admin:secret@10.0.0.5:554/h264")) == "rtsp://***@10.0.0.5:554/h264"
    query = SourceConfig(url="http://cam/video?user=op&pwd=secret&ch=1")
    assert source_name(query) == "http://cam/video?user=***&pwd=***&ch=1"


# -- the camera that misbehaves (the one mock) ----------------------------------------------------


class FakeCamera:
    """A camera backend driven by a script shared between its openings.

    script: list of steps, consumed in order across reads and opens:
      "frame"  deliver a frame;  "fail" read returns False;  "raise" read raises OSError;
      "block"  read blocks until released;  "refuse" the next open fails.
    After the script, frames keep coming.
    """

    def __init__(self, script: list[str]):
        self.script = list(script)
        self.opens = 0
        self.released = 0
        self.unblock = threading.Event()
        self.lock = threading.Lock()
        self.counter = 0

    def _next(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "frame"

    def open(self):
        with self.lock:
            if self.script and self.script[0] == "refuse":
                self.script.pop(0)
                raise EdgeError("camera 0 not found")
            self.opens += 1
        return _FakeBackend(self)


class _FakeBackend:
    def __init__(self, camera: FakeCamera):
        self.camera = camera

    def read(self):
        step = self.camera._next()
        if step == "fail":
            return False, None
        if step == "raise":
            raise OSError("VIDIOC_DQBUF: No such device")
        if step == "block":
            self.camera.unblock.wait(30)
        time.sleep(0.002)  # a camera has a frame rate
        self.camera.counter += 1
        return True, np.full((8, 8), self.camera.counter % 256, np.uint8)

    def release(self):
        self.camera.released += 1


def fake_source(script, watchdog=FAST, mode="latest", logs=None):
    camera = FakeCamera(script)
    log = logs.append if logs is not None else (lambda m: None)
    config = SourceConfig(camera=0, mode=mode, watchdog=watchdog)
    return camera, open_source(config=config, opener=camera.open, log=log)


def test_camera_unplugged_and_plugged_back_is_reopened(tmp_path):
    logs: list[str] = []
    # 5 frames, the device goes away (read fails, then raises), two reopen attempts fail, it is back.
    camera, source = fake_source(["frame"] * 5 + ["fail", "refuse", "refuse"], logs=logs)
    frames = collect(source, limit=20)
    source.close()
    assert len(frames) == 20
    assert source.reopens == 1 and source.capture.reopen_failures == 2
    assert camera.opens == 2
    assert any("read failed; reopening" in line for line in logs)
    assert any("reopen failed (camera 0 not found)" in line for line in logs)
    assert any("reopened (reopen #1)" in line for line in logs)


def test_read_that_raises_is_survived():
    camera, source = fake_source(["frame", "raise", "frame", "raise"])
    frames = collect(source, limit=10)
    source.close()
    assert len(frames) == 10 and source.reopens == 2


def test_read_that_blocks_forever_is_abandoned_and_a_new_capture_opened():
    logs: list[str] = []
    camera, source = fake_source(["frame"] * 3 + ["block"], logs=logs)
    try:
        frames = collect(source, limit=10)
        assert len(frames) == 10
        assert source.reopens == 1
        assert any("no frame for 0.3 s (read blocked)" in line for line in logs)
        # the blocked read's frame, when it finally returns, is not delivered (it is stale)
        seen = {int(f.image[0, 0]) for f in frames}
        camera.unblock.set()
        time.sleep(0.1)
        later = collect(source, limit=5)
        assert all(int(f.image[0, 0]) not in seen for f in later)
    finally:
        camera.unblock.set()
        source.close()


def test_watchdog_gives_up_after_max_reopens_and_the_source_ends_cleanly():
    wd = WatchdogConfig(stall_seconds=0.3, backoff_initial=0.01, backoff_max=0.02, max_reopens=3)
    camera, source = fake_source(["frame", "fail"] + ["refuse"] * 10, watchdog=wd)
    frames = collect(source)
    assert len(frames) == 1 and source.ended
    assert "gave up after 3 reopen attempts" in source.error
    source.close()


def test_backoff_doubles_up_to_its_cap():
    logs: list[str] = []
    wd = WatchdogConfig(backoff_initial=0.01, backoff_max=0.04, stall_seconds=1)
    camera, source = fake_source(["fail"] + ["refuse"] * 4, watchdog=wd, logs=logs)
    collect(source, limit=3)
    source.close()
    waits = [
        float(line.rsplit(" in ", 1)[1].split()[0]) for line in logs if "next try" in line or "reopening in" in line
    ]
    assert waits == [0.01, 0.02, 0.04, 0.04, 0.04]  # first wait, then one per refused open


def test_stop_waits_for_a_blocked_read_only_as_long_as_the_driver_timeout():
    # A driver that ignores its timeout (this read blocks 30 s): stop() waits the timeout plus a
    # second, then leaves the thread behind and says so.
    wd = WatchdogConfig(stall_seconds=60, read_timeout_ms=300, open_timeout_ms=300)
    logs: list[str] = []
    camera, source = fake_source(["frame", "block"], watchdog=wd, logs=logs)
    collect(source, limit=1)
    time.sleep(0.1)
    t0 = time.monotonic()
    source.close()
    assert time.monotonic() - t0 < 3
    assert source.ended and source.capture.left_behind == 1
    assert any("still in the driver" in line for line in logs)
    camera.unblock.set()


def test_latest_frame_mode_drops_old_frames_and_counts_them():
    camera, source = fake_source([])
    source.start()
    time.sleep(0.3)  # the model is "busy": the camera keeps going
    frame = source.poll(1)
    source.close()
    read = source.capture.frames_read
    assert source.dropped >= 10
    assert frame.index >= source.dropped  # what we got is a recent frame, not the first one
    assert source.dropped + 1 <= read


def test_every_frame_mode_on_a_camera_drops_nothing():
    camera, source = fake_source([], mode="every")
    source.start()
    time.sleep(0.2)
    frames = collect(source, limit=30)
    source.close()
    assert [f.index for f in frames] == list(range(30)) and source.dropped == 0


def test_one_slot_mailbox_keeps_the_newest():
    box = LatestMailbox()
    for i in range(3):
        box.put(i, lambda: False)
    assert box.get(0.01) == 2 and box.dropped == 2
    assert box.get(0.01) is None


def test_capture_releases_the_backend_when_stopped_before_starting():
    camera = FakeCamera([])
    capture = Capture(camera.open, "fake", live=True)
    capture.stop()
    assert camera.released == 1


# -- a real network stream (FFmpeg over loopback HTTP) -------------------------------------------


@pytest.fixture
def stalling_http_video(tmp_path):
    """An HTTP server whose first response stops halfway and hangs (a stalled stream); later ones are whole."""
    import http.server

    data = write_video(tmp_path / "stream.avi", 40, set()).read_bytes()
    requests = []
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "video/x-msvideo")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if len(requests) == 1:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                release.wait(20)  # the stall
                return
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.avi", requests
    release.set()
    server.shutdown()
    server.server_close()


def test_a_stalled_network_stream_times_out_and_is_reopened(stalling_http_video):
    url, requests = stalling_http_video
    logs: list[str] = []
    wd = WatchdogConfig(stall_seconds=3, read_timeout_ms=1000, open_timeout_ms=2000, backoff_initial=0.05)
    source = open_source(config=SourceConfig(url=url, mode="every", watchdog=wd), log=logs.append)
    try:
        frames = collect(source, limit=35, timeout=30)
    finally:
        source.close()
    assert len(frames) == 35  # about 20 before the stall, the rest from the reopened stream
    assert source.reopens >= 1 and len(requests) >= 2
    assert frames[0].source == url and any("reopened" in line for line in logs)


def test_a_backend_that_raises_at_start_is_one_clear_error():
    def opener():
        raise RuntimeError("driver exploded")

    with pytest.raises(EdgeError, match=r"cannot open camera:0 \(RuntimeError: driver exploded\)"):
        open_source(config=SourceConfig(camera=0), opener=opener)
