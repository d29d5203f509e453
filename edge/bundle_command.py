"""A bundle command over MQTT: fetch a bundle archive, check it, install it as a version, swap it in.

    <base>/cmd/bundle  {"url": "https://…/line1-v7.tar.gz", "sha256": "<64 hex>", "id": "rollout-7"}
        │ paho's thread: parse (one line and a `rejected` result if malformed), queue, `accepted`
        ▼
    this module's thread: fetch (edge.bundle_fetch: bounded size and time) ─► sha256 == the command's
        ─► unpack safely ─► edge.bundle.load_bundle (schema, hashes) ─► v<N> in the run's bundle
        history, not current yet (`installed`) ─► the hot swap's own checks and swap (edge.swap,
        trigger `mqtt:<id>`) ─► swapped: v<N> made current (`swapped`); rejected: v<N> removed
    results: retained JSON on <base>/cmd/bundle/result; swapped/rejected also a `bundle` event
             through the sinks (edge.swap), as SIGHUP's are

`<base>` is `<prefix>/<station>/<inspection>` (edge.sinks.topics). Enabled by `sinks.mqtt.commands`
only; the station subscribes to exactly its own command topic, ignores retained commands (a command
is an event: a retained one would run again at every reconnect) and refuses, at start, to take
commands from a broker off loopback without TLS and credentials (`command_problem`). The loop never
waits: everything slow is on this module's thread, and the swap is the hot swap's. A redelivery
(QoS 1's DUP flag) of a command seen runs once; the same command sent again is a retry and runs.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, ValidationError, field_validator

from edge import bundle_history
from edge.bundle import MANIFEST, Bundle, load_bundle, sha256_file
from edge.bundle_fetch import Limits, fetch, remove, unpack, url_problem
from edge.errors import EdgeError
from edge.health_event import iso_time
from edge.messages import Log
from edge.redact import redact_text, redact_url
from edge.schema import StrictModel, first_problem, is_loopback

TRIGGER = "mqtt"
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_WAITING = 4  # commands queued behind the one in progress; more are refused (a rollout sends one)


class BundleCommandsConfig(StrictModel):
    """`sinks.mqtt.commands`: take bundle commands on <base>/cmd/bundle (`true` or `{}`: the defaults)."""

    max_mb: float = Field(256.0, gt=0, description="largest archive downloaded (MiB); refused while it streams")
    max_unpacked_mb: float = Field(1024.0, gt=0, description="largest sum of the unpacked files (MiB)")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="the whole download")

    def limits(self) -> Limits:
        mib = 1 << 20
        return Limits(int(self.max_mb * mib), int(self.max_unpacked_mb * mib), timeout_s=self.timeout_s)


class BundleCommand(StrictModel):
    url: str = Field(..., description="http://, https:// or file:// URL of a .tar.gz of the bundle folder")
    sha256: str = Field(..., description="the archive's sha256, 64 hex digits")
    id: Optional[str] = Field(None, description="the sender's request id, echoed in every result")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        problem = url_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ValueError("must be the archive's sha256: 64 hex digits (sha256sum ARCHIVE)")
        return v.lower()

    @field_validator("id")
    @classmethod
    def _id(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _ID.fullmatch(v):
            raise ValueError("must be 1 to 64 letters, digits, '.', '_' or '-'")
        return v


def command_problem(host: str, tls: Any, username: Optional[str], password_env: Optional[str]) -> Optional[str]:
    """Why a station must not take commands from this broker (None: it may). Off loopback, anyone on
    the network could otherwise make every station run a model of their choosing."""
    if is_loopback(host) or (tls is not None and username and password_env):
        return None
    return (
        f"commands from the broker at {host} (not on loopback) need tls and username + password_env: "
        "anyone on that network could otherwise install a bundle; add them, or use a local broker on "
        "127.0.0.1 bridged to the plant's (docs/fleet.md)"
    )


def parse(payload: bytes) -> tuple[Optional[BundleCommand], str, Optional[str]]:
    """(command or None, request id, what is wrong or None); a missing id is made up."""
    try:
        raw = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, _new_id(), f"the command is not JSON ({type(exc).__name__}); send {_EXAMPLE}"
    if not isinstance(raw, dict):
        return None, _new_id(), f"the command is not a JSON object; send {_EXAMPLE}"
    given = raw.get("id")
    request_id = given if isinstance(given, str) and _ID.fullmatch(given) else _new_id()
    try:
        command = BundleCommand.model_validate(raw)
    except ValidationError as exc:
        return None, request_id, f"the command is invalid: {first_problem(exc, with_key=True)}"
    if command.id is None:
        command.id = request_id
    return command, request_id, None


_EXAMPLE = '{"url": "https://…/bundle.tar.gz", "sha256": "<64 hex>", "id": "<optional>"}'


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _brief(bundle: Optional[Bundle]) -> Optional[dict]:
    return None if bundle is None else {"id": bundle.id, "version": bundle.version, "path": str(bundle.path)}


class BundleCommands:
    """Takes bundle commands from the MQTT sink's connection and works them off on its own thread."""

    def __init__(self, swap: Any, history: Path, config: BundleCommandsConfig, log: Log):
        self.swap, self.history, self.config, self.log = swap, Path(history), config, log
        self.limits = config.limits()
        self.transport: Any = None
        self.topic = self.result_topic = ""
        self._queue: queue.Queue = queue.Queue(maxsize=_WAITING)
        self._seen: deque[tuple[str, str]] = deque(maxlen=100)
        self._recent: dict[str, BundleCommand] = {}  # request id → command: what a refusal's result names
        self._lock = threading.Lock()
        self._waiting: dict[str, dict] = {}  # trigger → {"done": Event, "outcome": dict}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        swap.outcomes.append(self._on_outcome)

    # -- wiring -----------------------------------------------------------------------------

    def start(self, transport: Any) -> None:
        """Subscribe on `transport` (edge.sinks.mqtt.MqttTransport) and start the worker."""
        self.transport = transport
        self.topic, self.result_topic = transport.topics.bundle_command, transport.topics.bundle_result
        self._thread = threading.Thread(target=self._serve, name="edge-bundle-command", daemon=True)
        self._thread.start()
        transport.listen(self.topic, self._on_message)
        self.log(f"bundle commands: {self.topic} (results on {self.result_topic}), installed into {self.history}")

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for waiter in self._waiting.values():
                waiter["done"].set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(2.0)  # a download in progress is cut off with the process (a daemon thread)

    # -- paho's thread: parse, queue ----------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        if getattr(message, "retain", False):
            self.log(
                f"bundle command on {self.topic} ignored: the broker replayed a retained one; publish commands "
                "without retain (a retained command would run again at every reconnect)"
            )
            return
        command, request_id, problem = parse(message.payload)
        trigger = f"{TRIGGER}:{request_id}"
        if command is None:
            self.swap.refuse(trigger, None, problem)
            return
        key = (request_id, command.sha256)
        with self._lock:
            if key in self._seen and getattr(message, "dup", False):  # QoS 1 delivered it twice: it runs once
                return
            self._seen.append(key)  # the same command sent again (not a redelivery) is a retry: it runs
            self._recent[request_id] = command
            if len(self._recent) > 100:
                self._recent.pop(next(iter(self._recent)))
        try:
            self._queue.put_nowait(command)
        except queue.Full:
            self.swap.refuse(trigger, None, f"{_WAITING} bundle commands are waiting already; send it again later")
            return
        self._result(command, "accepted", None, None)

    # -- this object's thread: fetch, check, install, swap --------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            command = self._queue.get()
            if command is None or self._stop.is_set():
                return
            try:
                self._handle(command)
            except Exception as exc:  # noqa: BLE001 - an unforeseen failure is one line; the run goes on
                self.swap.refuse(self._trigger(command), None, redact_text(f"{type(exc).__name__}: {exc}"))

    def _trigger(self, command: BundleCommand) -> str:
        return f"{TRIGGER}:{command.id}"

    def _handle(self, command: BundleCommand) -> None:
        trigger = self._trigger(command)
        self.log(f"bundle command {command.id}: fetching {redact_url(command.url)}")
        work = self.history / f".incoming-{uuid.uuid4().hex[:8]}"  # hidden: never a version
        try:
            bundle = self._fetch_checked(command, work)
            running = self.swap.pipeline.bundle
            if _same(bundle, running):
                self.log(f"bundle command {command.id}: {running.id} v{running.version} runs already; nothing to swap")
                self._result(command, "current", None, running, note="the bundle running already")
                return
            target, placed = self._install(bundle)
        except EdgeError as exc:
            self.swap.refuse(trigger, None, redact_text(str(exc).replace(str(work), "the archive")))
            return
        finally:
            remove(work)
        installed = load_bundle(target, verify=False)
        self.log(f"bundle command {command.id}: {installed.id} v{installed.version} in {target}; swapping it in")
        self._result(command, "installed", None, installed)
        outcome = self._swap(trigger, target)
        if outcome is None:  # the run stops
            return
        if outcome["state"] == "swapped":
            bundle_history.set_current(self.history, target.name)  # a restart runs it too
            bundle_history.prune(self.history, spare=(target,))
            self._result(command, "swapped", None, installed)
        else:
            if placed:
                remove(target)
            self._result(command, "rejected", outcome.get("reason"), installed)

    def _fetch_checked(self, command: BundleCommand, work: Path) -> Bundle:
        work.mkdir(parents=True)
        digest = fetch(command.url, work / "bundle.tar.gz", self.limits)
        if digest != command.sha256:
            raise EdgeError(
                f"the archive's sha256 is {digest[:12]}…, the command says {command.sha256[:12]}…: "
                "a wrong or changed file; not installed"
            )
        folder = unpack(work / "bundle.tar.gz", work / "unpacked", self.limits)
        return load_bundle(folder)  # schema and hashes, before it goes near the history

    def _install(self, bundle: Bundle) -> tuple[Path, bool]:
        """The version folder holding `bundle` (an identical one already there, else a new v<N>)."""
        manifest = sha256_file(bundle.path / MANIFEST)
        versions = bundle_history.version_folders(self.history)
        for _, folder in versions:
            if (folder / MANIFEST).is_file() and sha256_file(folder / MANIFEST) == manifest:
                try:
                    load_bundle(folder)
                    return folder, False
                except EdgeError:
                    break  # a broken copy: install the new one beside it
        number = max([bundle.version - 1, *(n for n, _ in versions)]) + 1  # its own version when free
        return bundle_history.place_version(self.history, bundle.path, number), True

    def _swap(self, trigger: str, target: Path) -> Optional[dict]:
        waiter = {"done": threading.Event(), "outcome": None}
        with self._lock:
            self._waiting[trigger] = waiter
        try:
            self.swap.request(trigger, target)
            waiter["done"].wait()  # the swap always ends in swapped or rejected; close() wakes it too
            return waiter["outcome"]
        finally:
            with self._lock:
                self._waiting.pop(trigger, None)

    # -- outcomes -----------------------------------------------------------------------------

    def _on_outcome(self, last: dict) -> None:
        """The swap's outcome (on the loop or the swap thread): hand it to the waiting command, or,
        for a command refused before its swap, publish it."""
        trigger = last.get("trigger", "")
        if not trigger.startswith(f"{TRIGGER}:"):
            return
        with self._lock:
            waiter = self._waiting.get(trigger)
        if waiter is not None:
            waiter["outcome"] = last
            waiter["done"].set()
            return
        request_id = trigger.split(":", 1)[1]
        with self._lock:
            command = self._recent.get(request_id)
        if command is None:  # refused before it was parsed: only its id is known
            self._publish({"id": request_id, "state": last["state"], "reason": last.get("reason")})
        else:
            self._result(command, last["state"], last.get("reason"), None)

    def _result(
        self, command: BundleCommand, state: str, reason: Optional[str], bundle: Optional[Bundle], note: str = ""
    ) -> None:
        body = {"id": command.id, "state": state, "reason": reason or (note or None)}
        body.update(url=redact_url(command.url), sha256=command.sha256, bundle=_brief(bundle))
        self._publish(body)

    def _publish(self, body: dict) -> None:
        running = self.swap.pipeline.bundle
        body = {"type": "bundle_command", **body, "running": _brief(running), "time": iso_time_now()}
        if body.get("reason"):
            body["reason"] = redact_text(body["reason"])
        if self.transport is None or not self.transport.publish_retained(self.result_topic, json.dumps(body)):
            self.log(f"bundle command {body['id']}: {body['state']} (result not published: broker away)")


