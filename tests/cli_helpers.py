"""Run the `edge` command line as a user does: a subprocess of this interpreter (python -m edge_cli).

One helper for every test file, so the command, the captured output and the time limit read the
same everywhere. `env` adds to the environment (a user's shell), it does not replace it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
EDGE = [sys.executable, "-m", "edge_cli"]


def run_edge(*args, cwd: Path = REPO, timeout: float = 300, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """`edge ARGS…` (each arg str()-ed), stdout and stderr captured as text; never waits past `timeout`."""
    return subprocess.run(
        [*EDGE, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )
