"""The base of every schema edge-inspect reads, and how a violation of one becomes one line.

Run configs (edge.config), bundle.json and model cards (edge.bundle), and every section they hold
derive from `StrictModel`: an unknown key is an error, so a typo never silently changes
behaviour, and NaN or ±infinity is refused in every float (a `threshold: NaN` alerted on nothing
and said nothing); `non_finite_at` finds them in what is read from a file, free-form fields (a
bundle's `metrics`, `extra`) included. This module imports nothing else of edge/ but edge.errors,
so every module can use it.
"""

from __future__ import annotations

import ipaddress
import math
from contextlib import contextmanager
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from edge.errors import EdgeError


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys, and NaN or ±infinity in any float field."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def non_finite_at(data: Any, key: str = "") -> Optional[tuple[str, float]]:
    """(dotted key, value) of the first NaN or ±infinity in parsed JSON/YAML, or None.

    For what is read from a file before a model sees it: a float field refuses these by itself,
    but a field of free-form data (a bundle's `metrics`, `extra`) would take them.
    """
    if isinstance(data, float) and not math.isfinite(data):
        return key or "(top level)", data
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for name, value in children:
        found = non_finite_at(value, f"{key}.{name}" if key else str(name))
        if found is not None:
            return found
    return None


def first_problem(exc: ValueError, with_key: bool = False) -> str:
    """The first problem of a validation error, without pydantic's "Value error, " prefix.

    `with_key`: prefixed with the dotted key it is about ("model.kind: ..."). A plain ValueError
    (not pydantic's) is its own message.
    """
    if not isinstance(exc, ValidationError):
        return str(exc)
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "finite_number":
        message = f"must be a finite number, not {first['input']!r}"
    if not with_key:
        return message
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{key}: {message}"


@contextmanager
def one_line_errors(prefix: str) -> Iterator[None]:
    """A validation error inside becomes EdgeError("PREFIX: first problem"), one line for the user."""
    try:
        yield
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise EdgeError(f"{prefix}: {first_problem(exc)}") from None


def url_problem(url: str, schemes: Optional[tuple[str, ...]] = None) -> Optional[str]:
    """What is wrong with `url` (scheme, host, port 1–65535, spaces), or None.

    The message never echoes the URL: it may hold a password.

    `schemes`: the ones allowed (lower case); None: any, but one must be there. A URL without a
    host is allowed only when no schemes are named (FFmpeg's `udp://@:1234` listens).
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [ of an IPv6 address
        return "url is not a valid URL"
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        return "url must start with a scheme such as " + ("://, ".join(schemes or ("rtsp", "http")) + "://")
    if schemes is not None and scheme not in schemes:
        return f"url must start with {' or '.join(s + '://' for s in schemes)}, not {scheme}://"
    if any(c.isspace() for c in url):
        return "url has a space in it; write it as %20"
    if schemes is not None and not parts.hostname:
        return "url names no host"
    try:
        port = parts.port
    except ValueError:
        return "url port must be a number from 1 to 65535"
    if port == 0:
        return "url port must be a number from 1 to 65535"
    return None


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (127.0.0.0/8, ::1, localhost): the web page, the
    MQTT sink's credentials check and remote bundle commands all decide by it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so it is treated as reachable
