"""A steady line for ten minutes with the real health and drift settings must raise no event (issue 15).

    nice -n 10 .venv/bin/python benchmarks/health_steady.py [--minutes 10] [--out /tmp/health-steady]

What a device does: normal frames of this camera (a demo image at 640x480 with fresh sensor noise
per frame, recorded as MJPG and decoded again, as a camera's frames are compressed) calibrate a new
version of the demo bundle on the device (`edge calibrate --from`: threshold, normal scores, health
reference); then `edge run` inspects a steady video of the same scene (other noise, looped) for
`--minutes` with the default `health:` and `drift:` settings (hold 3 s, frozen 5 s, drift window 500,
PSI level 0.25 held 300 s). Prints the events raised (there should be none), frames, fps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edge" / "demo"
SIZE = (640, 480)


def scene() -> np.ndarray:
    return cv2.resize(cv2.imread(str(sorted(DEMO.glob("images/*.jpg"))[0])), SIZE, interpolation=cv2.INTER_AREA)


def record(path: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    base = scene()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    for _ in range(count):
        writer.write(cv2.add(base, rng.integers(0, 6, base.shape, dtype=np.uint8)))
    writer.release()
    return path


def edge(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_cli", *map(str, args)], capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/health-steady"))
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    good = out / "collected" / "train" / "good"
    good.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(record(out / "calibration.avi", 100, seed=5)))
    for i in range(100):
        ok, frame = capture.read()
        if not ok:
            break
        cv2.imwrite(str(good / f"{i:03d}.png"), frame)
    history = out / "line1"
    if not history.exists():
        calibrated = edge("calibrate", "--from", DEMO / "bundle", "--normal", good, "--out", history, "--no-progress")
        if calibrated.returncode != 0:
            sys.exit(calibrated.stderr)
    video = record(out / "steady.avi", 300, seed=11)  # 30 s at 10 fps, looped
    run = edge(
        "run", "--bundle", history, "--video", video, "--loop", "--duration", args.minutes * 60,
        "--out", out / "run", "--threads", "1", "--metrics-every", "0", "--config", write_config(out),
    )  # fmt: skip
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"type"')]
    summary = next(json.loads(x[8:]) for x in run.stderr.splitlines() if x.startswith("summary "))
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "exit": run.returncode,
                "frames": summary["frames"],
                "fps": summary["fps"],
                "alerts": summary["alerts"],
                "events": [(e["type"], e["state"], e["since"]) for e in events],
            }
        )
    )


def write_config(out: Path) -> Path:
    config = out / "edge.yaml"
    config.write_text("sinks:\n  snapshots: false\n")  # health: and drift: as shipped
    return config


if __name__ == "__main__":
    main()
