"""`edge events`: query the SQLite event store that `edge run` fills."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from edge.redact import printable
from edge.sinks.sqlite_store import EventQuery, parse_time, query_events


def _local(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _cell(value):
    """Stored text as a table cell: literal (no rich markup) with control characters written out.

    A source, label or file name comes from outside (a video's name, a classifier's classes): its
    escape sequences must not reach the terminal, nor "[bold]" be taken for markup.
    """
    from rich.text import Text

    return Text(printable(value, one_line=True))


def _verdict(review: Optional[dict]) -> str:
    """A review as a short cell: "false alarm", "defect: crack", or empty when not reviewed."""
    if not review:
        return ""
    if review["verdict"] == "real_defect":
        return f"defect: {review['defect']}" if review.get("defect") else "defect"
    return review["verdict"].replace("_", " ")


def register(app: typer.Typer) -> None:
    @app.command("events")
    def events(
        db: Path = typer.Option(
            Path("edge-out/events.db"), "--db", help="Event store written by `edge run` (OUT/events.db)."
        ),
        since: Optional[str] = typer.Option(
            None,
            "--since",
            help="Only events at or after this time: ISO 8601 "
            "(local time unless it has an offset) or an age such as 30m, 12h, 7d.",
        ),
        until: Optional[str] = typer.Option(
            None, "--until", help="Only events before this time (same forms as --since)."
        ),
        source: Optional[str] = typer.Option(
            None, "--source", help="Only this source, exactly as shown (camera:0, a video file name)."
        ),
        min_score: Optional[float] = typer.Option(
            None,
            "--min-score",
            help="Only events scoring at least this much, on the bundle's own score scale: "
            "compare with the threshold column (the default feature model scores in the tens, e.g. 40).",
        ),
        label: Optional[str] = typer.Option(
            None, "--label", help="Only this label (anomaly, or a classifier's class)."
        ),
        inspection: Optional[str] = typer.Option(
            None, "--inspection", help="Only this inspection (a name under `inspections:` of a multi-camera run)."
        ),
        limit: int = typer.Option(50, "--limit", "-n", min=0, help="Show at most this many, newest first; 0: all."),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="One JSON object per line (the alert as sinks receive it, plus `review`: the web page's "
            "verdict or null, in a store that has reviews) instead of a table.",
        ),
    ) -> None:
        """List alerts from the event store, newest first, as a table or as JSON lines.

        Works while `edge run` is writing (the store is in WAL mode). Examples:

          edge events --db /var/lib/edge-inspect/out/events.db --since 12h

          edge events --min-score 40 --source camera:0 --json | jq .snapshot

        Scores are on the scale of the bundle that made them: --min-score is compared with the
        threshold shown in the table (tens for the default feature model, small fractions for
        the autoencoders' mean squared error).
        """
        q = EventQuery(
            since=parse_time(since) if since else None,
            until=parse_time(until) if until else None,
            source=source,
            min_score=min_score,
            label=label,
            inspection=inspection,
            limit=limit or None,
        )
        rows, total = query_events(db, q)
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(
            caption=_cell(f"{len(rows)} of {total} matching events, newest first ({db}); full records: --json"),
            caption_justify="left",
        )
        for name, justify, width in (
            ("time (local)", "left", 19),
            ("source", "left", 8),
            ("frame", "right", 5),
            ("score", "right", 7),
            ("threshold", "right", 7),
            ("label", "left", 7),
            ("box x,y,w,h", "left", 11),
            ("id", "left", 8),
        ):
            table.add_column(name, justify=justify, no_wrap=True, min_width=width)
        named = any(r.get("inspection") for r in rows)  # a run with several cameras (`inspections:`)
        if named:
            table.add_column("inspection", no_wrap=True)
        reviewed = any("review" in r for r in rows)  # a store the web page reviewed in
        if reviewed:
            table.add_column("verdict", no_wrap=True)
        # The file name is enough to find it; the folder is the same for every row of one run.
        table.add_column("snapshot", overflow="fold")
        for r in rows:
            verdict = [_cell(_verdict(r.get("review")))] if reviewed else []
            inspection = [_cell(r.get("inspection") or "")] if named else []
            table.add_row(
                _cell(_local(r["time"])),
                _cell(r["source"]),
                str(r["frame_index"]),
                f"{r['score']:.4g}",
                f"{r['threshold']:.4g}",
                _cell(r["label"]),
                ",".join(map(str, r["box"])) if r["box"] else "",
                _cell(r["id"][:8]),
                *inspection,
                *verdict,
                _cell(Path(r["snapshot"]).name if r["snapshot"] else ""),
            )
        # Piped into a file or less: don't squeeze the table to 80 columns.
        Console(width=None if sys.stdout.isatty() else 200).print(table)
