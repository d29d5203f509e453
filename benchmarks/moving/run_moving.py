"""Parts that move: the feature model (per-cell Gaussian) against the memory model on a rendered conveyor.

    nice -n 10 .venv/bin/python benchmarks/moving/run_moving.py [--work /tmp/edge-moving] [--seed 0]

1. render (benchmarks/moving/scene.py, seeded; nothing is committed): WORK/data/train (150 good
   frames), WORK/data/calibrate (60 good frames, held out), WORK/data/test/good (100) and three
   anomaly folders, test/foreign (50: an orange scrap on the belt), test/no_hole (25) and
   test/broken (25) (defective parts), MVTec layout so `edge eval` reads it; and WORK/belt.mp4, a
   belt moving past the camera with parts riding on it and now and then a scrap or a defective
   part, with WORK/belt_labels.csv (per frame: 1 an anomaly is in view, 0 none, -1 one is at the
   frame's edge: not counted);
2. for each of `features` and `memory`, the CLI with its defaults: `edge train autoencoder`,
   `edge export` (int8 and float32), `edge calibrate --method fpr:0.05` on the held-out good
   frames, `edge eval` (image AUROC, recall at 5 % FPR, both quantizations), `edge run --video`
   (alerts on good vs anomalous frames) and `edge bench` (per-frame invoke);
3. as a user at a line would (`video_scenario`, alone with --video-only): both models trained and
   calibrated on decoded frames of a recorded good run (WORK/belt_good.mp4), `edge eval` on the test
   video's decoded frames and `edge run` on the video;
4. writes WORK/report.md (WORK/report_video.md with --video-only): every figure with its command.
Results: benchmarks/results/quality_moving.md.

Each step is skipped when its output exists, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
EDGE = [sys.executable, "-m", "edge_cli"]
SIZE = 256  # rendered frame side; the models' default input too
ARCHS = ("features", "memory")

from benchmarks.moving.scene import ANOMALIES, Part, belt, draw_foreign, draw_part, render  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_folder(folder: Path, rng: np.random.Generator, n: int, anomaly: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{anomaly or 'good'}_{i:03d}.png"), render(rng, SIZE, anomaly))


def render_stills(data: Path, seed: int) -> None:
    if (data / "test").is_dir():
        return
    rng = np.random.default_rng(seed)
    write_folder(data / "train", rng, 150)
    write_folder(data / "calibrate", rng, 60)
    write_folder(data / "test" / "good", rng, 100)
    for anomaly, n in zip(ANOMALIES, (50, 25, 25), strict=True):
        write_folder(data / "test" / anomaly, rng, n, anomaly)


def render_video(
    path: Path, labels: Path, seed: int, seconds: float = 40.0, fps: int = 15, anomalies: bool = True
) -> None:
    """Parts enter at the left and ride the belt to the right; every ~5th thing on it is an anomaly (if asked)."""
    if path.is_file() and labels.is_file():
        return
    rng = np.random.default_rng(seed + 1)
    speed = SIZE / (3.0 * fps)  # a part crosses the frame in 3 s
    things: list[dict] = []  # {"x", "y", "angle", "kind"}; kind "" good, or one of ANOMALIES
    next_spawn = 0.0
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (SIZE, SIZE))
    rows = []
    for frame in range(int(seconds * fps)):
        if frame >= next_spawn:
            kind = str(rng.choice(ANOMALIES)) if anomalies and rng.random() < 0.2 and frame > 3 * fps else ""
            things.append(
                {"x": -0.2 * SIZE, "y": SIZE * rng.uniform(0.2, 0.8), "angle": rng.uniform(0, 180), "kind": kind}
            )
            next_spawn = frame + rng.uniform(0.9, 1.8) * fps
        image = belt(SIZE, frame * speed, rng)
        for t in things:
            if t["kind"] == "foreign":
                draw_foreign(image, t["x"], t["y"], SIZE, np.random.default_rng(int(t["angle"] * 1000)))
            else:
                draw_part(image, Part(t["x"], t["y"], t["angle"], t["kind"]), SIZE)
        writer.write(cv2.GaussianBlur(image, (3, 3), 0.6))
        rows.append((frame, _label(things)))
        for t in things:
            t["x"] += speed
        things = [t for t in things if t["x"] < 1.2 * SIZE]
    writer.release()
    with labels.open("w", newline="") as f:
        csv.writer(f).writerows([("frame", "anomaly"), *rows])


def _label(things: list[dict]) -> int:
    """1: an anomaly's centre is well inside the frame; -1: one is only partly in view; 0: none."""
    xs = [t["x"] for t in things if t["kind"]]
    if any(0.1 * SIZE <= x <= 0.9 * SIZE for x in xs):
        return 1
    return -1 if any(-0.15 * SIZE < x < 1.15 * SIZE for x in xs) else 0


def command(*args) -> str:
    return "edge " + " ".join(map(str, args))


