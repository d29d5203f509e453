"""How long the loop pauses when a bundle is swapped in (issue 15, edge/swap.py).

    nice -n 10 .venv/bin/python benchmarks/swap_pause.py [--swaps 6] [--every 4] [--threads 1]

A real run assembled as `edge run` assembles it (edge.app.build_pipeline + edge.swap.swap_for_run)
on a looped 640x480 video of the demo scene with the demo bundle's model, every frame inspected.
Every `--every` seconds the history's `current` flips between two versions (different id and
threshold) and a swap is requested, as SIGHUP does. The time of each decision is taken in the
loop's own `on_frame` callback. For each swap: how long its preparation took (request to the loop
taking it: load, hashes, interpreter, smoke inference, watches, on the swap thread while the old
bundle inspects on), the interval between the last decision before the swap and the first after it
(what the swap itself costs the loop), and the longest interval while it was being prepared (what
the preparation's CPU takes from the loop on a small machine); against the intervals with no swap
under way (median, p99, max).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from edge.app import build_pipeline  # noqa: E402
from edge.bundle_history import set_current, start_history  # noqa: E402
from edge.config import RunConfig  # noqa: E402
from edge.sources import SourceConfig, open_source  # noqa: E402
from edge.swap import swap_for_run  # noqa: E402

DEMO = REPO / "edge" / "demo"


def video(path: Path) -> Path:
    base = cv2.resize(cv2.imread(str(sorted(DEMO.glob("images/*.jpg"))[0])), (640, 480))
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for _ in range(60):
        writer.write(cv2.add(base, rng.integers(0, 6, base.shape, dtype=np.uint8)))
    writer.release()
    return path


def history(folder: Path) -> Path:
    line = folder / "line1"
    start_history(DEMO / "bundle", line)
    second = line / "v2"
    shutil.copytree(line / "v1", second)
    manifest = json.loads((second / "bundle.json").read_text())
    manifest.update(id="bench-v2", version=2)
    manifest["threshold"]["value"] *= 1.01
    (second / "bundle.json").write_text(json.dumps(manifest))
    return line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--swaps", type=int, default=6)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between swaps")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        line = history(Path(tmp))
        source_config = SourceConfig(video=str(video(Path(tmp) / "line.avi")), loop=True)
        config = RunConfig(bundle=line, source=source_config, threads=args.threads)
        pipeline = build_pipeline(config, lambda _m: None)
        swap = swap_for_run(config, pipeline, lambda _m: None)
        pipeline.swap = swap
        requested, taken = [], []
        adopted = swap.adopted

        def adopted_at(new):
            taken.append(time.perf_counter())
            adopted(new)

        swap.adopted = adopted_at
        decided: list[float] = []

        def flip():
            for i in range(args.swaps):
                time.sleep(args.every)
                set_current(line, "v2" if i % 2 == 0 else "v1")
                requested.append(time.perf_counter())
                swap.request("bench")
            time.sleep(args.every / 2)
            pipeline.stop()

        swap.start()
        threading.Thread(target=flip, daemon=True).start()
        summary = pipeline.run(
            open_source(config=source_config), on_frame=lambda *_: decided.append(time.perf_counter())
        )
        swap.close()
    report(np.array(decided), requested, taken, summary, args, swap.rejected)


def report(decided: np.ndarray, requested: list, taken: list, summary, args, rejected: int) -> None:
    gaps = np.diff(decided) * 1000
    ends = decided[1:]
    busy = np.zeros(gaps.size, bool)
    rows = []
    for asked, took in zip(requested, taken, strict=False):
        during = (ends > asked) & (ends <= took + 0.001)
        busy |= during
        after = int(np.searchsorted(decided, took))  # the first decision after the swap
        pause = (decided[after] - decided[after - 1]) * 1000 if 0 < after < decided.size else float("nan")
        rows.append((took - asked, pause, gaps[during].max() if during.any() else float("nan")))
    quiet = gaps[~busy]
    print(
        f"{summary.frames} frames, {summary.fps:.1f} fps, {len(taken)} of {len(requested)} swaps taken, "
        f"{rejected} rejected; interpreter threads {args.threads}"
    )
    print(
        f"intervals with no swap under way: median {np.median(quiet):.1f} ms, p99 {np.percentile(quiet, 99):.1f} ms, "
        f"max {quiet.max():.1f} ms"
    )
    print("| swap | prepared in (s) | interval across the swap (ms) | longest interval while preparing (ms) |")
    print("|---|---|---|---|")
    for i, (prepared, pause, longest) in enumerate(rows, 1):
        print(f"| {i} | {prepared:.2f} | {pause:.1f} | {longest:.1f} |")


if __name__ == "__main__":
    main()
