"""Build the configured sinks from a RunConfig's `sinks` section.

Returns the alert sinks behind one SinkGroup (a sink that raises is logged, never fatal) and the
snapshot store, which the pipeline calls with the frame before the alert goes out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edge.errors import EdgeError
from edge.redact import redact_url
from edge.sinks.base import Sink, SinkGroup, takes_reviews
from edge.sinks.dispatch import AlertDispatcher, durable
from edge.sinks.journal import open_journal
from edge.sinks.snapshots import SnapshotStore


@dataclass
class BuiltSinks:
    group: SinkGroup
    snapshots: Optional[SnapshotStore]
    described: list[str] = field(default_factory=list)
    dispatcher: Optional[AlertDispatcher] = None  # journal + alert worker (edge run); None: inline

    def bind_run(self, pipeline) -> None:
        """Hand the running pipeline to the sinks that report its state (MQTT metrics, Sparkplug, OPC UA)."""
        for sink in self.group:
            bind = getattr(sink, "bind_run", None)
            if callable(bind):
                bind(pipeline)

    def close(self) -> None:
        # The queued alerts reach the sinks (or stay journaled) before the sinks close.
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.group.close()
        if self.snapshots is not None:
            self.snapshots.close()


def _env(var: str, key: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise EdgeError(
            f"{key}: environment variable {var} is not set; export it (or add it to the service's EnvironmentFile)"
        )
    return value


def _file(path: Optional[str], key: str) -> Optional[str]:
    if path is not None and not Path(path).is_file():
        raise EdgeError(f"{key}: file not found: {path}")
    return path


def _unwritable(exc: OSError) -> EdgeError:
    where = f" {exc.filename}" if exc.filename else ""
    return EdgeError(
        f"cannot write the run's outputs:{where}: {exc.strerror or exc}; "
        "give an --out (or `out:`/`state:`) folder this user can write, on a writable filesystem"
    )


def build_sinks(config, out: Path, state: Path, journaled: bool = True) -> BuiltSinks:
    """`config` is an edge.config.SinksConfig; relative sink files go under `out`, outboxes under `state`.

    With `journaled`, alerts go through the journal in `state` and the alert worker
    (edge.sinks.dispatch); an output folder that cannot be written is one EdgeError line.
    """
    try:
        built = _build(config, out, state)
    except OSError as exc:  # a read-only mount, OUT that is a file, permissions
        raise _unwritable(exc) from None
    if journaled:
        after = [s for s in built.group if not getattr(s, "immediate", False)]
        try:
            journal = open_journal(
                state, [s.name for s in after if durable(s)], [s.name for s in after if durable(s) and takes_reviews(s)]
            )
            held = config.snapshots.queue_frames if config.snapshots is not None else 0
            built.dispatcher = AlertDispatcher(after, built.snapshots, journal, max_snapshot_frames=held)
        except BaseException:
            built.close()
            raise
    return built


def _build(config, out: Path, state: Path) -> BuiltSinks:
    """Each configured sink in a fixed order (the order alerts reach them and the start-up lines)."""
    _require_extras(config)  # before any sink connects: a missing package is the only line said
    sinks: list[Sink] = []
    described: list[str] = []
    snapshots = None
    makers = (
        (config.stdout, lambda: _console_sink()),
        (config.jsonl, lambda: _jsonl_sink(config.jsonl, out)),
        (config.sqlite, lambda: _sqlite_sink(config.sqlite, out)),
        (config.snapshots, lambda: _snapshot_store(config.snapshots, out)),
        (config.gpio, lambda: _gpio_sink(config.gpio)),
        (config.webhook, lambda: _webhook_sink(config.webhook, state)),
        (config.mqtt, lambda: _mqtt_sink(config.mqtt, state)),
        (config.mqtt and config.mqtt.sparkplug, lambda: _sparkplug_sink(config.mqtt, state)),
        (config.opcua, lambda: _opcua_sink(config.opcua, config.mqtt)),
    )
    try:
        for section, make in makers:
            if section is None or section is False:  # not configured (stdout: a bool)
                continue
            built, description = make()
            if isinstance(built, SnapshotStore):
                snapshots = built  # not a sink: the pipeline hands it the frame before the alert goes out
            else:
                sinks.append(built)
            described.append(description)
    except BaseException:
        SinkGroup(sinks).close()
        raise
    return BuiltSinks(SinkGroup(sinks), snapshots, described)


def _require_extras(config) -> None:
    """The optional packages the configured options need; each missing one is an EdgeError naming its extra."""
    if config.mqtt is not None and config.mqtt.sparkplug is not None:
        import edge.sinks.sparkplug_proto  # noqa: F401 - raises EdgeError: pip install 'edge-inspect[sparkplug]'
    if config.opcua is not None:
        from edge.sinks.opcua import _asyncua

        _asyncua()  # raises EdgeError: pip install 'edge-inspect[opcua]'


def _under(out: Path, path: str) -> Path:
    """A sink file's path: as given when absolute, else under the run's OUT folder."""
    q = Path(path).expanduser()
    return q if q.is_absolute() else out / q


def _console_sink() -> tuple[Sink, str]:
    from edge.sinks.console import ConsoleSink

    return ConsoleSink(), "stdout"


def _jsonl_sink(j, out: Path) -> tuple[Sink, str]:
    from edge.sinks.jsonl import JsonlSink

    path = _under(out, j.path)
    sink = JsonlSink(path, fsync=j.fsync, max_bytes=int(j.max_mb * 1024 * 1024) or None, keep=j.keep)
    return sink, f"jsonl {path}" + (f" (rotate at {j.max_mb:g} MB, keep {j.keep})" if j.max_mb else "")


def _sqlite_sink(q, out: Path) -> tuple[Sink, str]:
    from edge.sinks.sqlite_store import SqliteSink

    path = _under(out, q.path)
    return SqliteSink(path), f"sqlite {path}"


def _snapshot_store(s, out: Path) -> tuple[SnapshotStore, str]:
    store = SnapshotStore(
        _under(out, s.dir),
        max_count=s.max_count,
        max_mb=s.max_mb,
        annotated=s.annotated,
        min_free_mb=s.min_free_mb,
    )
    limits = [x for x in (f"{s.max_count} alerts" if s.max_count else "", f"{s.max_mb:g} MB" if s.max_mb else "") if x]
    return store, f"snapshots {store.folder}" + (f" (keep {', '.join(limits)})" if limits else "")


def _gpio_sink(g) -> tuple[Sink, str]:
    from edge.sinks.gpio import GpioSink

    return GpioSink(g.pin, pulse_ms=g.pulse_ms, active_high=g.active_high), f"gpio BCM{g.pin} ({g.pulse_ms} ms pulse)"


def _webhook_sink(w, state: Path) -> tuple[Sink, str]:
    from edge.sinks.webhook import WebhookSink

    headers = dict(w.headers)
    headers.update({name: _env(var, f"sinks.webhook.headers_env.{name}") for name, var in w.headers_env.items()})
    sink = WebhookSink(
        w.url,
        state,
        timeout_s=w.timeout_s,
        timeout_max_s=w.timeout_max_s,
        headers=headers,
        max_entries=w.outbox_max,
        backoff_s=w.backoff_s,
        backoff_max_s=w.backoff_max_s,
        close_timeout_s=w.close_timeout_s,
    )
    return sink, f"webhook {redact_url(w.url)}"


def _mqtt_sink(m, state: Path) -> tuple[Sink, str]:
    from edge.sinks.mqtt import MqttSink

    password = _env(m.password_env, "sinks.mqtt.password_env") if m.password_env else None
    tls = m.tls
    sink = MqttSink(
        m.host,
        state,
        port=m.effective_port,
        prefix=m.prefix,
        client_id=m.client_id,
        username=m.username,
        password=password,
        ca=_file(tls.ca, "sinks.mqtt.tls.ca") if tls else None,
        cert=_file(tls.cert, "sinks.mqtt.tls.cert") if tls else None,
        key=_file(tls.key, "sinks.mqtt.tls.key") if tls else None,
        tls=tls is not None,
        keepalive_s=m.keepalive_s,
        publish_timeout_s=m.publish_timeout_s,
        connect_timeout_s=m.connect_timeout_s,
        required=m.required,
        max_entries=m.outbox_max,
        backoff_s=m.backoff_s,
        backoff_max_s=m.backoff_max_s,
        close_timeout_s=m.close_timeout_s,
        station=m.station,
        inspection=m.inspection,
        metrics_every_s=m.metrics_every_s,
        announcements=_home_assistant(m),
    )
    return sink, f"mqtt {m.host}:{m.effective_port} topics {sink.transport.topics.base}/(alerts|status|health|metrics)"


def _sparkplug_sink(m, state: Path) -> tuple[Sink, str]:
    from edge.sinks.sparkplug import SparkplugSink  # one line naming the extra when protobuf is missing
    from edge.sinks.topics import default_station

    s, tls = m.sparkplug, m.tls
    station = m.station or default_station()
    sink = SparkplugSink(
        m.host,
        state,
        port=m.effective_port,
        group_id=s.group_id,
        edge_node=station,
        device=m.inspection,
        client_id=s.client_id,
        username=m.username,
        password=_env(m.password_env, "sinks.mqtt.password_env") if m.password_env else None,
        ca=tls.ca if tls else None,
        cert=tls.cert if tls else None,
        key=tls.key if tls else None,
        tls=tls is not None,
        keepalive_s=m.keepalive_s,
        every_s=s.every_s,
        connect_timeout_s=m.connect_timeout_s,
        reconnect_max_s=int(m.backoff_max_s),
    )
    return sink, f"sparkplug B spBv1.0/{s.group_id}/+/{station}/{m.inspection} on {m.host}:{m.effective_port}"


def _opcua_sink(o, m) -> tuple[Sink, str]:
    from edge.sinks.opcua import OpcUaSink  # one line naming the extra when asyncua is missing
    from edge.sinks.topics import default_station

    sink = OpcUaSink(
        o.host,
        o.port,
        station=o.station or (m.station if m is not None else None) or default_station(),
        inspection=o.inspection or (m.inspection if m is not None else "default"),
        username=o.username,
        password=_env(o.password_env, "sinks.opcua.password_env") if o.password_env else None,
        poll_s=o.poll_s,
    )
    who = f"user {o.username}" if o.username else "anonymous"
    return sink, f"opcua {sink.endpoint} ({who})"


def _home_assistant(m) -> list[tuple[str, str]]:
    """Home Assistant's retained discovery configs for this inspection (empty unless asked for)."""
    if not m.home_assistant:
        return []
    from edge import __version__
    from edge.sinks.home_assistant import discovery_messages
    from edge.sinks.topics import Topics, default_station

    topics = Topics(m.prefix, m.station or default_station(), m.inspection)
    return discovery_messages(topics, m.discovery_prefix, __version__)
