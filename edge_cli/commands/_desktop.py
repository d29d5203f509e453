"""Guard for desktop-only commands on a machine without TensorFlow."""

from __future__ import annotations

import importlib.util

from edge.errors import EdgeError


def require_tensorflow(command: str) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        raise EdgeError(
            f"`edge {command}` runs on the desktop and needs TensorFlow: pip install 'edge-inspect[desktop]'"
        )
