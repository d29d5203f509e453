"""The YAML run configuration of `edge run --config edge.yaml`.

One file holds everything a device needs: bundle, source, geometry, decision, sinks, metrics and
the out/state directories. It is validated at start with pydantic, unknown keys rejected
everywhere, and any problem is ONE line naming the file, the line and the key:

    edge.yaml:14: sinks.mqtt.prot: unknown key; did you mean 'port'?

Secrets never sit in the file: a `*_env` key names an environment variable that holds the secret
(`password_env: MQTT_PASSWORD`, `headers_env: {Authorization: WEBHOOK_AUTH}`); it is read when the
sinks are built at start, and a missing variable is a one-line error.

Relative paths: `bundle`, `out`, `state`, `source.video`, `source.images`, `geometry.mask` and the
MQTT TLS files are relative to the config file's folder; sink files (`sinks.jsonl.path`,
`sinks.sqlite.path`, `sinks.snapshots.dir`) are relative to `out`. Command-line options override
the file; their relative paths are relative to the current directory, as usual.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from edge.bundle_command import BundleCommandsConfig, command_problem
from edge.decide import DecisionConfig
from edge.drift import DriftConfig
from edge.errors import EdgeError
from edge.health import HealthConfig
from edge.inspection_config import InspectionConfig, check_inspections, multi_problem
from edge.metrics import MetricsConfig
from edge.runtime import Runtime, RuntimeOptions
from edge.schema import StrictModel, is_loopback, url_problem
from edge.sources import SourceConfig
from edge.swap import SwapConfig
from edge.tiling import GeometryConfig
from edge.web.config import WebConfig

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_env_name(name: Optional[str]) -> Optional[str]:
    if name is not None and not _ENV_NAME.match(name):
        raise ValueError(
            f"{name!r} is not an environment variable name (letters, digits, _): name the variable, not the secret"
        )
    return name


class JsonlConfig(StrictModel):
    path: str = Field("events.jsonl", description="relative to out")
    max_mb: float = Field(50.0, ge=0, description="rotate when the file would pass this size; 0: never rotate")
    keep: int = Field(5, ge=0, description="rotated files kept (events.jsonl.1 ... .N)")
    fsync: bool = Field(True, description="fsync after every alert (survives a power cut)")


class SqliteConfig(StrictModel):
    path: str = Field("events.db", description="relative to out; query it with `edge events --db`")


class SnapshotsConfig(StrictModel):
    dir: str = Field("snapshots", description="relative to out")
    max_count: Optional[int] = Field(
        10000, ge=1, description="keep the snapshots of at most this many alerts; null: no limit"
    )
    max_mb: Optional[float] = Field(2000.0, gt=0, description="keep at most this many MB of snapshots; null: no limit")
    annotated: bool = Field(True, description="also save the frame with the error heatmap and box")
    min_free_mb: float = Field(
        200.0,
        ge=0,
        description="free space snapshots never take (the event store and the journal need it): "
        "oldest snapshots go first, then new ones are skipped and counted",
    )
    queue_frames: int = Field(
        16,
        ge=0,
        description="frames held for the alert worker to encode; when it is this far behind, "
        "alerts go out without pictures (thinned, counted); inspection never waits",
    )


class _Delivery(StrictModel):
    """Outbox and retry settings shared by the network sinks."""

    outbox_max: int = Field(
        10000, ge=1, description="undelivered alerts kept on disk; when full the OLDEST are dropped (logged)"
    )
    backoff_s: float = Field(1.0, gt=0, description="first retry delay; doubles up to backoff_max_s")
    backoff_max_s: float = Field(60.0, gt=0, description="longest delay between retries")
    close_timeout_s: float = Field(5.0, ge=0, description="at stop, keep delivering for at most this long")


class WebhookConfig(_Delivery):
    url: str = Field(..., description="http:// or https:// URL that receives a POST per alert")
    timeout_s: float = Field(5.0, gt=0, description="per request")
    timeout_max_s: float = Field(
        60.0,
        gt=0,
        description="a receiver slower than timeout_s: each request without an answer in time doubles the wait "
        "for the next, up to this (set it to timeout_s to keep the wait fixed)",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers (no secrets here)")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> environment variable holding its value (tokens)"
    )

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        problem = url_problem(v, ("http", "https"))  # scheme, host, port 1-65535
        if problem is not None:
            raise ValueError(problem)
        return v

    @field_validator("headers_env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v.values():
            _check_env_name(name)
        return v


class TlsConfig(StrictModel):
    ca: Optional[str] = Field(None, description="CA certificate file that signed the broker's certificate")
    cert: Optional[str] = Field(None, description="client certificate (mutual TLS)")
    key: Optional[str] = Field(None, description="client private key (mutual TLS)")

    @model_validator(mode="after")
    def _pairs(self):
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls cert and key go together: give both or neither")
        return self


class SparkplugConfig(StrictModel):
    """Sparkplug B beside the JSON topics (edge/sinks/sparkplug.py): station = edge node, inspection = device."""

    group_id: str = Field("edge-inspect", description="Sparkplug group id (spBv1.0/<group_id>/...)")
    every_s: float = Field(10.0, gt=0, description="DDATA with what changed every N s (and on each alert)")
    client_id: Optional[str] = Field(None, description="its own MQTT connection; default edge-inspect-spb-<station>")

    @field_validator("group_id")
    @classmethod
    def _group_level(cls, v: str) -> str:
        from edge.sinks.topics import level_problem

        problem = level_problem(v, "group_id")
        if problem is not None:
            raise ValueError(problem)
        return v


class MqttConfig(_Delivery):
    host: str = Field(..., description="broker host name or address")
    port: Optional[int] = Field(None, ge=1, le=65535, description="default 1883, or 8883 with tls")
    prefix: str = Field("edge-inspect", description="topics: <prefix>/<station>/<inspection>/alerts, /status, ...")
    station: Optional[str] = Field(None, description="this device's topic level; default its host name")
    inspection: str = Field("default", description="this camera's topic level under the station")
    metrics_every_s: float = Field(10.0, ge=0, description="small JSON on <base>/metrics every N s; 0: off")
    home_assistant: bool = Field(False, description="retained Home Assistant discovery configs (defect, score, fps)")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix")
    sparkplug: Optional[SparkplugConfig] = Field(
        None, description="also speak Sparkplug B (needs the sparkplug extra); {} for the defaults"
    )
    commands: Optional[BundleCommandsConfig] = Field(
        None, description="true: take bundle commands on <base>/cmd/bundle (edge/bundle_command.py); off by default"
    )
    client_id: Optional[str] = Field(None, description="default edge-inspect-<hostname>; unique per device")
    username: Optional[str] = None
    password_env: Optional[str] = Field(None, description="environment variable holding the password")
    tls: Optional[TlsConfig] = None
    keepalive_s: int = Field(30, ge=5, le=65535)
    publish_timeout_s: float = Field(10.0, gt=0, description="wait this long for a PUBACK before retrying")
    connect_timeout_s: float = Field(5.0, gt=0, description="at start, wait this long for the broker")
    required: bool = Field(
        False, description="true: an unreachable broker at start stops `edge run`; false: warn and queue"
    )
    backoff_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v):
        return _check_env_name(v)

    @field_validator("prefix")
    @classmethod
    def _topic_prefix(cls, v: str) -> str:
        v = v.strip("/")
        if not v or any(c in v for c in "#+"):
            raise ValueError("prefix must be a non-empty topic without wildcards (# +)")
        return v

    @field_validator("commands", mode="before")
    @classmethod
    def _commands_on_off(cls, v):
        return {} if v is True else None if v is False else v

    @model_validator(mode="after")
    def _commands_need_a_safe_broker(self):
        if self.commands is not None:
            problem = command_problem(self.host, self.tls, self.username, self.password_env)
            if problem is not None:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _sensors_need_metrics(self):
        if self.home_assistant and self.metrics_every_s <= 0:
            raise ValueError(
                "home_assistant needs metrics_every_s > 0: the score and fps sensors read the metrics topic"
            )
        return self

    @field_validator("discovery_prefix")
    @classmethod
    def _discovery_prefix(cls, v: str) -> str:
        v = v.strip("/")
        if not v or any(c in v for c in "#+"):
            raise ValueError("discovery_prefix must be a non-empty topic without wildcards (# +)")
        return v

    @field_validator("station", "inspection")
    @classmethod
    def _topic_level(cls, v: Optional[str], info) -> Optional[str]:
        from edge.sinks.topics import level_problem

        problem = level_problem(v, info.field_name) if v is not None else None
        if problem is not None:
            raise ValueError(problem)
        return v

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls is not None else 1883)


class OpcUaConfig(StrictModel):
    """The OPC UA server beside the loop (edge/sinks/opcua.py; extra [opcua])."""

    host: str = Field("127.0.0.1", description="address to bind; anything but loopback needs username + password_env")
    port: int = Field(4840, ge=1, le=65535, description="opc.tcp port (4840 is OPC UA's)")
    username: Optional[str] = Field(None, description="the one user allowed in; anonymous is refused once set")
    password_env: Optional[str] = Field(None, description="environment variable holding that user's password")
    station: Optional[str] = Field(None, description="folder under Objects; default sinks.mqtt.station or host name")
    inspection: Optional[str] = Field(None, description="object under the station; default sinks.mqtt.inspection")
    poll_s: float = Field(1.0, gt=0, description="how often the counters and last result are refreshed")

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v):
        return _check_env_name(v)

    @field_validator("station", "inspection")
    @classmethod
    def _name(cls, v: Optional[str], info) -> Optional[str]:
        from edge.sinks.topics import level_problem

        problem = level_problem(v, info.field_name) if v is not None else None
        if problem is not None:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _exposed_needs_credentials(self):
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together: give both or neither")
        if self.username is None and not is_loopback(self.host):
            raise ValueError(
                f"the OPC UA server on {self.host} would be open to anyone on that network: set username and "
                "password_env, or keep host 127.0.0.1"
            )
        return self


class GpioConfig(StrictModel):
    pin: int = Field(..., ge=0, le=53, description="BCM pin number (GPIO17 = 17), not the header pin")
    pulse_ms: int = Field(200, ge=1, le=60000, description="how long the output stays active per alert")
    active_high: bool = Field(True, description="false for relay boards that switch on a low level")


_SWITCHABLE = {"jsonl": JsonlConfig, "sqlite": SqliteConfig, "snapshots": SnapshotsConfig}


class SinksConfig(StrictModel):
    stdout: bool = Field(True, description="one JSON line per alert on stdout")
    jsonl: Optional[JsonlConfig] = Field(default_factory=JsonlConfig, description="false: off")
    sqlite: Optional[SqliteConfig] = Field(default_factory=SqliteConfig, description="false: off")
    snapshots: Optional[SnapshotsConfig] = Field(default_factory=SnapshotsConfig, description="false: off")
    webhook: Optional[WebhookConfig] = None
    mqtt: Optional[MqttConfig] = None
    gpio: Optional[GpioConfig] = None
    opcua: Optional[OpcUaConfig] = Field(None, description="OPC UA server: state, last result, counters, reset")

    @field_validator("jsonl", "sqlite", "snapshots", mode="before")
    @classmethod
    def _on_off(cls, v, info):
        # `sqlite: false` turns a default sink off; `sqlite: true`, `sqlite: {}` or a bare `sqlite:`
        # keeps the defaults.
        if v is False:
            return None
        if v is True or v is None:
            return _SWITCHABLE[info.field_name]()
        return v


class RunConfig(StrictModel):
    bundle: Optional[Path] = Field(None, description="bundle folder made by `edge calibrate`")
    classifier: Optional[Path] = Field(
        None, description="optional classifier bundle: names what the first bundle flags (crack / unknown anomaly)"
    )
    source: Optional[SourceConfig] = None
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    sinks: SinksConfig = Field(default_factory=SinksConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    health: HealthConfig = Field(default_factory=HealthConfig, description="checks of the picture (edge/health.py)")
    drift: DriftConfig = Field(default_factory=DriftConfig, description="recent scores vs calibration (edge/drift.py)")
    web: WebConfig = Field(default_factory=WebConfig, description="the page on the device (edge run --web)")
    swap: SwapConfig = Field(default_factory=SwapConfig, description="bundle hot swap (edge/swap.py)")
    out: Path = Field(Path("edge-out"), description="events, event store and snapshots")
    state: Optional[Path] = Field(None, description="outboxes of the network sinks; default <out>/state")
    threads: Optional[int] = Field(None, ge=1, description="interpreter threads; default all cores")
    # How the model runs (edge/runtime.py, docs/runtime.md); `edge run --runtime/--delegate` override.
    runtime: Runtime = Field("litert", description="litert (the .tflite) or onnxruntime (the bundle's .onnx)")
    delegate: Optional[str] = Field(None, description="LiteRT delegate: edgetpu, gpu or a library path")
    delegate_fallback: Optional[Literal["cpu"]] = Field(
        None, description="cpu: run on the CPU (and say so) when the delegate cannot load; unset: stop"
    )
    providers: Optional[list[str]] = Field(
        None, description="ONNX Runtime execution providers in order (tensorrt, cuda, cpu); default: the best present"
    )

    # Several cameras in one process (edge/inspection_config.py, run by edge/inspections.py).
    inspections: Optional[list[InspectionConfig]] = Field(
        None, description="several cameras: a list of {name, source, bundle, ...}; the rest is shared"
    )

    @field_validator("inspections")
    @classmethod
    def _inspections(cls, v):
        return check_inspections(v) if v is not None else v

    @model_validator(mode="after")
    def _inspections_alone(self):
        problem = multi_problem(self) if self.inspections is not None else None
        if problem is not None:
            raise ValueError(problem)
        return self

    def runtime_options(self) -> RuntimeOptions:
        return RuntimeOptions(**{name: getattr(self, name) for name in RuntimeOptions.model_fields})

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data):
        # A section whose keys are all commented out (`geometry:` alone) means its defaults.
        if isinstance(data, dict):
            data = {
                k: v
                for k, v in data.items()
                if not (v is None and k in ("geometry", "decision", "sinks", "metrics", "web", "swap"))
            }
        return data

    @property
    def state_dir(self) -> Path:
        return self.state if self.state is not None else self.out / "state"

    def resolve_paths(self, base: Path) -> "RunConfig":
        """Make the file's relative paths relative to `base` (the config file's folder)."""

        def fix(p):
            if p is None:
                return None
            q = Path(p).expanduser()
            return q if q.is_absolute() else base / q

        self.bundle = fix(self.bundle)
        self.classifier = fix(self.classifier)
        self.out = fix(self.out)
        self.state = fix(self.state)
        if self.source is not None:
            if self.source.video is not None:
                self.source.video = str(fix(self.source.video))
            if self.source.images is not None:
                self.source.images = str(fix(self.source.images))
            if self.source.signal not in (None, "-"):  # "-" is standard input, not a file
                self.source.signal = str(fix(self.source.signal))
        if self.geometry.mask is not None:
            self.geometry.mask = str(fix(self.geometry.mask))
        self.web.override = fix(self.web.override)
        self.swap.watch = fix(self.swap.watch)
        for inspection in self.inspections or []:
            inspection.resolve_paths(fix)
        tls = self.sinks.mqtt.tls if self.sinks.mqtt is not None else None
        if tls is not None:
            tls.ca, tls.cert, tls.key = (str(fix(x)) if x else None for x in (tls.ca, tls.cert, tls.key))
        return self


# --- loading with line numbers ---------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _check_duplicates(node: yaml.Node, path: str, where: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else None
            if k is not None:
                if k in seen:
                    raise EdgeError(
                        f"{where}:{_line(key)}: {path + '.' if path else ''}{k}: "
                        f"duplicate key (first on line {seen[k]}); keep one"
                    )
                seen[k] = _line(key)
            _check_duplicates(value, f"{path + '.' if path else ''}{k}", where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, f"{path}[{i}]", where)


def _locate(node: yaml.Node, loc: tuple) -> int:
    """The line of the deepest YAML node on the error's path (the key's line for a mapping entry)."""
    line = _line(node)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line, node = _line(key), value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            return line
    return line


def _model_at(model: type, loc: tuple) -> Optional[type]:
    """The pydantic model class reached by following `loc` from `model`, if any."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        models = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else None
    return annotation


