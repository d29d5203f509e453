"""`inspections:` in the run config: several cameras, each with its own bundle, in one `edge run`.

Each item names an inspection and carries the settings that belong to one camera (source, bundle,
classifier, geometry, decision, interpreter threads); everything else in the file (sinks, metrics,
health, drift, out, runtime) is shared from the top level. edge/inspections.py runs them.

    inspections:
      - name: left
        source: {camera: /dev/v4l/by-id/usb-cam-left-video-index0}
        bundle: bundles/left
      - name: right
        source: {url: rtsp://10.0.0.7/stream}
        bundle: bundles/right
        decision: {votes: 2, window: 3}

Refused in one line each: two inspections with one name, one camera (video file, stream) given to
two inspections, a name that cannot be a topic level, and a per-inspection key left at the top.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from pydantic import Field, field_validator

from edge.decide import DecisionConfig
from edge.schema import StrictModel
from edge.sinks.topics import level_problem
from edge.sources import SourceConfig
from edge.tiling import GeometryConfig

# The RunConfig keys an inspection carries; with `inspections:` they are not allowed at the top.
PER_INSPECTION = ("bundle", "classifier", "source", "geometry", "decision")


class InspectionConfig(StrictModel):
    name: str = Field(..., description="the inspection's name: in each alert, topic level, log prefix, out subfolder")
    bundle: Path = Field(..., description="bundle folder made by `edge calibrate`")
    classifier: Optional[Path] = Field(None, description="optional second-stage classifier bundle")
    source: SourceConfig = Field(..., description="this inspection's camera, stream, video or image folder")
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    threads: Optional[int] = Field(
        None, ge=1, description="this inspection's interpreter threads; default the top-level threads"
    )

    @field_validator("name")
    @classmethod
    def _topic_level(cls, v: str) -> str:
        # The name is an MQTT topic level, an OPC UA / Sparkplug name and a folder: one rule for all.
        problem = level_problem(v, "name")
        if problem is not None:
            raise ValueError(problem)
        if v in (".", ".."):
            raise ValueError(f"name {v!r} cannot be a folder name; use letters, digits, '-' and '_'")
        return v

    def resolve_paths(self, fix) -> None:
        """Make relative paths relative to the config file's folder (`fix` is RunConfig's)."""
        self.bundle = fix(self.bundle)
        self.classifier = fix(self.classifier)
        for key in ("video", "images", "signal"):
            value = getattr(self.source, key)
            if value not in (None, "-"):
                setattr(self.source, key, str(fix(value)))
        if self.geometry.mask is not None:
            self.geometry.mask = str(fix(self.geometry.mask))


def source_identity(source: SourceConfig) -> tuple[str, str]:
    """What two inspections must not share: the device, file or stream behind a source.

    A camera index N is /dev/videoN (Linux); files and folders compare by their normalised path.
    """
    kind = source.kind
    value = getattr(source, kind)
    if kind == "camera" and (isinstance(value, int) or str(value).isdigit()):
        return "camera", f"/dev/video{int(value)}"
    if kind in ("camera", "video", "images", "serial") or (kind == "signal" and value != "-"):
        return ("camera" if kind == "camera" else kind), os.path.normpath(str(value))
    return kind, str(value)


def check_inspections(items: list[InspectionConfig]) -> list[InspectionConfig]:
    """Names unique, sources unique; a ValueError naming both items otherwise."""
    if not items:
        raise ValueError("give at least one, or leave the key out for a single camera")
    names: dict[str, int] = {}
    sources: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items, start=1):
        if item.name in names:
            raise ValueError(
                f"two inspections are named {item.name!r} (items {names[item.name]} and {i}); give each its own name"
            )
        names[item.name] = i
        key = source_identity(item.source)
        if key in sources:
            raise ValueError(
                f"inspections {items[sources[key] - 1].name!r} and {item.name!r} both read {key[0]} {key[1]}; "
                "a camera, stream or file feeds one inspection"
            )
        sources[key] = i
    return items


def multi_problem(config) -> Optional[str]:
    """Why a RunConfig with `inspections:` cannot run as given, or None.

    A per-inspection key also at the top is ambiguous; the options below are one per process or per
    device today and would clash between inspections, so they are refused rather than half-served.
    """
    given = [
        key
        for key in PER_INSPECTION
        if (getattr(config, key).model_fields_set if key in ("geometry", "decision") else getattr(config, key))
    ]
    if given:
        return f"{', '.join(given)}: with `inspections:` these go in each inspection, not at the top of the file"
    sinks, mqtt = config.sinks, config.sinks.mqtt
    clashes = {
        "sinks.gpio": sinks.gpio is not None,  # one reject line: which camera pulses it?
        "sinks.opcua": sinks.opcua is not None,  # one server and port per process
        "sinks.mqtt.sparkplug": mqtt is not None and mqtt.sparkplug is not None,  # one edge node per connection
        # bundle commands swap one bundle: which inspection's? (edge/bundle_command.py)
        "sinks.mqtt.commands": mqtt is not None and getattr(mqtt, "commands", None) is not None,
        "swap.watch": config.swap.watch is not None,  # one folder, which inspection takes its bundles?
        "web.override": config.web.override is not None,  # thresholds differ per bundle
    }
    refused = [key for key, on in clashes.items() if on]
    if refused:
        return (
            f"{', '.join(refused)}: not supported with several inspections yet (see docs/runtime.md, "
            "'Several cameras'); run one `edge run` per camera for it"
        )
    if mqtt is not None and mqtt.inspection != "default":
        return "sinks.mqtt.inspection: with `inspections:` each inspection's name is its topic level; drop the key"
    return None
