"""The quick versions of benchmarks/faults/alerts_faults.py: real `edge run` processes, mosquitto and
an HTTP receiver on 127.0.0.1; bounded in time. No alert lost; repeats only as at-least-once allows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sinks_helpers import require_mosquitto

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "faults"))


# --rate 8: the line at a slow camera's pace. What is asserted (no alert lost, none repeated in the
# journal) holds the same at any rate; flat out, each run spent a whole core on frames nobody needed.
# At 8 fps a 6 s window still makes about 25 alerts (half the demo frames are defective).
@pytest.mark.parametrize(
    "args",
    [
        ["kill9", "--kills", "2", "--kill-every-s", "5"],
        ["webhook-500", "--down-s", "3", "--run-s", "6"],
        ["broker-down", "--down-s", "3", "--run-s", "6"],
    ],
    ids=["kill9", "webhook-500", "broker-down"],
)
def test_quick_faults_lose_no_alert(args):
    require_mosquitto()
    from alerts_faults import main

    result = main([*args, "--rate", "8"])
    assert result["produced"] > 0 and result["jsonl_duplicates"] == 0
    assert result["webhook"]["lost"] == 0 and result["mqtt"]["lost"] == 0
    assert result["exit"] == 0
