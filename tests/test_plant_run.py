"""`edge run` on the demo bundle and images, speaking to a real mosquitto the ways a plant listens:
the topic tree, the metrics message, Home Assistant discovery and Sparkplug B, all from one run."""

from __future__ import annotations

import json

import pytest
from cli_helpers import REPO, run_edge_in_process
from sinks_helpers import Mosquitto, Subscriber, fresh_problem_log, require_mosquitto, wait_until  # noqa: F401

pytest.importorskip("google.protobuf")
from edge.bundle import load_bundle  # noqa: E402
from edge.sinks import sparkplug_proto as spb  # noqa: E402

DEMO = REPO / "edge" / "demo"


def test_one_run_feeds_the_topic_tree_home_assistant_and_sparkplug(tmp_path):
    broker = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    everything = Subscriber(broker.port, "#", client_id="t-plant-run", clean=True)
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"bundle: {DEMO / 'bundle'}\n"
        f"source: {{images: {DEMO / 'images'}}}\n"
        f"out: {tmp_path / 'out'}\n"
        "sinks:\n  stdout: false\n  jsonl: false\n  snapshots: false\n"
        f"  mqtt: {{host: 127.0.0.1, port: {broker.port}, prefix: plant, station: press-3, inspection: demo,\n"
        "          metrics_every_s: 0.2, home_assistant: true, sparkplug: {group_id: plant}}\n"
    )
    try:
        result = run_edge_in_process("run", "--config", config)
        assert result.returncode == 0, result.stderr
        summary = json.loads(next(x for x in result.stderr.splitlines() if x.startswith("summary "))[8:])
        base = "plant/press-3/demo"
        assert wait_until(lambda: len(everything.payloads(f"{base}/alerts")) >= summary["alerts"] > 0, 10)
        assert wait_until(lambda: everything.payloads(f"{base}/status")[-1:] == [b"offline"], 10)
        final = json.loads(everything.payloads(f"{base}/metrics")[-1])
        bundle = load_bundle(DEMO / "bundle")
        assert final["frames"] == summary["frames"] and final["alerts"] == summary["alerts"]
        assert final["bundle_id"] == bundle.id and final["bundle_version"] == bundle.version
        assert everything.payloads("homeassistant/binary_sensor/edge_inspect_press-3_demo/defect/config")

        def spb_payloads(kind: str) -> list:
            topic = f"spBv1.0/plant/{kind}/press-3" + ("/demo" if kind.startswith("D") else "")
            return [spb.Payload.FromString(p) for p in everything.payloads(topic)]

        assert wait_until(lambda: spb_payloads("NDEATH"), 10)  # the clean stop
        born = {m.name: spb.metric_value(m) for m in spb_payloads("DBIRTH")[0].metrics}
        assert born["Bundle/ID"] == bundle.id and born["Threshold"] == pytest.approx(bundle.threshold, rel=1e-6)
        last = {}
        for p in spb_payloads("DDATA"):
            last.update({m.name: spb.metric_value(m) for m in p.metrics})
        assert last["Frames"] == summary["frames"] and last["Alerts"] == summary["alerts"]
    finally:
        everything.close()
        broker.stop()
