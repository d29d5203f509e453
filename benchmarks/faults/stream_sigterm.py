"""Exit status of `edge run` (demo bundle) on SIGTERM, and at --duration, for every source kind:
video file (looped), image folder, HTTP MJPEG stream, RTSP stream. systemd acts on it: 0 expected.

    .venv/bin/python benchmarks/faults/stream_sigterm.py --runs 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from stream_common import DEMO_BUNDLE, REPO, EdgeRun, make_server, table

sys.path.insert(0, str(REPO / "tests"))
from synthetic import write_images, write_video  # noqa: E402


def source_args(kind: str, tmp: Path, servers: dict) -> list[str]:
    if kind == "video":
        return ["--video", str(write_video(tmp / "line.avi", 30, set())), "--loop"]
    if kind == "images":
        if not (tmp / "frames").exists():
            write_images(tmp / "frames", 400, seed=1)
        return ["--images", str(tmp / "frames")]
    return ["--url", servers[kind].url]


def statuses(kind: str, runs: int, how: str, tmp: Path, servers: dict) -> list[int]:
    out = []
    for i in range(runs):
        limit = ["--duration", "4"] if how == "duration" else []
        run = EdgeRun("--bundle", DEMO_BUNDLE, *source_args(kind, tmp, servers), *limit, "--out", tmp / f"o{i}")
        if how == "SIGTERM":
            run.wait_for("alerts to:", 60)
            time.sleep(3.0)
            out.append(run.terminate())
        else:
            out.append(run.wait(90))
        if "FATAL" in run.stderr:
            out[-1] = f"{out[-1]} (FATAL)"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    servers = {"mjpeg": make_server("mjpeg").start(), "rtsp": make_server("rtsp").start()}
    rows = []
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            for kind in ["video", "images", "mjpeg", "rtsp"]:
                for how in ["SIGTERM", "duration"] if kind in servers else ["SIGTERM"]:
                    got = statuses(kind, args.runs, how, tmp, servers)
                    rows.append([kind, how, " ".join(map(str, got)), "yes" if all(s == 0 for s in got) else "NO"])
    finally:
        for server in servers.values():
            server.stop()
    table(["source", "stopped by", "exit statuses", "all 0"], rows)


if __name__ == "__main__":
    main()
