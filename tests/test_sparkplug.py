"""Sparkplug B against a real mosquitto on loopback, with a Sparkplug host in the test that decodes
every payload: births, deaths (the last will, with bdSeq), sequence numbers wrapping at 256, metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sinks_helpers import (  # noqa: F401 (fresh_problem_log: autouse fixture)
    Mosquitto,
    Subscriber,
    fresh_problem_log,
    make_alert,
    require_mosquitto,
    wait_until,
)
from test_mqtt_topics import running_inspection

pytest.importorskip("google.protobuf")
from edge.sinks import sparkplug_proto as spb  # noqa: E402
from edge.sinks.sparkplug import DEVICE_METRICS, SparkplugSink  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NODE = "spBv1.0/plant/{}/press-3"
DEVICE = NODE + "/top"


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    yield b
    b.stop()


class Host:
    """A Sparkplug host application: subscribes to the group and decodes every payload."""

    def __init__(self, port: int, client_id: str = "t-spb-host"):
        self.sub = Subscriber(port, "spBv1.0/plant/#", client_id=client_id, clean=True)

    def messages(self, kind: str, device: bool = False) -> list:
        topic = (DEVICE if device else NODE).format(kind)
        return [spb.Payload.FromString(p) for p in self.sub.payloads(topic)]

    def sequence(self) -> list[tuple[str, int]]:
        """(message type, seq) of every message that carries one, in arrival order."""
        out = []
        for topic, payload, _ in list(self.sub.messages):
            kind = topic.split("/")[2]
            if kind in ("NBIRTH", "DBIRTH", "DDATA", "DDEATH"):
                out.append((kind, spb.Payload.FromString(payload).seq))
        return out

    def close(self) -> None:
        self.sub.close()


def metrics(payload) -> dict:
    return {m.name: spb.metric_value(m) for m in payload.metrics}


def make_sink(port: int, state: Path, **kw) -> SparkplugSink:
    return SparkplugSink(
        "127.0.0.1", state, port=port, group_id="plant", edge_node="press-3", device="top", every_s=60, **kw
    )


def test_births_data_with_wrapping_seq_rebirth_and_a_clean_death(broker, tmp_path):
    host = Host(broker.port)
    sink = make_sink(broker.port, tmp_path / "state")
    try:
        sink.bind_run(running_inspection(frames=50, alerts=1, score=2.0, threshold=5.0))
        assert wait_until(lambda: host.messages("DBIRTH", device=True), 10)
        nbirth = host.messages("NBIRTH")[0]
        assert nbirth.seq == 0
        node = metrics(nbirth)
        assert node["Node Control/Rebirth"] is False
        bdseq = node["bdSeq"]
        dbirth = host.messages("DBIRTH", device=True)[0]
        assert dbirth.seq == 1
        born = metrics(dbirth)
        assert set(born) == set(DEVICE_METRICS)  # every metric DDATA may carry is declared at birth
        assert {m.name: m.datatype for m in dbirth.metrics}["Score"] == spb.DOUBLE
        assert born["Frames"] == 50 and born["Threshold"] == 5.0 and born["Last Alert/ID"] is None

        alerts = [make_alert(i, score=6.0 + i) for i in range(300)]  # past 255: seq wraps
        for a in alerts:
            sink.emit(a)
        assert wait_until(lambda: len(host.messages("DDATA", device=True)) == 300, 10)
        ddata = host.messages("DDATA", device=True)
        assert [metrics(p)["Last Alert/ID"] for p in ddata] == [a.id for a in alerts]
        assert metrics(ddata[0])["Defect"] is True and metrics(ddata[-1])["Last Alert/Score"] == 305.0
        seqs = [s for _, s in host.sequence()]
        assert seqs == [i % 256 for i in range(len(seqs))]  # 0, 1, ... 255, 0, 1, ...

        # A host asks for a rebirth: NBIRTH (seq 0, same session's bdSeq) and DBIRTH again.
        command = spb.Payload(timestamp=spb_now())
        spb.add_metric(command, "Node Control/Rebirth", spb.BOOLEAN, True, command.timestamp)
        host.sub.client.publish(NODE.format("NCMD"), command.SerializeToString(), qos=0)
        assert wait_until(lambda: len(host.messages("NBIRTH")) == 2 and len(host.messages("DBIRTH", True)) == 2, 10)
        again = host.messages("NBIRTH")[1]
        assert again.seq == 0 and metrics(again)["bdSeq"] == bdseq
        assert metrics(host.messages("DBIRTH", True)[1])["Last Alert/ID"] == alerts[-1].id
    finally:
        sink.close()
    # A clean stop: DDEATH, then NDEATH with the session's bdSeq.
    assert wait_until(lambda: host.messages("NDEATH"), 10)
    assert metrics(host.messages("NDEATH")[-1])["bdSeq"] == bdseq
    assert host.messages("DDEATH", device=True)
    host.close()


def spb_now() -> int:
    from edge.sinks.sparkplug import now_ms

    return now_ms()


def test_ndeath_is_the_last_will_with_the_births_bdseq_and_bdseq_moves_on(broker, tmp_path):
    host = Host(broker.port, client_id="t-spb-will")
    state = tmp_path / "state"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from edge.sinks.sparkplug import SparkplugSink
        sink = SparkplugSink("127.0.0.1", Path({str(state)!r}), port={broker.port}, group_id="plant",
                             edge_node="press-3", device="top")
        print("connected" if sink.connected.is_set() else "not connected", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "connected"
        assert wait_until(lambda: host.messages("NBIRTH"), 10)
        born = metrics(host.messages("NBIRTH")[0])["bdSeq"]
        proc.send_signal(signal.SIGKILL)  # no goodbye: only the broker's will can say it
        proc.wait(10)
        assert wait_until(lambda: host.messages("NDEATH"), 15)
        assert metrics(host.messages("NDEATH")[0])["bdSeq"] == born
    finally:
        if proc.poll() is None:
            proc.kill()
    # The next start is a new session: its bdSeq is the next one, kept in the state folder.
    sink = make_sink(broker.port, state)
    try:
        assert wait_until(lambda: len(host.messages("NBIRTH")) == 2, 10)
        assert metrics(host.messages("NBIRTH")[1])["bdSeq"] == (born + 1) % 256
    finally:
        sink.close()
        host.close()


def test_the_config_option_adds_a_sparkplug_node_beside_the_json_topics(broker, tmp_path):
    from edge.config import SinksConfig
    from edge.sinks.factory import build_sinks

    host = Host(broker.port, client_id="t-spb-config")
    mqtt = {"host": "127.0.0.1", "port": broker.port, "prefix": "plant", "station": "press-3", "inspection": "top"}
    config = SinksConfig.model_validate(
        {
            "stdout": False,
            "jsonl": False,
            "sqlite": False,
            "snapshots": False,
            "mqtt": {**mqtt, "sparkplug": {"group_id": "plant"}},
        }
    )
    built = build_sinks(config, tmp_path / "out", tmp_path / "state", journaled=False)
    try:
        assert [s.name for s in built.group] == ["mqtt", "sparkplug"]
        assert any(d.startswith("sparkplug B spBv1.0/plant/+/press-3/top") for d in built.described)
        built.bind_run(running_inspection(frames=5, alerts=0, score=1.0, threshold=5.0))
        assert wait_until(lambda: host.messages("DBIRTH", device=True), 10)
    finally:
        built.close()
        host.close()
