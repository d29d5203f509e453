"""`edge bundles`: the versions of a bundle on this device, with their lineage; `--rollback`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edge import bundle_history
from edge.bundle_history import VersionInfo

_HISTORY = typer.Argument(..., help="A folder of bundle versions (made by `edge calibrate --from`).")
_ROLLBACK = typer.Option(False, "--rollback", help="Make the version before the current one current again.")
_JSON = typer.Option(False, "--json", help="One JSON object per version instead of the table.")


def register(app: typer.Typer) -> None:
    app.command("bundles")(bundles)


def bundles(history: Path = _HISTORY, rollback: bool = _ROLLBACK, as_json: bool = _JSON) -> None:
    """List the bundle versions in HISTORY (id, version, parent, created, threshold, method, counts).

    The current one is marked `*`; `edge run --bundle HISTORY` runs it. With --rollback, the newest
    sound version older than the current one becomes current (a running `edge run` picks it up at
    its next start). A version that fails its checks is listed with why.
    """
    if rollback:
        restored = bundle_history.rollback(history)
        typer.echo(f"rolled back: v{restored.number} ({restored.bundle.id}) is current in {history}")
        return
    rows = bundle_history.list_versions(history)
    for row in rows:
        typer.echo(json.dumps(row.as_dict()) if as_json else _line(row))


def _line(row: VersionInfo) -> str:
    mark = "*" if row.current else " "
    if row.bundle is None:
        return f"{mark} v{row.number}  BROKEN: {row.problem}"
    m = row.bundle.manifest
    why = m.calibration
    counts = f"{why.normal} normal, {why.skipped} skipped, {why.data}" if why else "(first calibration)"
    return (
        f"{mark} v{row.number}  id {row.bundle.id}  parent {m.parent or '-'}  created {m.created}  "
        f"threshold {m.threshold.value:.6g} ({m.threshold.method})  {counts}"
    )
