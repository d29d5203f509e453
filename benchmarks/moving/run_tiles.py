"""The memory model on magnetic tiles, measured as benchmarks/results/quality.md measures the default.

    nice -n 10 .venv/bin/python benchmarks/moving/run_tiles.py [--data /work/shared/datasets/magnetic-tile]
        [--work /tmp/edge-quality]

Same split and commands as benchmarks/quality/run_quality.py (it shares its --work folder and its
split: 90 % of train/good fit, every 10th image held out to calibrate with meanstd:3): `edge train
autoencoder --arch memory` with the CLI's defaults, `edge export` int8 and float32, `edge calibrate`,
`edge eval` of int8 beside float32. Writes WORK/memory-report.md with every command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.moving.run_moving import edge, log, make_bundles, section  # noqa: E402
from benchmarks.quality.run_quality import split_train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/datasets/magnetic-tile"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge-quality"))
    args = parser.parse_args()
    fit, held = split_train(args.data, args.work)
    run, report = args.work / "memory", ["# The memory model on magnetic tiles", "", f"`{' '.join(sys.argv)}`"]
    bundles = make_bundles("memory", fit, held, run, args.work / "memory-bundles", "meanstd:3", report)
    cmd = ("eval", bundles["int8"], "--data", args.data, "--compare", bundles["float32"], "--out", run / "eval.md")
    section(report, cmd + ("--threads", "2"), edge(*cmd, "--threads", "2"), 4000)
    cmd = ("bench", bundles["int8"], "--threads", "1", "--invokes", "100", "--frames", "100", "--quiet")
    section(report, cmd, edge(*cmd), 1800)
    (args.work / "memory-report.md").write_text("\n".join(report) + "\n")
    log(f"→ {args.work / 'memory-report.md'}")


if __name__ == "__main__":
    main()
