"""The `web:` section of the run config (`edge run --web HOST:PORT` sets web.listen)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from pydantic import Field, field_validator

from edge.schema import StrictModel

_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s\[\]]+)):(?P<port>\d{1,5})$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (or [IPv6]:PORT) -> (host, port); ValueError with what to write instead."""
    m = _LISTEN.match(text.strip())
    port = int(m.group("port")) if m else -1
    if m is None or not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: give HOST:PORT, e.g. 127.0.0.1:8080 (or [::1]:8080; port 0: any free port)")
    return m.group("v6") or m.group("host"), port


class WebConfig(StrictModel):
    listen: Optional[str] = Field(
        None, description="HOST:PORT of the page (127.0.0.1:8080); other than loopback needs a token; null: off"
    )
    token_env: str = Field(
        "EDGE_WEB_TOKEN",
        description="environment variable holding the page's token: needed for every request on a "
        "non-loopback address, and for reviews and threshold changes always",
    )
    review_dir: str = Field("review", description="reviewed frames in MVTec AD layout; relative to out")
    override: Optional[Path] = Field(
        None, description="threshold override file; default: <bundle folder>.threshold.json beside the bundle"
    )
    live_fps: float = Field(5.0, gt=0, le=30, description="most annotated frames a second the live view draws")
    trace: int = Field(600, ge=10, le=100_000, description="recent frame scores kept for the score trace")

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            parse_listen(v)
        return v

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not _ENV_NAME.match(v):
            raise ValueError(f"{v!r} is not an environment variable name: name the variable, not the token")
        return v

    @property
    def address(self) -> Optional[tuple[str, int]]:
        return parse_listen(self.listen) if self.listen is not None else None
