"""`edge collect` as a person uses it: a real (OpenCV-written, OpenCV-decoded) conveyor video in,
an MVTec AD folder out, every rejection counted; the real CLI through its entry point inside the
test process (a fresh interpreter per run costs ~1.2 CPU-s; the assertions read exit status, output
and the folder), and as a real subprocess where the process matters (SIGTERM, one bad-input case).

The video: a textured belt with sensor noise on every frame, textured parts riding across it,
a stretch where the belt stops (the same scene, fresh noise: near-duplicates), a few frames
repeated exactly (a frozen source), some blurred and some dark ones.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import EDGE, REPO, run_edge_case, run_edge_in_process

W, H = 128, 64
PART = 44
FPS = 30.0
DEMO_BUNDLE = REPO / "edge" / "demo" / "bundle"


def _belt(rng: np.random.Generator) -> np.ndarray:
    """A bright, finely textured belt (the same every frame: a camera looking at one place)."""
    texture = cv2.GaussianBlur(rng.normal(0, 25, (H, W)).astype(np.float32), (0, 0), 1.0)
    return np.clip(170 + texture, 0, 255).astype(np.float32)


def _part(rng: np.random.Generator) -> np.ndarray:
    """A dark textured part, different for each one (no two good parts look alike)."""
    texture = cv2.GaussianBlur(rng.normal(0, 30, (PART, PART)).astype(np.float32), (0, 0), 1.0)
    return np.clip(60 + texture, 0, 255).astype(np.float32)


def _scene(belt: np.ndarray, part: np.ndarray | None, x: int) -> np.ndarray:
    scene = belt.copy()
    if part is not None:
        x0, x1 = max(0, x), min(W, x + PART)
        if x1 > x0:
            y = (H - PART) // 2
            scene[y : y + PART, x0:x1] = part[:, x0 - x : x1 - x]
    return scene


class Video:
    """Frames of the conveyor, with what happens on each, written as MJPG .avi."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.belt = _belt(self.rng)
        self.frames: list[np.ndarray] = []
        self.kinds: list[str] = []

    def add(self, scene: np.ndarray, kind: str = "plain") -> None:
        noisy = np.clip(scene + self.rng.normal(0, 2.0, scene.shape), 0, 255).astype(np.uint8)
        if kind == "blurred":
            noisy = cv2.GaussianBlur(noisy, (0, 0), 2.5)
        elif kind == "dark":
            noisy = (noisy // 80).astype(np.uint8)  # lights off: 0..3
        self.frames.append(noisy)
        self.kinds.append(kind)

    def empty(self, n: int) -> None:
        for _ in range(n):
            self.add(self.belt)

    def part_passes(self, step: int = 6, specials: dict[int, str] | None = None) -> None:
        part = _part(self.rng)
        for i, x in enumerate(range(-PART, W + 1, step)):
            self.add(_scene(self.belt, part, x), (specials or {}).get(i, "plain"))

    def stopped(self, n: int) -> None:
        part = _part(self.rng)
        for _ in range(n):
            self.add(_scene(self.belt, part, (W - PART) // 2))

    def frozen(self, n: int) -> None:
        for _ in range(n):
            self.frames.append(self.frames[-1].copy())
            self.kinds.append("frozen")

    def write(self, path: Path) -> Path:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H), True)
        assert writer.isOpened(), "OpenCV cannot write MJPG video here"
        for frame in self.frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        writer.release()
        return path


@pytest.fixture(scope="module")
def line_video(tmp_path_factory) -> tuple[Path, Video]:
    """Moving parts (with 5 blurred and 4 dark frames among them), 3 frozen, a 60-frame stop."""
    video = Video(seed=1)
    video.empty(12)
    video.part_passes(specials={4: "blurred", 8: "blurred", 12: "blurred", 16: "blurred", 20: "blurred"})
    video.frozen(3)
    video.part_passes(specials={5: "dark", 6: "dark", 14: "dark", 15: "dark"})
    video.stopped(60)
    video.part_passes()
    video.empty(12)
    return video.write(tmp_path_factory.mktemp("collect") / "line.avi"), video


def summary_of(stderr: str) -> dict:
    lines = [line for line in stderr.splitlines() if line.startswith("summary ")]
    assert lines, stderr
    return json.loads(lines[-1].removeprefix("summary "))


def saved_images(out: Path) -> list[Path]:
    return sorted((out / "train" / "good").glob("*.png"))


def test_every_frame_from_a_video_in_mvtec_layout_with_each_rejection_counted(line_video, tmp_path):
    video_path, video = line_video
    out = tmp_path / "data"
    result = run_edge_in_process("collect", "--video", video_path, "--out", out, "--every", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "train" / "good")
    summary = summary_of(result.stderr)
    skipped = summary["skipped"]
    assert summary["frames"] == len(video.frames)
    assert skipped["frozen"] == 3
    assert skipped["blurred"] == 5
    assert skipped["underexposed"] == 4
    assert skipped["overexposed"] == 0
    # 60 frames of a stopped belt (fresh noise each): the first may be new, the rest are not
    assert skipped["duplicate"] >= 59
    assert summary["saved"] == len(video.frames) - sum(skipped.values())
    # the layout edge train reads: OUT/train/good/*.png and nothing else
    assert [p.name for p in out.iterdir()] == ["train"]
    assert [p.name for p in (out / "train").iterdir()] == ["good"]
    images = saved_images(out)
    assert len(images) == summary["saved"]
    first = cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED)
    assert first.shape == (H, W, 3)  # the full frame, in the source's colour
    assert "done: saved" in result.stderr and "duplicate" in result.stderr


