"""Where alerts go. Each sink has one job; a sink that fails must never stop inspection.

console (stdout JSON lines), jsonl (rotating, fsynced file), sqlite_store (WAL event store read by
`edge events`), snapshots (PNG folder with retention), webhook and mqtt (durable outbox +
background delivery, at least once: see outbox), gpio (output pulse). factory.build_sinks makes
them from the `sinks:` section of the run config (edge.config). Network and GPIO libraries are
imported only when their sink is configured.
"""

from edge.sinks.base import Sink, SinkGroup

__all__ = ["Sink", "SinkGroup"]