def iso_time_now() -> str:
    return iso_time(time.time())


def _same(a: Bundle, b: Bundle) -> bool:
    try:
        return sha256_file(a.path / MANIFEST) == sha256_file(b.path / MANIFEST)
    except OSError:
        return False


def commands_for_run(config: Any, swap: Any, log: Log) -> Optional[BundleCommands]:
    """The bundle commands of an `edge run` (edge/app.py), or None when sinks.mqtt.commands is off;
    a --bundle that is no history is one line before anything opens."""
    mqtt = config.sinks.mqtt
    if mqtt is None or mqtt.commands is None:
        return None
    history = Path(config.bundle)
    if not bundle_history.is_history(history):
        raise EdgeError(
            f"sinks.mqtt.commands installs bundle versions, but --bundle {history} is one bundle folder, not a "
            "history: make one (mkdir H; cp -r BUNDLE H/v1; echo v1 > H/current) and run with --bundle H"
        )
    return BundleCommands(swap, history, mqtt.commands, log)


def attach_commands(commands: Optional[BundleCommands], built: Any) -> None:
    """Start `commands` on the MQTT sink's connection (edge.sinks.factory built it)."""
    if commands is None:
        return
    from edge.sinks.mqtt import MqttSink  # the JSON topics' connection (not Sparkplug's)

    transport = next((s.transport for s in built.group if isinstance(s, MqttSink)), None)
    if transport is None:  # sinks.mqtt is set whenever commands are: the sink is there
        raise EdgeError("sinks.mqtt.commands needs the MQTT sink; it was not built")
    commands.start(transport)
