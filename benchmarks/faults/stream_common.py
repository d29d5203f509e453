"""What the stream fault scripts share: the loopback servers of tests/stream_servers.py, a source read
in the background with its log lines timed, and a small table printer."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from stream_servers import EdgeRun, MjpegServer, RtspServer, free_port, rtsp_unavailable  # noqa: E402

from edge.capture import WatchdogConfig  # noqa: E402
from edge.sources import SourceConfig, open_source  # noqa: E402

DEMO_BUNDLE = REPO / "edge" / "demo" / "bundle"
__all__ = ["EdgeRun", "DEMO_BUNDLE", "Reading", "free_port", "make_server", "table", "WatchdogConfig"]


def make_server(kind: str, port: Optional[int] = None):
    """An MJPEG or RTSP server on loopback (not started); exits with the reason when RTSP cannot run."""
    if kind == "rtsp":
        reason = rtsp_unavailable()
        if reason:
            sys.exit(f"rtsp: {reason}")
        return RtspServer(port)
    return MjpegServer(port=port)


class Reading:
    """A stream source polled in a thread, as the inspection loop would: last frame time, timed log lines."""

    def __init__(self, url: str, watchdog: Optional[WatchdogConfig] = None):
        self.lines: list[tuple[float, str]] = []
        self.frames = 0
        self.last_frame = 0.0  # time.monotonic() of the last frame delivered
        config = SourceConfig(url=url, watchdog=watchdog or WatchdogConfig())
        self.source = open_source(config=config, log=lambda m: self.lines.append((time.monotonic(), m)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            if self.source.poll(0.05) is not None:
                self.frames += 1
                self.last_frame = time.monotonic()

    def first_frame_after(self, t: float, timeout: float) -> Optional[float]:
        """Seconds from `t` to the first frame delivered after it, or None within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.last_frame > t:
                return self.last_frame - t
            time.sleep(0.02)
        return None

    def first_line_after(self, t: float, text: str, timeout: float) -> Optional[float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.lines):
                if when > t and text in line:
                    return when
            time.sleep(0.02)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.source.close()


def table(header: list[str], rows: list[list]) -> None:
    """A Markdown table on stdout."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")
