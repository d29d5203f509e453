"""Stream restarted N times: the server goes away for a while and comes back on the same port.

Reads with the default watchdog (stall 5 s, OpenCV timeouts 5 s, backoff 0.5 s doubling) and prints,
per restart, whether the stream recovered and the seconds from the server's return to the next frame.

    .venv/bin/python benchmarks/faults/stream_restart.py --kind rtsp --times 10 --down 2
"""

from __future__ import annotations

import argparse
import time

from stream_common import Reading, make_server, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["rtsp", "mjpeg"], default="rtsp")
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--down", type=float, default=2.0, help="seconds the server stays away")
    args = parser.parse_args()
    server = make_server(args.kind).start()
    reading = Reading(server.url)
    rows = []
    try:
        assert reading.first_frame_after(0, 30) is not None, "no first frame"
        for i in range(1, args.times + 1):
            time.sleep(1.0)
            server.stop()
            time.sleep(args.down)
            server.start()
            back = time.monotonic()
            seconds = reading.first_frame_after(back, 60)
            rows.append([i, "yes" if seconds is not None else "NO", seconds if seconds is not None else "-"])
    finally:
        reading.close()
        server.stop()
    print(f"{args.kind}: stream restarted x{args.times}, down {args.down:g} s each, default watchdog")
    table(["restart", "recovered", "seconds from server back to next frame"], rows)
    recovered = sum(r[1] == "yes" for r in rows)
    print(f"recovered {recovered} of {args.times}; reopens counted: {reading.source.reopens}")


if __name__ == "__main__":
    main()
