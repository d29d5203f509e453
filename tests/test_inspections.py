"""Several cameras in one `edge run` (issue 16): `inspections:` in the config, edge/inspections.py.

Two inspections on two short synthetic videos with the shipped demo bundle share one process and
one event store, each alert naming its inspection; a stream that dies ends its own inspection while
the other keeps inspecting; bad configs are one line and exit 2.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import yaml
from cli_helpers import run_edge_in_process
from stream_servers import EdgeRun, MjpegServer, wait_until
from synthetic import write_video

DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "edge" / "demo" / "bundle"


def write_config(path: Path, inspections: list[dict], **top) -> Path:
    data = {
        "out": str(path.parent / "out"),
        "threads": 1,
        "metrics": {"every_seconds": 0},
        "sinks": {"stdout": False, "snapshots": {"annotated": False}},
        **top,
        "inspections": inspections,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def summaries(stderr: str) -> dict[str, dict]:
    """Each inspection's closing `[name] summary {...}` line."""
    found = re.findall(r"^\[([^\]]+)\] summary (\{.*\})$", stderr, re.M)
    return {name: json.loads(text) for name, text in found}


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory) -> tuple[Path, object]:
    """One `edge run --config` over two inspections, each on its own 16-frame video."""
    root = tmp_path_factory.mktemp("two")
    write_video(root / "left.avi", 16, {5, 11}, size=96, seed=1)
    write_video(root / "right.avi", 16, {3}, size=96, seed=2)
    config = write_config(
        root / "edge.yaml",
        [
            {"name": "left", "source": {"video": "left.avi"}, "bundle": str(DEMO_BUNDLE)},
            {"name": "right", "source": {"video": "right.avi"}, "bundle": str(DEMO_BUNDLE), "threads": 1},
        ],
    )
    # In this process: what is asserted is the exit status, the output and the files (a fresh interpreter
    # costs ~1.2 CPU-s); SIGTERM and the dying stream below run `edge run` as a real process.
    result = run_edge_in_process("run", "--config", config)
    return root, result


def test_two_inspections_run_in_one_process_and_share_one_event_store(two_videos):
    root, result = two_videos
    assert result.returncode == 0, result.stderr
    done = summaries(result.stderr)
    assert set(done) == {"left", "right"}
    assert all(s["frames"] == 16 and s["stopped_by"] == "end of input" for s in done.values()), done
    assert "Traceback" not in result.stderr
    with sqlite3.connect(root / "out" / "events.db") as db:
        rows = db.execute("SELECT inspection, source FROM events").fetchall()
    by_name = {name: {source for n, source in rows if n == name} for name, _ in rows}
    assert by_name == {"left": {"left.avi"}, "right": {"right.avi"}}  # each alert names its camera's inspection
    assert len(rows) == done["left"]["alerts"] + done["right"]["alerts"]


def test_each_inspection_keeps_its_own_files_and_events_filters_by_name(two_videos):
    root, _ = two_videos
    for name in ("left", "right"):
        lines = (root / "out" / name / "events.jsonl").read_text().splitlines()
        assert lines and all(json.loads(line)["inspection"] == name for line in lines)
        snapshots = {json.loads(line)["snapshot"] for line in lines}
        assert all(Path(s).parent == root / "out" / name / "snapshots" for s in snapshots)
    listed = run_edge_in_process("events", "--db", root / "out" / "events.db", "--inspection", "right", "--json")
    assert listed.returncode == 0, listed.stderr
    alerts = [json.loads(line) for line in listed.stdout.splitlines()]
    assert alerts and {a["inspection"] for a in alerts} == {"right"}
    assert {a["source"] for a in alerts} == {"right.avi"}


