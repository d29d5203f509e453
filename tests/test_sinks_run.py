"""`edge run --config` end to end: a calibrated bundle, real frames, and every sink at once —
stdout, rotating JSONL, SQLite (read back with `edge events`), snapshots with retention, a real
webhook receiver and a real mosquitto broker.

`edge run` and `edge events` run through the CLI's entry point inside the test process (a fresh
interpreter per run costs ~1.2 CPU-s; the assertions read exit status, output and what the sinks
received); SIGTERM and the required-broker error (paho's threads are up when it exits) stay real
subprocesses."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import run_edge, run_edge_in_process
from sinks_helpers import (  # noqa: F401 (fresh_problem_log: autouse fixture)
    Mosquitto,
    Receiver,
    Subscriber,
    free_port,
    fresh_problem_log,
    require_mosquitto,
    wait_until,
)
from synthetic import write_video

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_bundle(int8_model, synthetic_mvtec, tmp_path_factory) -> Path:
    from calibration.calibrate import calibrate

    out = tmp_path_factory.mktemp("sinks-run") / "bundle"
    return calibrate(int8_model, synthetic_mvtec, None, "f1", out, progress=False, log=lambda m: None).path


@pytest.fixture(scope="module")
def frames(synthetic_mvtec, tmp_path_factory) -> Path:
    """The unseen test images (10 good, 10 defective) in one folder."""
    folder = tmp_path_factory.mktemp("frames") / "frames"
    folder.mkdir()
    for sub in ("good", "defect"):
        for p in sorted((synthetic_mvtec / "test" / sub).glob("*.png")):
            shutil.copy(p, folder / f"{sub}_{p.name}")
    return folder


def write_config(path: Path, bundle: Path, source: str, sinks: str, extra: str = "") -> Path:
    path.write_text(f"bundle: {bundle}\nsource:\n  {source}\nout: out\n{extra}sinks:\n{sinks}")
    return path


def stdout_alerts(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_every_sink_gets_every_alert(run_bundle, frames, tmp_path):
    broker = Mosquitto(require_mosquitto(), tmp_path / "broker").start()
    receiver = Receiver()
    sub = Subscriber(broker.port, "line/s1/default/alerts", client_id="t-run", clean=True)
    try:
        config = write_config(
            tmp_path / "edge.yaml",
            run_bundle,
            f"images: {frames}",
            f"""\
  jsonl: {{max_mb: 0.002, keep: 20}}
  snapshots: {{max_count: 3}}
  webhook: {{url: "{receiver.url}", backoff_s: 0.05}}
  mqtt: {{host: 127.0.0.1, port: {broker.port}, prefix: line, station: s1, backoff_s: 0.05}}
""",
        )
        proc = run_edge_in_process("run", "--config", str(config))
        assert proc.returncode == 0, proc.stderr
        alerts = stdout_alerts(proc.stdout)
        ids = [a["id"] for a in alerts]
        assert len(ids) >= 5, "the defective half of the frames should raise alerts"
        assert (
            "alerts to: stdout; jsonl" in proc.stderr and "webhook" in proc.stderr and "mqtt 127.0.0.1" in proc.stderr
        )
        out = tmp_path / "out"  # relative to the config file
        # Network sinks: the run flushed them at stop; every alert delivered, in order.
        assert receiver.ids() == ids
        assert wait_until(lambda: sub.alert_ids("line/s1/default/alerts") == ids, 5)
        assert len(list((out / "state").glob("outbox-*.db"))) == 2
        # Rotated JSONL: together the files hold every alert once.
        files = sorted(out.glob("events.jsonl*"))
        assert len(files) > 1
        from_files = {json.loads(line)["id"] for f in files for line in f.read_text().splitlines()}
        assert from_files == set(ids)
        # Snapshots: only the newest 3 alerts' images are kept.
        kept = sorted((out / "snapshots").iterdir())
        assert len(kept) == 6
        assert {Path(a["snapshot"]).name for a in alerts[-3:]} <= {p.name for p in kept}
        # The store, read back through `edge events`.
        listed = run_edge_in_process("events", "--db", str(out / "events.db"), "--json", "--limit", "0")
        assert listed.returncode == 0
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert {r["id"] for r in rows} == set(ids)
        by_id = {a["id"]: a for a in alerts}
        assert all(r == by_id[r["id"]] for r in rows)
    finally:
        sub.close()
        receiver.stop()
        broker.stop()


def test_broker_down_during_a_run_then_the_next_start_delivers_the_backlog(run_bundle, frames, tmp_path):
    binary = require_mosquitto()
    port = free_port()  # nothing listens during the first run
    config = write_config(
        tmp_path / "edge.yaml",
        run_bundle,
        f"images: {frames}",
        f"""\
  stdout: true
  snapshots: false
  mqtt: {{host: 127.0.0.1, port: {port}, prefix: late, station: s1, close_timeout_s: 0.5}}
