"""Progress and problems go to stderr, one line each; stdout is kept for results (paths, alerts)."""

from __future__ import annotations

import sys
from typing import Callable

Log = Callable[[str], None]  # where a long-running function reports, e.g. to_stderr or a list's append


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