def describe(error: dict, model: type) -> str:
    """One readable message for one pydantic error."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else (f"allowed here: {', '.join(allowed)}" if allowed else "")
        return "unknown key" + (f"; {hint}" if hint else "")
    if kind == "missing":
        return "required key missing"
    msg = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, (str, int, float, bool)) and kind not in ("value_error", "assertion_error"):
        msg += f" (got {value!r})"
    return msg


def _clean_loc(loc: tuple) -> tuple:
    # pydantic adds the union branch tried ("int", "str", "function-after[...]") to the path; drop it
    return tuple(p for p in loc if isinstance(p, int) or not re.match(r"^[a-z_-]+\[|^(int|str|float|bool)$", str(p)))


def validation_message(exc: ValidationError, model: type, root: Optional[yaml.Node], where: str) -> str:
    """The first problem in file order, as one line: FILE:LINE: dotted.key: what is wrong."""
    errors = [{**e, "loc": _clean_loc(tuple(e["loc"]))} for e in exc.errors()]
    if root is not None:
        errors.sort(key=lambda e: _locate(root, e["loc"]))
    first = errors[0]
    loc = first["loc"]
    if first["type"] == "missing" and loc and isinstance(loc[-1], int):
        # a short list such as roi: [1, 2, 3]
        loc, first = loc[:-1], {**first, "type": "too_short", "msg": f"too few values (item {loc[-1] + 1} missing)"}
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    line = f":{_locate(root, loc)}" if root is not None else ""
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}{line}: {dotted}: {describe({**first, 'loc': loc}, model)}{more}"


def load_config(path: str | Path) -> RunConfig:
    """Read, check and return a run config; every problem is an EdgeError of one line."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise EdgeError(f"config file not found: {path} (see deploy/edge.example.yaml for a starting point)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeError(f"cannot read config {path}: {exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise EdgeError(f"{where}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise EdgeError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()
    if root is None or data is None:
        raise EdgeError(f"{where}: the config is empty; see deploy/edge.example.yaml")
    if not isinstance(data, dict):
        raise EdgeError(
            f"{where}:{_line(root)}: the config must be a mapping of sections (bundle:, source:, sinks:, ...)"
        )
    _check_duplicates(root, "", where)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise EdgeError(validation_message(exc, RunConfig, root, where)) from None
    return config.resolve_paths(path.resolve().parent)