""",
    )
    first = run_edge_in_process("run", "--config", str(config))
    assert first.returncode == 0, first.stderr  # the run was not held up by the broker
    assert "warning: MQTT broker 127.0.0.1:" in first.stderr and "unreachable at start" in first.stderr
    ids = [a["id"] for a in stdout_alerts(first.stdout)]
    assert ids and f"{len(ids)} alerts not delivered yet" in first.stderr
    with sqlite3.connect(tmp_path / "out" / "state" / "outbox-mqtt.db") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == len(ids)

    broker = Mosquitto(binary, tmp_path / "broker", port=port).start()
    sub = Subscriber(port, "late/s1/default/alerts", client_id="t-backlog", clean=True)
    try:
        second = run_edge_in_process("run", "--config", str(config), "--max-frames", "1")
        assert second.returncode == 0, second.stderr
        assert f"{len(ids)} undelivered alerts from before this start" in second.stderr
        assert wait_until(lambda: set(ids) <= set(sub.alert_ids("late/s1/default/alerts")), 10)
    finally:
        sub.close()
        broker.stop()


def test_sigterm_stops_cleanly_and_flushes_the_queue(run_bundle, tmp_path):
    receiver = Receiver(fail_first=3)  # a few refusals first, so alerts are queued when we stop
    video = write_video(tmp_path / "line.avi", 40, defective_frames=set(range(0, 40, 2)))
    config = write_config(
        tmp_path / "edge.yaml",
        run_bundle,
        f"video: {video}\n  loop: true",
        f"""\
  snapshots: false
  webhook: {{url: "{receiver.url}", backoff_s: 0.05, backoff_max_s: 0.1, close_timeout_s: 10}}
""",
    )
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_cli", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
        watchdog = threading.Timer(90, proc.kill)  # bounds the blocking reads below
        watchdog.start()
        try:
            lines = []
            while len(lines) < 5:
                line = proc.stdout.readline()
                assert line, "edge run ended before raising 5 alerts"
                lines.append(line)
            proc.send_signal(signal.SIGTERM)
            rest = proc.stdout.read()  # to EOF: the alerts raised before the stop took effect
            proc.wait(60)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
            receiver.stop()
    err = err_path.read_text()
    assert proc.returncode == 0, err
    assert "stopping (signal received)" in err and "(signal)" in err
    ids = [a["id"] for a in stdout_alerts("".join(lines) + rest)]
    assert receiver.ids() == ids  # nothing raised before the stop was left behind


def test_required_broker_down_is_one_line_and_exit_2(run_bundle, frames, tmp_path):
    # the source opens first (a bad source leaves no outputs behind), so this one must exist
    config = write_config(
        tmp_path / "edge.yaml",
        run_bundle,
        f"images: {frames}",
        f"  mqtt: {{host: 127.0.0.1, port: {free_port()}, required: true, connect_timeout_s: 3}}\n",
    )
    proc = run_edge("run", "--config", str(config))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: MQTT broker 127.0.0.1:") and "sinks.mqtt.required is true" in lines[0]


def test_missing_secret_is_one_line_and_exit_2(run_bundle, frames, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_TEST_UNSET_TOKEN", raising=False)
    config = write_config(
        tmp_path / "edge.yaml",
        run_bundle,
        f"images: {frames}",
        "  webhook:\n    url: http://127.0.0.1:9/\n    headers_env: {Authorization: EDGE_TEST_UNSET_TOKEN}\n",
    )
    proc = run_edge_in_process("run", "--config", str(config))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: sinks.webhook.headers_env.Authorization: environment variable EDGE_TEST_UNSET_TOKEN is not set; "
        "export it (or add it to the service's EnvironmentFile)"
    ]


def test_gpio_sink_from_the_config_with_a_mock_pin_factory(run_bundle, frames, tmp_path, monkeypatch):
    gpiozero = pytest.importorskip("gpiozero")
    config = write_config(tmp_path / "edge.yaml", run_bundle, f"images: {frames}", "  gpio: {pin: 17, pulse_ms: 5}\n")
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    # As in a fresh process, the factory comes from the variable at the first device (restored after).
    monkeypatch.setattr(gpiozero.Device, "pin_factory", None)
    proc = run_edge_in_process("run", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "gpio BCM17 (5 ms pulse)" in proc.stderr
    assert "gpio:" not in proc.stderr.replace("gpio BCM17", "")  # no pulse failed
