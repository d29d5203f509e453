"""A recording replayed at the line's speed (`source.rate`): real videos written by OpenCV, no mocks.

What a plant engineer checks offline: a paced video comes at about the rate asked (counted over a
generous window, never timed), a model too slow for it drops frames and they are counted as behind
a camera, `mode: every` keeps them all, and a live source refuses a rate in one line.
"""

from __future__ import annotations

import re
import time

import pytest
from cli_helpers import run_edge_in_process
from synthetic import write_images, write_video

from edge.errors import EdgeError
from edge.sources import SourceConfig, open_source, source_from_options


def frames_for(source, seconds: float, hold: float = 0.0) -> list:
    """The frames a consumer taking `hold` seconds over each one gets in `seconds` (or until the end)."""
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = source.poll(0.05)
        if frame is not None:
            frames.append(frame)
            time.sleep(hold)
        elif source.ended:
            break
    return frames


def test_a_paced_video_comes_at_about_its_rate_and_keeps_it_across_a_loop(tmp_path):
    video = write_video(tmp_path / "line.avi", 5, set(), size=32)
    paced = open_source(config=SourceConfig(video=str(video), loop=True, rate=20))
    got = frames_for(paced, 1.0)
    paced.close()
    assert 5 <= len(got) <= 40, len(got)  # ~20: a loop every 5 frames did not reset the schedule
    assert paced.capture.loops >= 1

    unpaced = open_source(config=SourceConfig(video=str(video), loop=True))
    flood = frames_for(unpaced, 0.3)
    unpaced.close()
    assert len(flood) > 40, len(flood)  # more in a third of a second than the paced one in a whole one


def test_a_model_too_slow_for_the_rate_drops_frames_and_they_are_counted(tmp_path):
    video = write_video(tmp_path / "line.avi", 20, set(), size=32)
    source = open_source(config=SourceConfig(video=str(video), rate=50))  # mode auto
    got = frames_for(source, 10.0, hold=0.1)  # a 10 fps model behind a 50 fps camera
    source.close()
    assert source.mode == "latest"
    assert source.dropped > 0
    assert len(got) + source.dropped == 20  # every frame of the file either inspected or counted
    assert [f.index for f in got] == sorted(f.index for f in got)


def test_mode_every_with_a_rate_inspects_every_frame(tmp_path):
    write_images(tmp_path / "imgs", 8, seed=0)
    source = open_source(config=SourceConfig(images=str(tmp_path / "imgs"), rate=50, mode="every"))
    got = frames_for(source, 10.0, hold=0.03)
    source.close()
    assert len(got) == 8 and source.dropped == 0


def test_modes_with_a_rate():
    assert SourceConfig(video="a.avi", rate=25).effective_mode == "latest"
    assert SourceConfig(images="d", rate=25).effective_mode == "latest"
    assert SourceConfig(video="a.avi", rate=25, mode="every").effective_mode == "every"
    assert SourceConfig(signal="ecg.txt", rate=5).effective_mode == "every"  # as before: windows all count


@pytest.mark.parametrize(
    "options,says",
    [
        (dict(camera="0"), "a camera delivers at its own rate"),
        (dict(url="rtsp://user:secret@cam/stream"), "a stream delivers at its own rate"),
        (dict(gstreamer="videotestsrc ! appsink"), "a GStreamer pipeline"),
        (dict(picamera2=0), "a Raspberry Pi camera"),
        (dict(serial="/dev/ttyUSB0"), "a serial port"),
        (dict(signal="-"), "standard input"),
    ],
)
def test_a_live_source_refuses_a_rate_in_one_line(options, says):
    with pytest.raises(EdgeError) as caught:
        source_from_options(None, rate=25.0, **options)
    message = str(caught.value)
    assert "rate applies to a video file, an image folder or a signal file" in message and says in message
    assert "\n" not in message and "secret" not in message


def test_run_help_offers_the_rate_for_videos_and_image_folders(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    proc = run_edge_in_process("run", "--help")
    assert proc.returncode == 0, proc.stderr
    text = re.sub(r"[\s│]+", " ", proc.stdout)
    assert "With --video or --images: frames per second, as a camera would deliver them" in text
