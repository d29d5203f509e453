"""Local sinks: rotating JSONL, snapshot retention, SQLite store, GPIO pulse, and a full disk."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from sinks_helpers import fresh_problem_log, make_alert, wait_until  # noqa: F401 (autouse fixture)

from edge.alert import Alert
from edge.sinks.base import SinkGroup
from edge.sinks.jsonl import JsonlSink
from edge.sinks.snapshots import SnapshotStore
from edge.sinks.sqlite_store import SqliteSink

ROOT = Path(__file__).resolve().parent.parent


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- JSONL --------------------------------------------------------------------------------------


def test_jsonl_rotates_by_size_and_keeps_n_files(tmp_path):
    path = tmp_path / "events.jsonl"
    line_len = len(json.dumps(make_alert(0).to_dict())) + 1
    sink = JsonlSink(path, max_bytes=3 * line_len + 10, keep=2)  # 3 alerts per file
    alerts = [make_alert(i) for i in range(11)]
    for a in alerts:
        sink.emit(a)
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    current, older, oldest = (read_jsonl(tmp_path / n) for n in ("events.jsonl", "events.jsonl.1", "events.jsonl.2"))
    # 11 alerts = 3 + 3 + 3 + 2: the first file of 3 was deleted (keep=2)
    assert [d["id"] for d in oldest + older + current] == [a.id for a in alerts[3:]]
    assert len(current) == 2
    assert all(p.stat().st_size <= 3 * line_len + 10 for p in tmp_path.iterdir())


def test_jsonl_appends_across_restarts_and_each_line_is_a_full_alert(tmp_path):
    path = tmp_path / "e" / "events.jsonl"
    for i in range(2):
        sink = JsonlSink(path)
        sink.emit(make_alert(i))
        sink.close()
    rows = read_jsonl(path)
    assert [r["frame_index"] for r in rows] == [0, 1]
    assert Alert.from_dict(rows[0]).box == (1, 2, 3, 4)


def test_jsonl_on_a_full_device_logs_one_line_and_goes_on(capsys):
    # /dev/full: every write fails with ENOSPC, as on a full SD card.
    sink = JsonlSink("/dev/full")
    for i in range(5):
        sink.emit(make_alert(i))  # must not raise
    sink.close()
    assert sink.failed == 5 and sink.written == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write alert" in err[0] and "No space left on device" in err[0]


def test_disk_full_in_a_real_run_of_the_local_sinks_is_survived(tmp_path):
    """A process whose files may not grow (RLIMIT_FSIZE, the kernel's own 'file too large') keeps
    emitting: JSONL, snapshots and the SQLite store log and continue, nothing raises."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from sinks_helpers import make_alert
        from edge.sinks.base import SinkGroup
        from edge.sinks.jsonl import JsonlSink
        from edge.sinks.snapshots import SnapshotStore
        from edge.sinks.sqlite_store import SqliteSink
        out = {str(tmp_path)!r}
        jsonl, store = JsonlSink(out + "/events.jsonl"), SqliteSink(out + "/events.db")
        shots = SnapshotStore(out + "/snapshots")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
        group = SinkGroup([jsonl, store])
        noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        for i in range(40):
            alert = make_alert(i)
            shots.write(alert, noise, noise)
            group.emit(alert)
        group.close()
        print("alive", jsonl.written, jsonl.failed, shots.failed, store.failed)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    alive, written, jsonl_failed, shots_failed, store_failed = proc.stdout.split()
    assert alive == "alive"
    assert int(jsonl_failed) > 0 and int(written) > 0 and int(shots_failed) > 0
    assert "Traceback" not in proc.stderr
    # Lines are rate-limited: 40 failing alerts do not make 40 lines per sink.
    assert proc.stderr.count("cannot write alert") == 1
    assert proc.stderr.count("not saved") == 1
    # What was written is whole: every line parses (a half-written line is cut off).
    rows = read_jsonl(tmp_path / "events.jsonl")
    assert len(rows) == int(written)


# --- snapshots ------------------------------------------------------------------------------


def _frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def test_snapshots_are_written_and_their_paths_go_on_the_alert(tmp_path):
    store = SnapshotStore(tmp_path / "snaps")
    alert = make_alert(7)
    store.write(alert, _frame(0), _frame(1))
    raw = cv2.imread(alert.snapshot)
    assert raw is not None and raw.shape == (48, 64, 3)
    assert np.array_equal(raw, _frame(0))  # PNG: lossless
    assert Path(alert.annotated).name.endswith("_annotated.png")
    assert f"_{7:06d}_{alert.id[:8]}" in Path(alert.snapshot).name


def test_snapshot_retention_by_count_deletes_oldest_first_and_counts_old_runs(tmp_path):
    folder = tmp_path / "snaps"
    store = SnapshotStore(folder, max_count=3)
    alerts = []
    for i in range(5):
        a = make_alert(i, time=f"2025-03-01T10:00:0{i}.000+00:00")
        store.write(a, _frame(i), _frame(i))
        alerts.append(a)
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 6  # 3 alerts x (raw + annotated)
    assert not Path(alerts[0].snapshot).exists() and not Path(alerts[1].snapshot).exists()
    assert all(Path(a.snapshot).exists() for a in alerts[2:])
    assert store.deleted == 2
    # A new run on the same folder sees the old snapshots and keeps enforcing the limit.
    again = SnapshotStore(folder, max_count=3)
    assert again.count == 3
    late = make_alert(9, time="2025-03-01T10:00:09.000+00:00")
    again.write(late, _frame(9), _frame(9))
    assert not Path(alerts[2].snapshot).exists() and Path(late.snapshot).exists()
    # Files that are not ours are left alone.
    (folder / "notes.txt").write_text("keep me")
    SnapshotStore(folder, max_count=1)
    assert (folder / "notes.txt").exists()


def test_snapshot_retention_by_size(tmp_path):
    store = SnapshotStore(tmp_path / "s", max_mb=0.05, annotated=False)  # ~52 kB
    for i in range(20):
        store.write(make_alert(i, time=f"2025-03-01T10:00:{i:02d}.000+00:00"), _frame(i))
    total = sum(p.stat().st_size for p in (tmp_path / "s").iterdir())
    assert total <= 0.05 * 1024 * 1024
    assert store.bytes == total
    assert 0 < store.count < 20 and store.deleted == 20 - store.count


# --- SQLite -----------------------------------------------------------------------------------


def test_sqlite_store_is_wal_keeps_everything_and_ignores_replays(tmp_path):
    path = tmp_path / "events.db"
    sink = SqliteSink(path)
    a = make_alert(1, extra={"part": 4})
    sink.emit(a)
    sink.emit(a)  # an at-least-once replay: stored once
    sink.emit(make_alert(2))
    # A reader while the writer is open (what `edge events` does during a run).
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT id, score, box, extra FROM events ORDER BY frame_index").fetchall()
    sink.close()
    assert len(rows) == 2
    assert rows[0][0] == a.id and rows[0][1] == pytest.approx(a.score)
    assert json.loads(rows[0][2]) == [1, 2, 3, 4] and json.loads(rows[0][3]) == {"part": 4}


# --- fan-out ----------------------------------------------------------------------------------


class Exploding:
    name = "exploding"

    def emit(self, alert):
        raise RuntimeError("boom")

    def close(self):
        raise OSError("close boom")


def test_a_sink_that_raises_is_logged_once_and_the_others_still_get_the_alert(tmp_path, capsys):
    jsonl = JsonlSink(tmp_path / "e.jsonl")
    group = SinkGroup([Exploding(), jsonl])
    for i in range(3):
        group.emit(make_alert(i))
    group.close()
    assert len(read_jsonl(tmp_path / "e.jsonl")) == 3
    assert group.failures == {"exploding": 3}
    err = capsys.readouterr().err
    assert err.count("sink exploding failed on alert") == 1 and "RuntimeError: boom" in err
    assert "sink exploding failed to close" in err


# --- GPIO -------------------------------------------------------------------------------------


@pytest.fixture
def mock_pins():
    gpiozero = pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory

    previous = gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory = MockFactory()
    yield gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory.reset()
    gpiozero.Device.pin_factory = previous


def test_gpio_pulses_the_pin_high_then_low_without_blocking(mock_pins):
    from edge.sinks.gpio import GpioSink

    sink = GpioSink(17, pulse_ms=80)
    pin = mock_pins.pin(17)
    assert pin.state is False
    sink.emit(make_alert(0))
    assert pin.state is True  # emit returned while the pulse is still on: it does not wait for it
    assert wait_until(lambda: pin.state is False, 5)
    states = [s.state for s in pin.states]
    assert states[-2:] == [True, False]
    high_at, low_at = pin.states[-2].timestamp, pin.states[-1].timestamp
    assert low_at - high_at >= 0.07  # the pulse lasted its 80 ms
    sink.close()


def test_gpio_active_low_for_relay_boards(mock_pins):
    from edge.sinks.gpio import GpioSink

    sink = GpioSink(27, pulse_ms=20, active_high=False)
    pin = mock_pins.pin(27)
    assert pin.state is True  # idle = high on an active-low output
    sink.emit(make_alert(0))
    assert wait_until(lambda: [s.state for s in pin.states][-2:] == [False, True], 5)
    sink.close()


def test_gpio_without_a_usable_pin_is_one_clear_error(mock_pins):
    from edge.errors import EdgeError
    from edge.sinks.gpio import GpioSink

    with pytest.raises(EdgeError, match="cannot drive GPIO pin 40 .*not a valid pin"):
        GpioSink(40, pulse_ms=10)  # a Pi has BCM 0-27
