"""A frozen stream (MJPEG: nothing sent; RTSP: server SIGSTOPped): seconds from the last frame to the
watchdog's "no frame" line or its failed read, for each stall_seconds, and seconds to recover after it
resumes.

    .venv/bin/python benchmarks/faults/stream_stall.py --kind rtsp --stall 5 2
"""

from __future__ import annotations

import argparse
import time

from stream_common import Reading, WatchdogConfig, make_server, table


def one(kind: str, stall: float, frozen: float) -> list:
    server = make_server(kind).start()
    reading = Reading(server.url, WatchdogConfig(stall_seconds=stall))
    try:
        assert reading.first_frame_after(0, 30) is not None, "no first frame"
        time.sleep(1.0)
        server.stall()
        t = time.monotonic()
        noticed = reading.first_line_after(t, "reopening in", frozen + 30)
        seen = noticed - reading.last_frame if noticed else None  # no frame comes while it is frozen
        time.sleep(max(0.0, t + frozen - time.monotonic()))
        server.resume()
        recovered = reading.first_frame_after(time.monotonic(), 60)
        return [kind, stall, seen if seen is not None else "never", recovered if recovered is not None else "NO"]
    finally:
        reading.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["rtsp", "mjpeg"], nargs="+", default=["rtsp", "mjpeg"])
    parser.add_argument("--stall", type=float, nargs="+", default=[5.0, 2.0], help="stall_seconds settings")
    parser.add_argument("--frozen", type=float, default=8.0, help="seconds the server stays frozen")
    args = parser.parse_args()
    rows = [one(kind, stall, args.frozen) for kind in args.kind for stall in args.stall]
    print(f"stream frozen {args.frozen:g} s; promise: noticed within stall_seconds + 1 s")
    table(["stream", "stall_seconds", "noticed after last frame (s)", "next frame after resume (s)"], rows)


if __name__ == "__main__":
    main()
