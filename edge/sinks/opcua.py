"""An OPC UA server beside the loop (asyncua): per inspection its state, last result, counters and a
reset, for a SCADA or MES that speaks OPC UA. The subset of OPC 40100 (Machine Vision) it follows is
in docs/alerts.md ("OPC UA").

It runs on its own thread with its own asyncio loop. The inspection loop never touches it: alerts
reach it through `emit()` (called by the alert worker), which only puts them on a bounded queue
(the oldest is dropped when a client-less server falls behind: the newest result is what matters);
frames are not sent at all: the server reads the run's counters every `poll_s` (edge.sinks.run_state).

Address space (namespace `urn:edge-inspect`), under Objects:

    <station>/                                   folder
      <inspection>/                              object
        CurrentState          String   Operational | Error (the picture is unhealthy) | Halted (stopped)
        LastResult/           object
          Pass                Boolean  the last frame's score at or under the threshold
          Score, Threshold    Double
          CreationTime        DateTime when that result was read
          InternalRecipeId    String   the bundle's id      (OPC 40100: the recipe the system runs)
          InternalConfigurationId String the bundle's version
        LastAlert/            object   ResultId (the alert's id), Score, CreationTime
        Counters/             object   Frames, Alerts, Dropped (UInt64, since start or the last reset)
        ResetCounters()       method   the counters start again from 0 (the run's own are untouched)

Bound to 127.0.0.1 unless told; anywhere else it needs a username and password (checked in
edge.config), and anonymous sessions are refused whenever credentials are set.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import queue
import socket
import threading
from datetime import datetime, timezone
from typing import Optional

from edge.alert import Alert
from edge.errors import EdgeError
from edge.sinks.base import one_line, problem
from edge.sinks.run_state import RunProbe

NAMESPACE = "urn:edge-inspect"


def _asyncua():
    try:
        import asyncua
    except ImportError:
        raise EdgeError(
            "sinks.opcua needs asyncua: pip install 'edge-inspect[opcua]' (or remove the opcua section)"
        ) from None
    # asyncua logs every session and warning at INFO/WARNING on the root logger; keep the journal ours.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    return asyncua


class _Users:
    """asyncua's user manager: the one configured user, or anonymous when no credentials are set."""

    def __init__(self, username: Optional[str], password: Optional[str]):
        self.username, self.password = username, password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        from asyncua.crypto.permission_rules import User, UserRole

        if self.username is None:
            return User(role=UserRole.User)
        if username is None or password is None:
            return None
        ok = hmac.compare_digest(str(username), self.username) & hmac.compare_digest(str(password), self.password or "")
        return User(role=UserRole.User) if ok else None


