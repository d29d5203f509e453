"""Health of the picture and drift of the scores (issue 15), on recorded shifts.

Each shift is a real video written by OpenCV (MJPG) and decoded again, so the checks see codec
noise as a camera's would: a brightness ramp, a 5 % view shift, growing blur, a frozen stretch, and
a steady video that must raise nothing. The watch runs on video time (10 fps) with short settings.
tests/test_health_run.py checks what a user of `edge run` sees.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.health_reference import write_health_reference
from edge.drift import DriftConfig, DriftWatch
from edge.health import HealthConfig, HealthReference, HealthWatch

DEMO = Path(__file__).resolve().parents[1] / "edge" / "demo"
FPS = 10
SIZE = (320, 240)
SHORT = HealthConfig(hold_seconds=1.0, frozen_seconds=2.0)  # 10 frames to settle, 20 identical: frozen


def scene() -> np.ndarray:
    return cv2.resize(cv2.imread(str(sorted(DEMO.glob("images/*.jpg"))[0])), SIZE, interpolation=cv2.INTER_AREA)


def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Sensor noise: a live camera never sends the same picture twice.
    return cv2.add(image, rng.integers(0, 6, image.shape, dtype=np.uint8))


def shifted(image: np.ndarray, fraction: float) -> np.ndarray:
    move = np.float32([[1, 0, fraction * image.shape[1]], [0, 1, 0]])
    return cv2.warpAffine(image, move, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)


def record(path: Path, frames: list[np.ndarray]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def decoded(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def shift_videos(rng: np.random.Generator) -> dict[str, tuple[list[np.ndarray], str | None]]:
    """Each recorded shift: its frames (60: 6 s at 10 fps, the first 20 steady) and the event it must raise."""
    base = scene()
    steady = [noisy(base, rng) for _ in range(20)]
    ramp = [noisy(cv2.convertScaleAbs(base, alpha=1, beta=3 * i), rng) for i in range(40)]
    moved = [noisy(shifted(base, 0.05), rng) for _ in range(40)]
    blurred = [noisy(cv2.GaussianBlur(base, (0, 0), 0.1 + i / 8), rng) for i in range(40)]
    frozen = [steady[-1]] * 40
    return {
        "steady": (steady + [noisy(base, rng) for _ in range(40)], None),
        "brightness ramp": (steady + ramp, "exposure"),
        "view shift 5 %": (steady + moved, "moved"),
        "growing blur": (steady + blurred, "blur"),
        "frozen stretch": (steady + frozen, "frozen"),
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("health")
    reference = folder / "calibration.png"
    cv2.imwrite(str(reference), noisy(scene(), np.random.default_rng(9)))
    write_health_reference(folder / "bundle", [reference])
    videos = {
        name: (record(folder / f"{i}.avi", frames), expected)
        for i, (name, (frames, expected)) in enumerate(shift_videos(np.random.default_rng(0)).items())
    }
    return folder / "bundle", videos


def watch_video(video: Path, bundle: Path) -> list:
    watch = HealthWatch(SHORT, HealthReference.load(bundle), source=video.name)
    events = [watch.observe(frame, i / FPS) for i, frame in enumerate(decoded(video))]
    return [e for e in events if e is not None]


@pytest.mark.parametrize("name", ["steady", "brightness ramp", "view shift 5 %", "growing blur", "frozen stretch"])
def test_each_recorded_shift_raises_its_own_event_and_a_steady_video_none(recorded, name):
    bundle, videos = recorded
    video, expected = videos[name]
    events = watch_video(video, bundle)
    if expected is None:
        assert events == []
        return
    assert events, f"{name}: no event"
    first = events[0].to_dict()
    assert first["type"] == "health" and first["state"] == expected and first["previous"] == "ok"
    assert first["advice"] and first["since"]
    # Within the configured time: the change starts at frame 20 (2 s); hold 1 s (frozen: 2 s more).
    assert first["since"] <= "1970-01-01T00:00:05"


def test_a_bundle_without_the_reference_runs_the_other_checks_and_says_which_are_off():
    watch = HealthWatch(HealthConfig(hold_seconds=0), None)
    assert [c.split(" ")[0] for c in watch.checks_off()] == ["moved", "blur", "exposure"]
    black = np.zeros((240, 320, 3), np.uint8)
    event = watch.observe(black, 0.0)
    assert event is not None and event.state == "covered"


def calibration_scores(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(1.0, 0.1, 2000)


def run_drift(scores: np.ndarray, config: DriftConfig, fps: float = 10) -> list:
    watch = DriftWatch(config, calibration_scores(np.random.default_rng(1)), threshold=1.3)
    events = [watch.observe(float(s), False, i / fps) for i, s in enumerate(scores)]
    return [(i, e) for i, e in enumerate(events) if e is not None]


def test_scores_that_shift_raise_a_drift_event_after_the_configured_time():
    rng = np.random.default_rng(2)
    config = DriftConfig(window=200, hold_seconds=10.0)
    scores = np.concatenate([rng.normal(1.0, 0.1, 600), rng.normal(1.2, 0.1, 900)])  # shift at 60 s
    events = run_drift(scores, config)
    assert len(events) == 1
    index, event = events[0]
    d = event.to_dict()
    assert d["type"] == "drift" and d["state"] == "drift" and d["previous"] == "ok"
    assert d["detail"]["psi"] > config.level
    assert d["detail"]["false_alarm_rate"] > d["detail"]["calibration_false_alarm_rate"]
    assert "recalibrate" in d["advice"] and "review" in d["advice"]
    # Not before the level was passed for hold_seconds; soon after (the window fills in 20 s at most).
    crossed_at = index / 10 - config.hold_seconds
    assert 60 <= crossed_at <= 80 and d["since"] == f"1970-01-01T00:01:{crossed_at - 60:06.3f}+00:00"


def test_steady_scores_raise_no_drift_event():
    rng = np.random.default_rng(3)
    assert run_drift(rng.normal(1.0, 0.1, 3000), DriftConfig(window=200, hold_seconds=10.0)) == []


def test_drift_is_over_when_the_scores_come_back():
    rng = np.random.default_rng(4)
    scores = np.concatenate([rng.normal(1.0, 0.1, 300), rng.normal(1.3, 0.1, 600), rng.normal(1.0, 0.1, 900)])
    events = run_drift(scores, DriftConfig(window=200, hold_seconds=5.0))
    assert [e.state for _, e in events] == ["drift", "ok"]