def test_a_stream_that_dies_ends_its_inspection_only(tmp_path):
    write_video(tmp_path / "line.avi", 20, {7}, size=96, seed=3)
    watchdog = {"max_reopens": 1, "backoff_initial": 0.2, "stall_seconds": 1.0, "read_timeout_ms": 1000}
    with MjpegServer(fps=10) as camera:
        config = write_config(
            tmp_path / "edge.yaml",
            [
                # Paced like the camera it stands in for: unpaced, it spent a core for the 12 s run.
                {"name": "line", "source": {"video": "line.avi", "loop": True, "rate": 10}, "bundle": str(DEMO_BUNDLE)},
                {"name": "cam", "source": {"url": camera.url, "watchdog": watchdog}, "bundle": str(DEMO_BUNDLE)},
            ],
            metrics={"every_seconds": 1},
        )
        run = EdgeRun("--config", config, "--duration", "12")
        try:
            assert run.wait_for("[cam] alerts to:", 120) is not None, run.stderr
            assert wait_until(lambda: camera.frames_sent > 5, 30), run.stderr
            camera.stop()  # the camera goes away for good
            lost_at = run.wait_for("gave up after", 60)
            assert lost_at is not None, run.stderr
            status = run.wait(120)
        finally:
            run.wait(5)
    assert status != 0, run.stderr  # a supervisor sees that one inspection ended on an error
    done = summaries(run.stderr)
    assert done["cam"]["stopped_by"] == "source lost"
    assert done["line"]["stopped_by"] == "duration"  # the other ran to its end
    assert "1 of 2 inspections ended on an error" in run.stderr and "Traceback" not in run.stderr
    # ... and kept inspecting after the camera was lost: its frame count grew in the lines said after.
    frames_after = [
        int(m.group(1))
        for t, line in run.lines
        if t > lost_at
        for m in [re.search(r"^\[line\] metrics:.* frames (\d+)", line)]
        if m
    ]
    assert len(frames_after) >= 2 and frames_after[-1] > frames_after[0], run.stderr


def test_sigterm_stops_every_inspection_with_exit_0(tmp_path):
    for name in ("a", "b"):
        write_video(tmp_path / f"{name}.avi", 10, set(), size=64, seed=4)
    items = [
        {"name": name, "source": {"video": f"{name}.avi", "loop": True}, "bundle": str(DEMO_BUNDLE)}
        for name in ("a", "b")
    ]
    run = EdgeRun("--config", write_config(tmp_path / "edge.yaml", items, metrics={"every_seconds": 1}))
    try:
        assert run.wait_for("[a] metrics:", 120) is not None and run.wait_for("[b] metrics:", 60) is not None, (
            run.stderr
        )
        status = run.terminate()
    finally:
        run.wait(5)
    assert status == 0, run.stderr
    done = summaries(run.stderr)
    assert {name: s["stopped_by"] for name, s in done.items()} == {"a": "signal", "b": "signal"}
    assert "all 2 inspections done" in run.stderr


def test_each_inspection_has_its_own_mqtt_topics_status_and_client(tmp_path):
    from sinks_helpers import Mosquitto, Subscriber, require_mosquitto

    broker = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    everything = Subscriber(broker.port, "#", client_id="t-inspections", clean=True)
    for name, seed in (("left", 5), ("right", 6)):
        write_video(tmp_path / f"{name}.avi", 6, {2}, size=64, seed=seed)
    mqtt = {"host": "127.0.0.1", "port": broker.port, "prefix": "plant", "station": "s1", "metrics_every_s": 0}
    items = [{"name": n, "source": {"video": f"{n}.avi"}, "bundle": str(DEMO_BUNDLE)} for n in ("left", "right")]
    sinks = {"stdout": False, "jsonl": False, "snapshots": False, "mqtt": mqtt}
    config = write_config(tmp_path / "edge.yaml", items, sinks=sinks)
    try:
        result = run_edge_in_process("run", "--config", config)
        assert result.returncode == 0, result.stderr
        done = summaries(result.stderr)
        for name in ("left", "right"):
            base = f"plant/s1/{name}"
            count = done[name]["alerts"]
            assert count > 0 and wait_until(lambda b=base, n=count: len(everything.payloads(f"{b}/alerts")) >= n, 10)
            assert {json.loads(p)["inspection"] for p in everything.payloads(f"{base}/alerts")} == {name}
            # its own connection, so its own status and last will: online, then offline at the clean stop
            assert wait_until(lambda b=base: everything.payloads(f"{b}/status")[-1:] == [b"offline"], 10)
            assert b"online" in everything.payloads(f"{base}/status")
        assert "edge-inspect-" in result.stderr and "-left" in result.stderr and "-right" in result.stderr
    finally:
        everything.close()
        broker.stop()


