"""The run folder written by `edge train …` and read by `edge export`: file names and run.json."""

from __future__ import annotations

import json
from pathlib import Path

from edge.errors import EdgeError

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"


def read_run(run_dir: str | Path) -> dict:
    """run.json of a training run, checked enough that later steps can trust its keys."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgeError(f"run folder not found: {run_dir} (make one with `edge train autoencoder --out {run_dir}`)")
    model = run_dir / MODEL_FILE
    if not model.is_file():
        raise EdgeError(
            f"{run_dir} has no {MODEL_FILE}: not a training run folder (train with `edge train autoencoder`)"
        )
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise EdgeError(f"{run_dir} has no {RUN_FILE} beside {MODEL_FILE}; re-run `edge train` to write it")
    try:
        run = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeError(f"{path} is not valid JSON ({exc}); re-run `edge train`") from None
    missing = [k for k in ("kind", "preprocessing") if k not in run] if isinstance(run, dict) else ["(all)"]
    if missing:
        raise EdgeError(f"{path} lacks {', '.join(missing)}; re-run `edge train`")
    return run
