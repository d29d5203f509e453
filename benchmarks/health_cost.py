"""What the health and drift checks (edge/watch.py) cost per frame: issue 15's target is <= 1 ms per
640x480 frame on one core, the two together.

    .venv/bin/python benchmarks/health_cost.py [--frames 2000]

OpenCV held to one thread (the loop's own core). Frames are a real picture (the demo images, resized
to 640x480) with fresh sensor noise each, so the frozen check never short-cuts; the reference is
written from the same picture by calibration's own code, so every check runs (moved, exposure,
blur); drift gets a score per frame against the demo bundle's calibration scores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from calibration.health_reference import write_health_reference  # noqa: E402
from edge.bundle import load_bundle  # noqa: E402
from edge.drift import DriftConfig  # noqa: E402
from edge.health import HealthConfig  # noqa: E402
from edge.watch import Watch  # noqa: E402

DEMO = REPO / "edge" / "demo"


def frames(n: int) -> list[np.ndarray]:
    image = cv2.resize(cv2.imread(str(sorted(DEMO.glob("images/*.jpg"))[0])), (640, 480))
    rng = np.random.default_rng(0)
    return [cv2.add(image, rng.integers(0, 4, image.shape, dtype=np.uint8)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    bundle = load_bundle(DEMO / "bundle")
    video = frames(min(args.frames, 200))  # a few hundred distinct frames, cycled
    with tempfile.TemporaryDirectory() as tmp:
        cv2.imwrite(f"{tmp}/ref.png", video[0])
        write_health_reference(Path(tmp), [f"{tmp}/ref.png"])
        bundle.path = Path(tmp)  # the reference is read from here; the scores too
        (Path(tmp) / "report").symlink_to(DEMO / "bundle" / "report")
        watch = Watch.for_bundle(bundle, HealthConfig(), DriftConfig(), bundle.threshold, print)
    rng = np.random.default_rng(1)
    scores = rng.normal(bundle.threshold / 2, bundle.threshold / 10, args.frames)
    seconds = []
    for i in range(args.frames):
        start = time.perf_counter()
        watch.observe(video[i % len(video)], float(scores[i]), False, i / 30, "bench")
        seconds.append(time.perf_counter() - start)
    ms = np.array(seconds[50:]) * 1000  # the first frames pay the allocations
    print(
        f"health + drift per 640x480 frame, one OpenCV thread, {ms.size} frames: "
        f"median {np.median(ms):.3f} ms, mean {ms.mean():.3f} ms, p95 {np.percentile(ms, 95):.3f} ms, "
        f"p99 {np.percentile(ms, 99):.3f} ms; last state {watch.status()}"
    )


if __name__ == "__main__":
    main()
