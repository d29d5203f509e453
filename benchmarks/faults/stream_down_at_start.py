"""A camera that boots after the Pi: the stream is down when the run starts and comes up later.

`edge run --url` (demo bundle) waits for it under the watchdog and inspects once it is up; with
--fail-fast it exits 2 at once. Prints, per kind: the exit status with --fail-fast, whether the
waiting run said it is waiting, seconds from the server coming up to the first reopen, and the
exit status on SIGTERM.

    .venv/bin/python benchmarks/faults/stream_down_at_start.py --kind rtsp mjpeg --down 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from stream_common import DEMO_BUNDLE, EdgeRun, free_port, make_server, table


def one(kind: str, down: float, out: Path) -> list:
    server = make_server(kind, port=free_port())
    fast = EdgeRun("--bundle", DEMO_BUNDLE, "--url", server.url, "--fail-fast", "--out", out / "fast")
    fast_status = fast.wait(60)
    run = EdgeRun("--bundle", DEMO_BUNDLE, "--url", server.url, "--out", out / kind)
    try:
        waiting = run.wait_for("not there at start", 60) is not None
        time.sleep(down)
        server.start()
        up = time.monotonic()
        reopened = run.wait_for("reopened", 120)
        time.sleep(2.0)
        status = run.terminate()
    finally:
        run.wait(5)
        server.stop()
    recovered = f"{reopened - up:.2f}" if reopened else "NO"
    return [kind, fast_status, "yes" if waiting else "NO", down, recovered, status]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["rtsp", "mjpeg"], nargs="+", default=["rtsp", "mjpeg"])
    parser.add_argument("--down", type=float, default=10.0, help="seconds the stream is down after the start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [one(kind, args.down, Path(tmp)) for kind in args.kind]
    header = ["stream", "exit with --fail-fast", "waited", "down (s)", "up -> reopened (s)", "exit on SIGTERM"]
    table(header, rows)


if __name__ == "__main__":
    main()
