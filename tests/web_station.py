"""A real `edge run --web` on a real video, for the page's tests (tests/test_web*.py).

The video is made of the demo images (magnetic tiles, good and defective) at the demo bundle's
input size, so scores fall where the bundle was calibrated; the bundle is copied, so the threshold
override the tests record lands beside the copy, never in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edge" / "demo"
TOKEN = "test-token-3f9a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_video(path: Path, size: int = 256, repeat: int = 2) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size, size))
    for image in sorted(DEMO.glob("images/*.jpg")):
        frame = cv2.resize(cv2.imread(str(image)), (size, size), interpolation=cv2.INTER_AREA)
        for _ in range(repeat):
            writer.write(frame)
    writer.release()
    return path


@dataclass
class Station:
    process: subprocess.Popen
    url: str
    out: Path
    bundle: Path
    stderr: Path

    def request(self, path: str, body: Optional[dict] = None, token: Optional[str] = TOKEN, timeout: float = 5):
        """(status, headers, body bytes) of a request to the page; HTTP errors are returned, not raised."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def answers(self) -> bool:
        try:
            return self.request("/", token=None)[0] == 200
        except (urllib.error.URLError, OSError):
            return False

    def json(self, path: str, body: Optional[dict] = None, token: Optional[str] = TOKEN):
        status, _, data = self.request(path, body, token)
        return status, json.loads(data)

    def wait_for(self, what, timeout: float = 10.0, every: float = 0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = what()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"not within {timeout} s: {getattr(what, '__name__', what)}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.stderr.read_text()


def start_station(folder: Path, extra_args: tuple = ()) -> Station:
    bundle = shutil.copytree(DEMO / "bundle", folder / "bundle")
    video = demo_video(folder / "line.avi")
    port = free_port()
    stderr = folder / "run.err"
    args = ["run", "--bundle", bundle, "--video", video, "--loop", "--out", folder / "out"]
    args += ["--web", f"127.0.0.1:{port}", "--cooldown-seconds", "0.3", "--threads", "1"]
    args += ["--rate", "25", *extra_args]  # a 25 fps line: what a person watches, not a flood of frames
    env = {**os.environ, "EDGE_WEB_TOKEN": TOKEN}
    with open(stderr, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge_cli", *map(str, args)],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    station = Station(process, f"http://127.0.0.1:{port}/", folder / "out", bundle, stderr)
    try:
        station.wait_for(lambda: "web page on" in stderr.read_text() or process.poll() is not None, timeout=30)
        assert process.poll() is None, stderr.read_text()
        # ready when the page answers (a clear failure here, not in the first request of a test)
        station.wait_for(station.answers, timeout=30)
    except BaseException:
        station.stop()
        raise
    return station