def edge(*args) -> str:
    """Run the CLI, return its output; the command goes into the report as it was run."""
    log("$ " + command(*args))
    proc = subprocess.run([*EDGE, *map(str, args)], cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {command(*args)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def section(report: list[str], args: tuple, output: str, tail: int = 2500) -> None:
    """The command, then the end of its output, into the report."""
    report += ["", f"`{command(*args)}`", "", "```", output.strip()[-tail:], "```"]


def video_alerts(events: Path, labels: Path) -> dict:
    """Alerted frames among the good frames and among the anomalous ones (edge-of-frame ones left out)."""
    label = {int(r["frame"]): int(r["anomaly"]) for r in csv.DictReader(labels.open())}
    alerted = set()
    if events.is_file():
        for line in events.read_text().splitlines():
            event = json.loads(line)
            if "frame_index" in event:
                alerted.add(int(event["frame_index"]))
    good = [f for f, v in label.items() if v == 0]
    bad = [f for f, v in label.items() if v == 1]
    return {
        "good_frames": len(good),
        "good_alerted": sum(f in alerted for f in good),
        "anomalous_frames": len(bad),
        "anomalous_alerted": sum(f in alerted for f in bad),
    }


def make_bundles(
    arch: str,
    train: Path,
    normal: Path,
    run: Path,
    out: Path,
    method: str,
    report: list[str],
    quants: tuple[str, ...] = ("int8", "float32"),
) -> dict:
    """`edge train` (CLI defaults), `edge export` in each of `quants`, `edge calibrate`: {quant: bundle}."""
    if not (run / "run.json").is_file():
        args = ("train", "autoencoder", "--arch", arch, "--data", train, "--out", run)
        section(report, args, edge(*args), 800)
    bundles = {}
    for quant in quants:
        model = run / "export" / f"model_{quant}.tflite"
        if not model.is_file():
            args = ("export", run, "--quantize", quant)
            section(report, args, edge(*args), 400)
        bundles[quant] = out / f"bundle_{quant}"
        if not (bundles[quant] / "bundle.json").is_file():
            args = ("calibrate", model, "--normal", normal, "--method", method, "--out", bundles[quant])
            section(report, args, edge(*args, "--no-progress"), 600)
    return bundles


def run_arch(arch: str, work: Path, data: Path, report: list[str]) -> None:
    out = work / "out" / arch
    report += ["", f"## {arch}"]
    bundles = make_bundles(arch, data / "train", data / "calibrate", work / "runs" / arch, out, "fpr:0.05", report)
    args = ("eval", bundles["int8"], "--data", data, "--compare", bundles["float32"], "--out", out / "eval.md")
    section(report, args, edge(*args))
    events = out / "video"
    args = ("run", "--bundle", bundles["int8"], "--video", work / "belt.mp4", "--out", events, "--cooldown", "0")
    if not events.is_dir():
        edge(*args)
    counts = video_alerts(events / "events.jsonl", work / "belt_labels.csv")
    report += ["", f"`{command(*args)}`: alerts {json.dumps(counts)}"]
    args = ("bench", bundles["int8"], "--threads", "1", "--invokes", "200", "--frames", "10")
    section(
        report, args + ("--json", work / f"bench_{arch}.json"), edge(*args, "--json", work / f"bench_{arch}.json"), 3000
    )


def decode(video: Path, folders: dict[Path, list[int]]) -> None:
    """Write the decoded frames of `video` listed for each folder (what the camera delivered, codec and all)."""
    wanted = {i: folder for folder, frames in folders.items() for i in frames}
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            cv2.imwrite(str(wanted[index] / f"frame_{index:04d}.png"), frame)
        index += 1


def video_scenario(work: Path, seed: int, report: list[str]) -> None:
    """As a user at a line would: train and calibrate on frames of a recorded good run, then run the test video.

    WORK/belt_good.mp4 (30 s, good parts only): every 2nd frame of its first 20 s trains, every
    2nd of the last 10 s calibrates. The test video's decoded frames (label 0 good, 1 anomalous,
    edge-of-frame ones left out) go to WORK/video/test for `edge eval`; `edge run` plays the video.
    """
    data = work / "video"
    if not (data / "test").is_dir():
        render_video(work / "belt_good.mp4", work / "belt_good_labels.csv", seed + 2, seconds=30, anomalies=False)
        decode(
            work / "belt_good.mp4",
            {data / "train": list(range(0, 300, 2)), data / "calibrate": list(range(300, 450, 2))},
        )
        label = {int(r["frame"]): int(r["anomaly"]) for r in csv.DictReader((work / "belt_labels.csv").open())}
        decode(
            work / "belt.mp4",
            {
                data / "test" / "good": [f for f, v in label.items() if v == 0],
                data / "test" / "anomalous": [f for f, v in label.items() if v == 1],
            },
        )
    for arch in ARCHS:
        out = work / "out_video" / arch
        report += ["", f"## {arch}, trained and calibrated on the recorded good run"]
        bundles = make_bundles(
            arch, data / "train", data / "calibrate", work / "runs_video" / arch, out, "fpr:0.05", report, ("int8",)
        )
        args = ("eval", bundles["int8"], "--data", data, "--out", out / "eval.md")
        section(report, args, edge(*args))
        events = out / "video"
        args = ("run", "--bundle", bundles["int8"], "--video", work / "belt.mp4", "--out", events, "--cooldown", "0")
        if not events.is_dir():
            edge(*args)
        counts = video_alerts(events / "events.jsonl", work / "belt_labels.csv")
        report += ["", f"`{command(*args)}`: alerts {json.dumps(counts)}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge-moving"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=ARCHS)
    parser.add_argument("--video-only", action="store_true", help="only the recorded-good-run scenario")
    args = parser.parse_args()
    work: Path = args.work
    data = work / "data"
    render_stills(data, args.seed)
    render_video(work / "belt.mp4", work / "belt_labels.csv", args.seed)
    report = [f"# Parts that move (seed {args.seed})", "", f"`{' '.join(sys.argv)}`"]
    if not args.video_only:
        for arch in [args.only] if args.only else ARCHS:
            run_arch(arch, work, data, report)
    video_scenario(work, args.seed, report)
    name = "report_video.md" if args.video_only else "report.md"
    (work / name).write_text("\n".join(report) + "\n")
    log(f"→ {work / name}")


if __name__ == "__main__":
    main()