def test_one_frame_per_interval_on_the_videos_clock_and_roi_at_training_size(line_video, tmp_path):
    video_path, video = line_video
    out = tmp_path / "data"
    args = ["--roi", "16,8,96,48", "--size", "32", "--color", "grey", "--every", "1"]
    result = run_edge_in_process("collect", "--video", video_path, "--out", out, *args)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stderr)
    seconds = len(video.frames) / FPS
    # one per second of video at most (the stop saves nothing new), at least one
    assert 1 <= summary["saved"] <= int(seconds) + 1
    for path in saved_images(out):
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape == (32, 32)


def test_part_trigger_saves_one_frame_per_part(tmp_path):
    video = Video(seed=3)
    video.empty(15)  # learned as the empty belt
    for _ in range(3):
        video.part_passes(step=8)
        video.empty(8)
    path = video.write(tmp_path / "parts.avi")
    out = tmp_path / "data"
    result = run_edge_in_process("collect", "--video", path, "--out", out, "--part-trigger")
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stderr)
    assert summary["parts"] == 3
    assert summary["saved"] == 3 == len(saved_images(out))


def test_count_stops_after_that_many(line_video, tmp_path):
    video_path, _ = line_video
    out = tmp_path / "data"
    result = run_edge_in_process("collect", "--video", video_path, "--out", out, "--every", "0", "--count", "4")
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stderr)
    assert summary["saved"] == 4 == len(saved_images(out))
    assert summary["stopped_by"] == "count"
    assert "saved 4/4" in result.stderr or "saved 4 to" in result.stderr


def test_a_bundle_sets_the_training_size_and_colour(line_video, tmp_path):
    video_path, _ = line_video
    out = tmp_path / "data"
    args = ["--bundle", DEMO_BUNDLE, "--count", "2"]
    result = run_edge_in_process("collect", "--video", video_path, "--out", out, *args)
    assert result.returncode == 0, result.stderr
    for path in saved_images(out):
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape == (256, 256)  # the demo bundle: 256x256 grey


def test_sigterm_keeps_what_was_saved_and_exits_0(line_video, tmp_path):
    video_path, _ = line_video
    config = tmp_path / "edge.yaml"
    config.write_text(f"source:\n  video: {video_path}\n  loop: true\n")  # never ends by itself
    out = tmp_path / "data"
    cmd = [*EDGE, "collect", "--config", str(config), "--out", str(out), "--every", "0", "--min-change", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(saved_images(out)) < 5:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    summary = summary_of(stderr)
    assert summary["stopped_by"] == "signal"
    assert summary["saved"] == len(saved_images(out)) >= 5
    for path in saved_images(out):  # every file whole
        assert cv2.imread(str(path)) is not None
    assert not list(out.rglob(".*.part"))


def test_edge_train_accepts_the_collected_folder(line_video, tmp_path):
    pytest.importorskip("tensorflow")
    video_path, _ = line_video
    out = tmp_path / "data"
    collected = run_edge_in_process("collect", "--video", video_path, "--out", out, "--every", "0", "--count", "12")
    assert collected.returncode == 0, collected.stderr
    args = ["--data", out, "--arch", "conv", "--size", "32", "--epochs", "1", "--out", tmp_path / "run"]
    trained = run_edge_in_process("train", "autoencoder", *args)
    assert trained.returncode == 0, trained.stderr
    assert "read 12 images" in trained.stderr
    assert (tmp_path / "run" / "model.keras").is_file()


def _class_folders(root: Path) -> None:
    for name in ("crack", "no_crack"):
        (root / name).mkdir(parents=True)
        cv2.imwrite(str(root / name / "a.png"), np.zeros((8, 8), np.uint8))


def _stray_file(root: Path) -> None:
    (root / "train" / "good").mkdir(parents=True)
    (root / "notes.txt").write_text("x")


@pytest.mark.parametrize(
    "prepare, extra, expected",
    [
        (_class_folders, [], "already holds 'crack'"),
        (_stray_file, [], "already holds 'notes.txt'"),
        (None, ["--every", "1", "--part-trigger"], "not both"),
        (None, ["--size", "big"], "--size 'big'"),
        (None, ["--roi", "100,0,64,64"], "lies outside the 128x64 frame"),
        (None, ["--mask", "no-such-mask.png"], "mask image not found"),
        (None, ["--color", "blue"], "must be grey or rgb"),
    ],
)
def test_bad_input_is_one_line_and_creates_nothing(line_video, tmp_path, prepare, extra, expected):
    video_path, _ = line_video
    out = tmp_path / "data"
    if prepare is not None:
        prepare(out)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_edge_in_process("collect", "--video", video_path, "--out", out, *extra)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


# Both in this process, "no source" also as a real `python -m edge_cli` process (the one real-process
# bad-input case of edge collect).
@pytest.mark.parametrize(
    "args, expected, real_process",
    [
        (["--video", "no-such.avi"], "video not found", False),
        ([], "no source", True),
    ],
)
def test_a_missing_source_is_one_line(tmp_path, args, expected, real_process):
    out = tmp_path / "data"
    result = run_edge_case("collect", *args, "--out", out, real_process=real_process, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not out.exists()
