"""Real network streams on loopback for the source tests and the fault scripts.

* MjpegServer: HTTP multipart/x-mixed-replace JPEG frames (what most IP cameras and
  mjpg-streamer serve), in a thread of this process, with the faults a month beside a line brings:
  stop() (camera off: connections cut, port closed), start() again on the same port, stall()
  (connections stay open, nothing is sent: a frozen camera) and resume().
* RtspServer: gst-rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0) in a subprocess of the
  *system* python3, which has `gi`; the venv's OpenCV (bundled FFmpeg) reads it. stop()/start()
  restart it on the same port; stall()/resume() are SIGSTOP/SIGCONT of the server process.
  `rtsp_unavailable()` says why it cannot run here (None when it can).

Run as `python3 stream_servers.py rtsp PORT` (system python) this file is the RTSP server itself;
nothing but the standard library and `gi` is imported on that path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=160,height=120,framerate=15/1 "
    "! jpegenc quality=70 ! rtpjpegpay name=pay0 pt=26 )"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# -- HTTP MJPEG ----------------------------------------------------------------------------------


def _jpeg_frames(count: int, size: tuple[int, int]) -> list[bytes]:
    """A few distinct JPEGs (a bar moving across), encoded once: serving costs no CPU."""
    import cv2
    import numpy as np

    width, height = size
    frames = []
    for i in range(count):
        image = np.full((height, width, 3), 90, np.uint8)
        x = (i * width) // count
        image[:, x : x + max(2, width // 16)] = 220
        frames.append(cv2.imencode(".jpg", image)[1].tobytes())
    return frames


class MjpegServer:
    """multipart/x-mixed-replace JPEG frames at `fps` on 127.0.0.1:port (a free one by default)."""

    BOUNDARY = "edgeframe"

    def __init__(self, fps: float = 20.0, size: tuple[int, int] = (64, 48), port: Optional[int] = None):
        self.fps = fps
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.frames_sent = 0
        self.connections = 0  # accepted requests, over the server's life
        self._jpegs = _jpeg_frames(25, size)
        self._sending = threading.Event()
        self._sending.set()
        self._up = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()

    # controls
    def start(self) -> "MjpegServer":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self._listener = listener
        self._up.set()
        threading.Thread(target=self._accept, args=(listener,), name="mjpeg-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        """The camera goes away: the port closes and open connections are cut."""
        self._up.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            clients, self._clients = self._clients, set()
        for client in clients:
            _close_socket(client)

    def stall(self) -> None:
        """The camera freezes: connections stay open and nothing more is sent."""
        self._sending.clear()

    def resume(self) -> None:
        self._sending.set()

    def __enter__(self) -> "MjpegServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.resume()
        self.stop()

    # serving
    def _accept(self, listener: socket.socket) -> None:
        while self._up.is_set():
            try:
                client, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            with self._lock:
                self._clients.add(client)
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), name="mjpeg-client", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(5)
            client.recv(4096)  # the request; its content does not matter
            client.sendall(
                b"HTTP/1.0 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n"
                b"Content-Type: multipart/x-mixed-replace; boundary=" + self.BOUNDARY.encode() + b"\r\n\r\n"
            )
            while self._up.is_set():
                self._sending.wait()
                if not self._up.is_set():
                    return
                jpeg = self._jpegs[self.frames_sent % len(self._jpegs)]
                part = f"--{self.BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                client.sendall(part.encode() + jpeg + b"\r\n")
                self.frames_sent += 1
                time.sleep(1 / self.fps)
        except OSError:  # the reader went away, or stop() cut the connection
            pass
        finally:
            with self._lock:
                self._clients.discard(client)
            _close_socket(client)


def _close_socket(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# -- `edge run` as systemd runs it ---------------------------------------------------------------


class EdgeRun:
    """`edge run ARGS` in a subprocess, its stderr lines kept with the monotonic time they came."""

    def __init__(self, *args: str, cwd: Optional[Path] = None):
        repo = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_cli", "run", *map(str, args)],
            cwd=cwd or repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, text: str, timeout: float = 60.0) -> Optional[float]:
        """When a stderr line containing `text` came (monotonic), or None if none within `timeout`."""
        found: list[float] = []

        def seen() -> bool:
            found.extend(t for t, line in list(self.lines) if text in line)
            return bool(found) or self.proc.poll() is not None

        wait_until(seen, timeout, 0.05)
        if not found:
            seen()
        return found[0] if found else None

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, as systemd stops a service; the exit status (killed after `timeout`: -9)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        wait_until(lambda: False, 0.2)  # the last stderr lines
        return self.proc.returncode


# -- RTSP (gst-rtsp-server in a system-python subprocess) --------------------------------------


def rtsp_unavailable() -> Optional[str]:
    """Why the RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "assert Gst.ElementFactory.find('rtpjpegpay') and Gst.ElementFactory.find('jpegenc')"
    )
    result = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return (
            "gst-rtsp-server is not installed for the system python3 (apt-get install -y "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-base python3-gi)"
        )
    return None


class RtspServer:
    """gst-rtsp-server on 127.0.0.1:port serving a live MJPEG/RTP test picture at /test."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/test"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> "RtspServer":
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(Path(__file__).resolve()), "rtsp", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # "ready" once it listens; a bounded wait, so a broken install fails instead of hanging
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
        finally:
            timer.cancel()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the RTSP server did not start on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def stall(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing is sent."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self) -> "RtspServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_rtsp(port: int) -> None:
    """The RTSP server process (system python3 with gi): prints "ready" once it listens."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(RTSP_PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    GLib.timeout_add(100, lambda: True)  # wakes the loop so the SIGTERM handler runs
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "rtsp":
    serve_rtsp(int(sys.argv[2]))
