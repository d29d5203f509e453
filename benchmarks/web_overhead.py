"""What `edge run --web` costs the inspection: loop throughput and process memory, with and without
the page open and streaming (issue 14's targets: >= 0.9x the throughput, <= 30 MB more memory).

    .venv/bin/python benchmarks/web_overhead.py [--seconds 20] [--bundle edge/demo/bundle]

Runs `edge run` on a 640x480 video of the demo images twice (--loop, --duration): once plain,
once with --web and a client that does what the page does (live JPEG at its capped rate, scores
twice a second, status once a second, alerts every 2 s) over loopback. Reads the run's own fps
from its summary line and samples its resident memory (/proc/PID/status VmRSS) every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from web_station import TOKEN, free_port  # noqa: E402


def video_640x480(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for image in sorted((REPO / "edge" / "demo" / "images").glob("*.jpg")):
        frame = cv2.resize(cv2.imread(str(image)), (640, 480), interpolation=cv2.INTER_AREA)
        for _ in range(5):
            writer.write(frame)
    writer.release()
    return path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def page_client(url: str, stop: threading.Event) -> None:
    """Polls like the page: live.jpg at 5/s, scores 2/s, status 1/s, alerts every 2 s."""
    every = {"api/live.jpg": 0.2, "api/scores": 0.5, "api/status": 1.0, "api/alerts?limit=10": 2.0}
    due = dict.fromkeys(every, 0.0)
    while not stop.is_set():
        now = time.monotonic()
        for path, period in every.items():
            if now >= due[path]:
                due[path] = now + period
                try:
                    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {TOKEN}"})
                    urllib.request.urlopen(req, timeout=5).read()
                except OSError:
                    pass
        time.sleep(0.02)


def one_run(bundle: Path, video: Path, seconds: float, web: bool, folder: Path) -> dict:
    args = [sys.executable, "-m", "edge_cli", "run", "--bundle", str(bundle), "--video", str(video), "--loop"]
    args += ["--duration", str(seconds), "--out", str(folder / ("web" if web else "plain")), "--metrics-every", "0"]
    port = free_port()
    if web:
        args += ["--web", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        args, cwd=REPO, env={**os.environ, "EDGE_WEB_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stop, peak = threading.Event(), [0.0]
    if web:
        time.sleep(3.0)  # imports and model load, then the page opens
        threading.Thread(target=page_client, args=(f"http://127.0.0.1:{port}/", stop), daemon=True).start()
    while process.poll() is None:
        try:
            peak[0] = max(peak[0], rss_mb(process.pid))
        except OSError:
            break
        time.sleep(0.2)
    stop.set()
    stderr = process.stderr.read().decode()
    summary = json.loads(next(line for line in stderr.splitlines() if line.startswith("summary "))[8:])
    return {"fps": summary["fps"], "frames": summary["frames"], "peak_rss_mb": round(peak[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bundle", type=Path, default=REPO / "edge" / "demo" / "bundle")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = video_640x480(folder / "line.avi")
        plain = one_run(a.bundle, video, a.seconds, False, folder)
        web = one_run(a.bundle, video, a.seconds, True, folder)
    ratio = web["fps"] / plain["fps"] if plain["fps"] else float("nan")
    print(
        json.dumps(
            {
                "plain": plain,
                "web": web,
                "fps_ratio": round(ratio, 3),
                "rss_added_mb": round(web["peak_rss_mb"] - plain["peak_rss_mb"], 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
