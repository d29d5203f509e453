from __future__ import annotations

from typing import Protocol

from edge.alert import Alert


class Sink(Protocol):
    name: str

    def emit(self, alert: Alert) -> None:
        """Deliver (or durably queue) one alert. Must not raise on a transient fault."""

    def close(self) -> None:
        """Flush and release resources."""
