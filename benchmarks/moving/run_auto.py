"""`edge train autoencoder --arch auto` on each scene: which model it chooses, its fold AUROCs, its time.

    nice -n 10 .venv/bin/python benchmarks/moving/run_auto.py [--work /tmp/edge-auto] [--only tiles,belt]

Scenes (each trained as a user would, CLI defaults, `--arch auto`):
  tiles       magnetic tiles, train/good (aligned): /work/shared/datasets/magnetic-tile
  belt        the rendered belt's training stills (parts move): benchmarks/moving/run_moving.py's data
  belt_video  frames of the recorded good belt run (if run_moving.py --video-only made them)
  bottle      the bottle video's training frames (fixed scene): benchmarks/moving/run_bottle.py's data
The rendered stills and the bottle frames are made here if missing (same seeds and splits as those
scripts). Writes WORK/report.md: per scene the choice, the fold AUROCs, the reason and the time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.moving.run_bottle import VIDEO, extract  # noqa: E402
from benchmarks.moving.run_moving import edge, log, render_stills  # noqa: E402

SCENES = {
    "tiles": Path("/work/shared/datasets/magnetic-tile"),
    "belt": Path("/tmp/edge-moving/data/train"),
    "belt_video": Path("/tmp/edge-moving/video/train"),
    "bottle": Path("/tmp/edge-bottle/data/train"),
}


def prepare(name: str, data: Path) -> bool:
    """Make the scene's training images if this script can; False when they are missing and cannot be made."""
    if name == "belt":
        render_stills(data.parent, seed=0)
    elif name == "bottle" and VIDEO.is_file():
        extract(VIDEO, data.parent)
    return data.is_dir()


def row(name: str, run: dict, seconds: float) -> str:
    auto = run["auto"]
    folds = auto["image_auroc_per_fold"]
    spread = {k: f"{auto['mean_image_auroc'][k]:.3f} ({', '.join(f'{v:.3f}' for v in folds[k])})" for k in folds}
    return (
        f"| {name} | {run['images']} | {100 * auto['median_displacement']:.0f} % | {spread['features']} | "
        f"{spread['memory']} | **{auto['chosen']}** | {auto['seconds']:.0f} s | {seconds:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge-auto"))
    parser.add_argument("--only", default=",".join(SCENES), help="comma-separated scenes")
    args = parser.parse_args()
    rows, notes = [], []
    for name in args.only.split(","):
        data = SCENES[name]
        if not prepare(name, data):
            log(f"{name}: {data} missing, skipped")
            continue
        out = args.work / "runs" / name
        t0 = time.perf_counter()
        log(f"{name}: edge train autoencoder --arch auto --data {data} --out {out}")
        edge("train", "autoencoder", "--arch", "auto", "--data", data, "--out", out)
        seconds = time.perf_counter() - t0
        run = json.loads((out / "run.json").read_text())
        rows.append(row(name, run, seconds))
        notes.append(f"- **{name}**: {run['auto']['reason']}")
        log(rows[-1])
    report = [
        "| scene | good images | median displacement | `features` image AUROC (folds) | `memory` | chosen | "
        "cross-validation | whole command |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *notes,
    ]
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "report.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
