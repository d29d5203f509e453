"""Does `edge collect` keep up with a 30 fps camera while it rejects duplicates?

Runs edge/collect.py's `collect` on a video with every frame examined (`--every 0`: the worst case,
each frame decoded, cropped, checked and compared with the saved ones) and reports frames per
second against decoding alone. Also prints what the defaults of edge/frame_quality.py rest on, on
the same video: the change between consecutive frames (the noise of a still scene against
`min_change`) and the sharpness ratio of the frames, sharp and blurred by 1 px (against
`min_sharpness`).

    .venv/bin/python benchmarks/collect_rate.py ../shared/datasets/conveyor-video/bottle-detection.mp4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge.collect import CollectConfig, collect
from edge.frame_quality import change, sharpness, signature
from edge.sources import SourceConfig


def decode_rate(video: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(video))
    n, start = 0, time.perf_counter()
    while cap.read()[0]:
        n += 1
    cap.release()
    return n, n / (time.perf_counter() - start)


def collect_rate(video: Path, repeats: int) -> list[dict]:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            config = CollectConfig(source=SourceConfig(video=str(video)), out=Path(tmp) / "data", every_seconds=0)
            runs.append(collect(config, log=lambda _m: None).to_dict())
    return runs


def still_scene_changes(video: Path, width: int = 32) -> np.ndarray:
    """Change (grey levels) between each frame and the next, as the duplicate check measures it."""
    cap = cv2.VideoCapture(str(video))
    changes, previous = [], None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        sig = signature(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), None, width)
        if previous is not None:
            changes.append(change(sig, previous))
        previous = sig
    cap.release()
    return np.array(changes)


def sharpness_ratios(video: Path, every: int = 10) -> tuple[np.ndarray, np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    sharp, blurred, i = [], [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        i += 1
        if i % every:
            continue
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        sharp.append(sharpness(grey, None))
        blurred.append(sharpness(cv2.GaussianBlur(grey, (0, 0), 1.0), None))
    cap.release()
    return np.array(sharp), np.array(blurred)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frames, decode_fps = decode_rate(args.video)
    print(f"{args.video.name}: {frames} frames; decoding alone {decode_fps:.0f} fps")
    for run in collect_rate(args.video, args.repeats):
        print(
            f"collect --every 0: {run['fps']:.0f} fps, saved {run['saved']}, skipped {run['skipped']} "
            f"({run['frames']} frames in {run['seconds']:.2f} s)"
        )
    changes = still_scene_changes(args.video)
    q = np.percentile(changes, [10, 25, 50, 75, 90, 99])
    print(
        "change between consecutive frames (grey levels), p10 p25 p50 p75 p90 p99: " + " ".join(f"{v:.2f}" for v in q)
    )
    sharp, blurred = sharpness_ratios(args.video)
    print(
        f"sharpness ratio: frames min {sharp.min():.2f} median {np.median(sharp):.2f}; "
        f"blurred 1 px: median {np.median(blurred):.2f} max {blurred.max():.2f}"
    )


if __name__ == "__main__":
    main()