def _check_bindable(host: str, port: int) -> None:
    """A port in use or an address this machine does not have: one line at start, not later."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
            s.bind((host, port))
    except OSError as exc:
        raise EdgeError(
            f"cannot serve OPC UA on {host}:{port} ({exc.strerror or exc}); pick another sinks.opcua.port or host"
        ) from None


class OpcUaSink:
    name = "opcua"
    durable = False  # a view of the state; alerts' durable paths are the outboxes

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4840,
        station: str = "station",
        inspection: str = "default",
        username: Optional[str] = None,
        password: Optional[str] = None,
        poll_s: float = 1.0,
        queue_max: int = 1000,
    ):
        self._ua = _asyncua()
        self.host, self.port = host, int(port)
        self.endpoint = f"opc.tcp://{host}:{self.port}/edge-inspect/"
        self.station, self.inspection = station, inspection
        self._users = _Users(username, password)
        self.poll_s = poll_s
        self._alerts: queue.Queue[Alert] = queue.Queue(maxsize=max(int(queue_max), 1))
        self._probe: Optional[RunProbe] = None
        self._offsets = {"frames": 0, "alerts": 0, "dropped": 0}
        self._latest = dict(self._offsets)
        self._halted = False
        self._started = threading.Event()
        self._error: Optional[BaseException] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        _check_bindable(host, self.port)
        # asyncua builds OPC UA's standard address space (thousands of nodes) before it listens:
        # seconds on a PC, longer on a Pi. The run does not wait for it; clients can connect once done.
        self._thread = threading.Thread(target=self._main, name="edge-opcua", daemon=True)
        self._thread.start()

    def wait_started(self, timeout_s: float) -> bool:
        """True once the server listens (False: not yet, or it failed and said so on stderr)."""
        return self._started.wait(timeout_s) and self._error is None

    # -- the sink side (other threads) -------------------------------------------------------------
    def bind_run(self, pipeline) -> None:
        self._probe = RunProbe(pipeline)

    def emit(self, alert: Alert) -> None:
        while True:
            try:
                self._alerts.put_nowait(alert)
                return
            except queue.Full:
                try:
                    self._alerts.get_nowait()  # the oldest goes: only the latest alert is shown
                except queue.Empty:
                    pass

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._halted = True
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10.0)

    # -- the server's thread -----------------------------------------------------------------------
    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - a failed server is one line; inspection goes on
            self._error = exc
            self._started.set()
            problem(f"opcua: the server on {self.host}:{self.port} stopped: {one_line(exc)}")

    async def _serve(self) -> None:
        ua = self._ua.ua
        server = self._ua.Server(user_manager=self._users)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"edge-inspect {self.station}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_security_IDs(["Username"] if self._users.username else ["Anonymous"])
        nodes = await self._build(server)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with server:
            self._started.set()
            while not self._stop.is_set():
                await self._update(nodes)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.poll_s)
                except asyncio.TimeoutError:
                    pass
            await self._update(nodes)

    async def _build(self, server) -> dict:
        ua = self._ua.ua
        idx = await server.register_namespace(NAMESPACE)
        folder = await server.nodes.objects.add_folder(idx, self.station)
        obj = await folder.add_object(idx, self.inspection)
        result = await obj.add_object(idx, "LastResult")
        alert = await obj.add_object(idx, "LastAlert")
        counters = await obj.add_object(idx, "Counters")
        V = ua.VariantType
        spec = [
            (obj, "CurrentState", "Preoperational", V.String),
            (result, "Pass", True, V.Boolean),
            (result, "Score", 0.0, V.Double),
            (result, "Threshold", 0.0, V.Double),
            (result, "CreationTime", datetime.now(timezone.utc), V.DateTime),
            (result, "InternalRecipeId", "", V.String),
            (result, "InternalConfigurationId", "", V.String),
            (alert, "ResultId", "", V.String),
            (alert, "Score", 0.0, V.Double),
            (alert, "CreationTime", datetime.now(timezone.utc), V.DateTime),
            (counters, "Frames", 0, V.UInt64),
            (counters, "Alerts", 0, V.UInt64),
            (counters, "Dropped", 0, V.UInt64),
        ]
        nodes = {}
        for parent, name, value, kind in spec:
            key = f"{(await parent.read_browse_name()).Name}/{name}" if parent is not obj else name
            nodes[key] = (await parent.add_variable(idx, name, ua.Variant(value, kind)), kind)

        def reset(parent):
            self._offsets = dict(self._latest)

        await obj.add_method(idx, "ResetCounters", self._ua.uamethod(reset), [], [])
        return nodes

    async def _write(self, nodes: dict, key: str, value) -> None:
        node, kind = nodes[key]
        await node.write_value(self._ua.ua.Variant(value, kind))

    async def _update(self, nodes: dict) -> None:
        try:
            await self._update_result(nodes)
            await self._update_alert(nodes)
        except Exception as exc:  # noqa: BLE001 - a bad value must not stop the server
            problem(f"opcua: update failed: {one_line(exc)}", key="opcua-update")

    async def _update_result(self, nodes: dict) -> None:
        if self._probe is None:
            return
        s = self._probe.snapshot()
        self._latest = {k: int(s[k]) for k in ("frames", "alerts", "dropped")}
        state = "Halted" if self._halted else ("Operational" if s["health"] == "ok" else "Error")
        await self._write(nodes, "CurrentState", state)
        for name, key in (("Frames", "frames"), ("Alerts", "alerts"), ("Dropped", "dropped")):
            await self._write(nodes, f"Counters/{name}", max(self._latest[key] - self._offsets[key], 0))
        if s["last_score"] is None:
            return  # no frame scored yet
        await self._write(nodes, "LastResult/Pass", not s["defect"])
        await self._write(nodes, "LastResult/Score", s["last_score"])
        await self._write(nodes, "LastResult/Threshold", s["threshold"] or 0.0)
        await self._write(nodes, "LastResult/CreationTime", datetime.fromisoformat(s["time"]))
        await self._write(nodes, "LastResult/InternalRecipeId", str(s["bundle_id"] or ""))
        version = s["bundle_version"]
        await self._write(nodes, "LastResult/InternalConfigurationId", "" if version is None else str(version))

    async def _update_alert(self, nodes: dict) -> None:
        latest = None
        while True:
            try:
                latest = self._alerts.get_nowait()
            except queue.Empty:
                break
        if latest is None:
            return
        await self._write(nodes, "LastAlert/ResultId", latest.id)
        await self._write(nodes, "LastAlert/Score", float(latest.score))
        await self._write(nodes, "LastAlert/CreationTime", datetime.fromisoformat(latest.time))