BAD = {
    "same name twice": (
        [{"name": "a", "source": {"video": "x.avi"}}, {"name": "a", "source": {"video": "y.avi"}}],
        {},
        "two inspections are named 'a'",
    ),
    "one camera twice": (
        [{"name": "a", "source": {"camera": 0}}, {"name": "b", "source": {"camera": "/dev/video0"}}],
        {},
        "both read camera /dev/video0",
    ),
    "one stream twice": (
        [{"name": "a", "source": {"url": "rtsp://10.0.0.7/s"}}, {"name": "b", "source": {"url": "rtsp://10.0.0.7/s"}}],
        {},
        "both read url rtsp://10.0.0.7/s",
    ),
    "a name that is no topic level": (
        [{"name": "line/1", "source": {"video": "x.avi"}}],
        {},
        "cannot be an MQTT topic level",
    ),
    "a bundle at the top too": (
        [{"name": "a", "source": {"video": "x.avi"}}],
        {"bundle": str(DEMO_BUNDLE)},
        "bundle: with `inspections:` these go in each inspection",
    ),
    "one reject pin for several cameras": (
        [{"name": "a", "source": {"video": "x.avi"}}],
        {"sinks": {"gpio": {"pin": 17}}},
        "sinks.gpio: not supported with several inspections",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_inspections_config_is_one_line_and_exit_2(case, tmp_path):
    items, top, expected = BAD[case]
    for item in items:
        item.setdefault("bundle", str(DEMO_BUNDLE))
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({**top, "inspections": items}, sort_keys=False))
    result = run_edge_in_process("run", "--config", config)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "edge.yaml:" in lines[0], result.stderr
    assert not (tmp_path / "edge-out").exists()


def test_source_flags_with_an_inspections_config_are_one_line(tmp_path):
    config = write_config(
        tmp_path / "edge.yaml", [{"name": "a", "source": {"video": "x.avi"}, "bundle": str(DEMO_BUNDLE)}]
    )
    result = run_edge_in_process("run", "--config", config, "--camera", "0")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "drop those options" in result.stderr, result.stderr


def test_one_prometheus_endpoint_labels_each_inspections_metrics():
    from prometheus_client import CollectorRegistry, generate_latest

    from edge.metrics import ByInspection, Metrics, MetricsConfig

    runs = {name: Metrics(MetricsConfig(every_seconds=0)) for name in ("left", "right")}
    runs["left"].frames, runs["right"].frames, runs["right"].alerts = 3, 5, 1
    registry = CollectorRegistry()
    registry.register(ByInspection(runs))
    text = generate_latest(registry).decode()
    assert 'edge_frames_total{inspection="left"} 3.0' in text
    assert 'edge_frames_total{inspection="right"} 5.0' in text
    assert 'edge_alerts_total{inspection="right"} 1.0' in text
    assert 'edge_stage_seconds_count{inspection="left",stage="model"} 0.0' in text


def test_health_and_bundle_events_name_their_inspection_only_when_there_are_several():
    from edge.health_event import HealthEvent

    single = HealthEvent(kind="health", state="blur", previous="ok", since="t", source="camera:0")
    assert "inspection" not in single.to_dict()  # a single camera's events read as before
    named = HealthEvent(kind="health", state="blur", previous="ok", since="t", source="camera:0", inspection="side")
    assert named.to_dict()["inspection"] == "side"
    assert HealthEvent.from_dict(named.to_dict()) == named  # the journal replays it whole


def test_a_missing_video_names_its_inspection_and_leaves_no_outputs(tmp_path):
    write_video(tmp_path / "ok.avi", 4, set(), size=64)
    items = [
        {"name": "ok", "source": {"video": "ok.avi"}, "bundle": str(DEMO_BUNDLE)},
        {"name": "typo", "source": {"video": "gone.avi"}, "bundle": str(DEMO_BUNDLE)},
    ]
    result = run_edge_in_process("run", "--config", write_config(tmp_path / "edge.yaml", items))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: inspection 'typo': video not found: {tmp_path / 'gone.avi'}"]
    assert not (tmp_path / "out").exists()  # the sources open before any output is made
