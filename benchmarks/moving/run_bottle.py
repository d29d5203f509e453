"""Both feature models on the shared bottle video: a hand or a missing bottle is the anomaly.

    nice -n 10 .venv/bin/python benchmarks/moving/run_bottle.py [--work /tmp/edge-bottle]

/work/shared/datasets/conveyor-video/bottle-detection.mp4 (intel-iot-devkit/sample-videos, CC BY 4.0):
40 s at ~30 fps, a fixed camera, three bottles standing in a row; a hand takes them away and puts
them back. The bottles do not move: a scene where WHERE things are is the point (a missing bottle
is only anomalous by its place), the opposite of a belt. Labelled roughly, by eye from one
thumbnail per second, leaving half a second or more around every change: good (three bottles, no
hand) in 0-5 s, 29-31 s and 37-40 s; a hand or a missing bottle in 6.7-27.5 s and 31.5-36.5 s.
Train on 0-5 s (every 2nd frame), calibrate (fpr:0.05) on 29-31 s, test good on 37-40 s and the
anomalous stretches every 10th frame; `edge eval` on int8 bundles. Writes WORK/report.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.moving.run_moving import ARCHS, edge, log, make_bundles, section  # noqa: E402

VIDEO = Path("/work/shared/datasets/conveyor-video/bottle-detection.mp4")
SPLITS = {  # folder: frame indices (~29.8 fps)
    "train": range(0, 150, 2),
    "calibrate": range(865, 926, 2),
    "test/good": range(1104, 1189, 2),
    "test/hand_or_missing": [*range(200, 821, 10), *range(940, 1091, 10)],
}


def extract(video: Path, data: Path) -> None:
    if (data / "test").is_dir():
        return
    wanted = {i: folder for folder, frames in SPLITS.items() for i in frames}
    for folder in SPLITS:
        (data / folder).mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            cv2.imwrite(str(data / wanted[index] / f"frame_{index:04d}.png"), frame)
        index += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge-bottle"))
    args = parser.parse_args()
    data = args.work / "data"
    extract(args.video, data)
    report = ["# Bottle video", "", f"`{' '.join(sys.argv)}`"]
    for arch in ARCHS:
        report += ["", f"## {arch}"]
        out = args.work / "out" / arch
        bundles = make_bundles(
            arch, data / "train", data / "calibrate", args.work / "runs" / arch, out, "fpr:0.05", report, ("int8",)
        )
        cmd = ("eval", bundles["int8"], "--data", data, "--out", out / "eval.md")
        section(report, cmd, edge(*cmd))
    (args.work / "report.md").write_text("\n".join(report) + "\n")
    log(f"→ {args.work / 'report.md'}")


if __name__ == "__main__":
    main()
