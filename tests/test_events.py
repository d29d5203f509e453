"""`edge events`: the SQLite event store queried from the command line."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_helpers import run_edge_in_process
from sinks_helpers import make_alert
from typer.testing import CliRunner

from edge.sinks.sqlite_store import SqliteSink, parse_time
from edge_cli.app import app

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """12 alerts: two cameras, scores 0.10 .. 0.65, one per hour going back from now, one labelled crack."""
    path = tmp_path_factory.mktemp("events") / "events.db"
    sink = SqliteSink(path)
    for i in range(12):
        sink.emit(
            make_alert(
                i,
                source="camera:0" if i % 2 == 0 else "camera:1",
                score=0.10 + 0.05 * i,
                threshold=0.2,
                time=iso(NOW - timedelta(hours=11 - i, minutes=30)),
                label="crack" if i == 5 else "anomaly",
            )
        )
    sink.close()
    return path


def events(*args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["events", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_newest_first_with_a_default_limit(store):
    rows = events("--db", str(store))
    assert [r["frame_index"] for r in rows] == list(range(11, -1, -1))
    assert len(events("--db", str(store), "--limit", "3")) == 3
    assert len(events("--db", str(store), "--limit", "0")) == 12  # 0: all


def test_json_rows_are_the_alerts_as_sinks_receive_them(store):
    row = events("--db", str(store), "--limit", "1")[0]
    assert set(row) == set(make_alert(0).to_dict())
    assert row["box"] == [1, 2, 3, 4] and row["extra"] == {}


def test_filters_by_source_score_label_and_time(store):
    assert {r["source"] for r in events("--db", str(store), "--source", "camera:1")} == {"camera:1"}
    assert [r["frame_index"] for r in events("--db", str(store), "--min-score", "0.5")] == [11, 10, 9, 8]
    assert [r["frame_index"] for r in events("--db", str(store), "--label", "crack")] == [5]
    # ages: the last 3 hours hold frames 9, 10, 11 (at now-2h30, -1h30, -0h30)
    assert [r["frame_index"] for r in events("--db", str(store), "--since", "3h")] == [11, 10, 9]
    # ISO with an offset; --until is exclusive
    since, until = iso(NOW - timedelta(hours=6)), iso(NOW - timedelta(hours=3))
    assert [r["frame_index"] for r in events("--db", str(store), "--since", since, "--until", until)] == [8, 7, 6]
    combined = events("--db", str(store), "--since", "6h", "--source", "camera:0", "--min-score", "0.45")
    assert [r["frame_index"] for r in combined] == [10, 8]


def test_naive_times_are_local_time():
    naive = parse_time("2025-03-01T14:00")
    assert naive.utcoffset() == datetime(2025, 3, 1, 14, 0).astimezone().utcoffset()
    assert parse_time("2025-03-01T14:00:00+02:00").hour == 14
    assert parse_time("90m", now=NOW) == NOW - timedelta(minutes=90)


def test_table_by_default(store):
    result = CliRunner().invoke(app, ["events", "--db", str(store), "--source", "camera:0"])
    assert result.exit_code == 0
    assert "camera:0" in result.output and "camera:1" not in result.output
    assert "6 of 6 matching events" in result.output


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_edge_in_process("events", *args, cwd=ROOT)


def test_missing_store_and_bad_time_are_one_line_errors(tmp_path, store):
    proc = _cli("--db", str(tmp_path / "nope.db"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no event store at" in proc.stderr
    proc = _cli("--db", str(store), "--since", "yesterday-ish")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot read time 'yesterday-ish'" in proc.stderr
    (tmp_path / "junk.db").write_text("not a database")
    proc = _cli("--db", str(tmp_path / "junk.db"))
    assert proc.returncode == 2 and "is not an edge-inspect event store" in proc.stderr


def test_escape_sequences_in_stored_text_never_reach_the_terminal(tmp_path):
    """A video named "\x1b[2J….avi" (or a label, a snapshot name) is shown written out, not obeyed;
    rich markup in a name is shown as it is; --json keeps the exact text (JSON-escaped)."""
    path = tmp_path / "events.db"
    sink = SqliteSink(path)
    hostile = "line\x1b[2J\x1b]0;owned\x07[bold]1[/bold]\u202e.avi"
    sink.emit(make_alert(0, source=hostile, label="crack\x1b[31m", snapshot=f"/out/{hostile}.png"))
    sink.close()
    proc = run_edge_in_process("events", "--db", path, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert not any(c in proc.stdout for c in "\x1b\x07\u202e")
    assert "\\x1b[2J" in proc.stdout and "[bold]1[/bold]" in proc.stdout
    shown = run_edge_in_process("events", "--db", path, "--json", cwd=ROOT).stdout
    assert json.loads(shown)["source"] == hostile and "\x1b" not in shown


def test_a_store_from_before_the_bundle_columns_is_read_then_upgraded_in_place(tmp_path):
    """Alerts carry the bundle id and version (issue 15). A store written before has no such columns:
    `edge events` reads it as it was, and the next run adds them without losing a row."""
    import sqlite3

    from edge.sinks.sqlite_store import SCHEMA, EventQuery, query_events

    db_path = tmp_path / "events.db"
    with sqlite3.connect(db_path) as db:  # the old layout: SCHEMA alone, no ALTER TABLE
        db.executescript(SCHEMA)
    row = make_alert(1).to_dict()  # one row as the old sink wrote it
    with sqlite3.connect(db_path) as db:
        db.execute(
            "INSERT INTO events (id, time, ts, source, frame_index, score, threshold, label) VALUES (?,?,?,?,?,?,?,?)",
            (row["id"], row["time"], 0.0, row["source"], 1, row["score"], row["threshold"], row["label"]),
        )
    rows, total = query_events(db_path, EventQuery(limit=None))
    assert total == 1 and "bundle_id" not in rows[0] and "bundle_version" not in rows[0]

    sink = SqliteSink(db_path)  # a new run opens it: the columns are added
    new = make_alert(2, bundle_id="ab12cd34", bundle_version=3)
    assert sink.emit(new)
    sink.close()
    rows, total = query_events(db_path, EventQuery(limit=None))
    by_id = {r["id"]: r for r in rows}
    assert total == 2
    assert by_id[new.id]["bundle_id"] == "ab12cd34" and by_id[new.id]["bundle_version"] == 3
    assert "bundle_id" not in by_id[row["id"]]
