"""A plant's worth of stations in miniature (docs/fleet.md): a central mosquitto, 3 local mosquitto
brokers bridged to it, one station per bridge publishing alerts through the project's MQTT sink, the
central broker stopped for a few seconds and restarted. benchmarks/fleet/fleet.py runs the full size
(20 stations, a 60 s cut: benchmarks/results/fleet.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from sinks_helpers import fresh_problem_log, require_mosquitto  # noqa: F401 (autouse fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.fleet.fleet import run_fleet  # noqa: E402


def test_no_alert_is_lost_when_the_link_to_the_central_broker_is_cut(tmp_path):
    require_mosquitto()
    r = run_fleet(stations=3, rate=10, cut_s=3, folder=tmp_path, before_s=1, after_s=1)
    assert r.produced_during_cut > 0  # the stations kept publishing while the link was down
    assert r.lost == 0 and r.delivered == r.produced, r.lost_by_station
    assert r.catch_up_s is not None  # the alerts of the cut arrived after the link returned
    # The stations' retained status crossed the bridges: a newcomer on the central broker sees who is up.
    assert r.statuses_online == 3
