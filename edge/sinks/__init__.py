"""Where alerts go. Each sink has one job; a sink that fails must never stop inspection."""

from edge.sinks.base import Sink

__all__ = ["Sink"]
