"""The MQTT topics a plant subscribes to: `<prefix>/<station>/<inspection>/<kind>`.

One tree per plant (`prefix`), one branch per station (a device, default its host name) and one per
inspection (a camera and its bundle, default "default"), so a subscriber picks what it wants with
the usual wildcards: `plant/+/+/alerts` (every alert), `plant/press-3/#` (one station),
`plant/+/+/status` (who is up). docs/alerts.md lists the topics; docs/fleet.md shows a plant's worth.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

# What MQTT forbids in one topic level (wildcards, the separator, NUL) and what would make a level
# awkward to subscribe to or to carry into Sparkplug and OPC UA names (spaces, control characters).
_BAD_LEVEL = re.compile(r"[#+/\x00-\x20\x7f]")
# Sparkplug B and Home Assistant object ids are safest in this alphabet.
_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def level_problem(value: str, key: str) -> str | None:
    """Why `value` cannot be one level of a topic (None: it can)."""
    if not value:
        return f"{key} must not be empty: it names a topic level (<prefix>/<station>/<inspection>/alerts)"
    bad = sorted(set(_BAD_LEVEL.findall(value)))
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return (
            f"{key} {value!r} cannot be an MQTT topic level: no wildcards (# +), '/', spaces or control "
            f"characters (found {shown}); use letters, digits, '-' and '_'"
        )
    return None


def default_station() -> str:
    """The host name, cut to a valid topic level (a dotted FQDN keeps its first label)."""
    name = socket.gethostname().split(".")[0]
    return _BAD_LEVEL.sub("-", name) or "station"


def safe_id(*parts: str) -> str:
    """An id made of letters, digits, '-' and '_' (Home Assistant object ids, OPC UA browse names)."""
    return "_".join(_ID_SAFE.sub("_", p) for p in parts)


@dataclass(frozen=True)
class Topics:
    prefix: str
    station: str
    inspection: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.station}/{self.inspection}"

    @property
    def alerts(self) -> str:
        return f"{self.base}/alerts"

    @property
    def reviews(self) -> str:
        return f"{self.base}/reviews"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def metrics(self) -> str:
        return f"{self.base}/metrics"

    @property
    def bundle_command(self) -> str:
        """Where a station takes a bundle command (edge.bundle_command), when sinks.mqtt.commands is on."""
        return f"{self.base}/cmd/bundle"

    @property
    def bundle_result(self) -> str:
        return f"{self.base}/cmd/bundle/result"
