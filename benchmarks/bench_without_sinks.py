"""`edge bench` with the alert sinks partly or wholly off: how much of the pipeline's rate at 100 %
alerting goes to the sinks (benchmarks/results/faults_alerts.md, "The bench again").

    .venv/bin/python benchmarks/bench_without_sinks.py nosnap  bench edge/demo/bundle --size 640x480 --threads 1 \
        --frames 300 --tiles 0 --repeat 2 --alerting all
    .venv/bin/python benchmarks/bench_without_sinks.py nosinks bench edge/demo/bundle ... (the same)

nosnap: the default sinks without snapshots; nosinks: no sink at all (so no journal, no alert worker).
Everything after the mode is `edge`'s own command line.
"""

from __future__ import annotations

import sys

import edge.bench.pipeline as bench_pipeline
from edge.config import SinksConfig

MODES = ("nosnap", "nosinks")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(MODES)}}} bench BUNDLE [edge bench options]")
    mode = sys.argv.pop(1)
    original = bench_pipeline._bench_config

    def without(*args, **kwargs):
        config = original(*args, **kwargs)
        if mode == "nosnap":
            config.sinks.snapshots = None
        else:
            config.sinks = SinksConfig(stdout=False, snapshots=False, jsonl=False, sqlite=False)
        return config

    bench_pipeline._bench_config = without
    from edge_cli.app import main as edge

    edge(sys.argv[1:])


if __name__ == "__main__":
    main()
