"""`edge events`: query the SQLite event store that `edge run` fills."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from edge.sinks.sqlite_store import EventQuery, parse_time, query_events


def _local(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def register(app: typer.Typer) -> None:
    @app.command("events")
    def events(
        db: Path = typer.Option(Path("edge-out/events.db"), "--db", help="Event store written by `edge run` (OUT/events.db)."),
        since: Optional[str] = typer.Option(
            None, "--since", help="Only events at or after this time: ISO 8601 (local time unless it has an offset) or an age such as 30m, 12h, 7d."
        ),
        until: Optional[str] = typer.Option(None, "--until", help="Only events before this time (same forms as --since)."),
        source: Optional[str] = typer.Option(None, "--source", help="Only this source, exactly as shown (camera:0, a video file name)."),
        min_score: Optional[float] = typer.Option(None, "--min-score", help="Only events scoring at least this much."),
        label: Optional[str] = typer.Option(None, "--label", help="Only this label (anomaly, or a classifier's class)."),
        limit: int = typer.Option(50, "--limit", "-n", min=0, help="Show at most this many, newest first; 0: all."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per line (the alert as sinks receive it) instead of a table."),
    ) -> None:
        """List alerts from the event store, newest first, as a table or as JSON lines.

        Works while `edge run` is writing (the store is in WAL mode). Examples:

          edge events --db /var/lib/edge-inspect/out/events.db --since 12h

          edge events --min-score 0.05 --source camera:0 --json | jq .snapshot
        """
        q = EventQuery(
            since=parse_time(since) if since else None,
            until=parse_time(until) if until else None,
            source=source,
            min_score=min_score,
            label=label,
            limit=limit or None,
        )
        rows, total = query_events(db, q)
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(caption=f"{len(rows)} of {total} matching events, newest first ({db})", caption_justify="left")
        table.add_column("time (local)", no_wrap=True)
        table.add_column("source")
        table.add_column("frame", justify="right")
        table.add_column("score", justify="right")
        table.add_column("threshold", justify="right")
        table.add_column("label")
        table.add_column("box x,y,w,h")
        table.add_column("snapshot", overflow="fold")
        table.add_column("id")
        for r in rows:
            table.add_row(
                _local(r["time"]), r["source"], str(r["frame_index"]), f"{r['score']:.5g}",
                f"{r['threshold']:.5g}", r["label"], ",".join(map(str, r["box"])) if r["box"] else "",
                r["snapshot"] or "", r["id"][:8],
            )
        Console(soft_wrap=False).print(table)
