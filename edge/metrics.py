"""Operational metrics: a periodic line on stderr and an optional Prometheus endpoint."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every_seconds: float = Field(60.0, ge=0, description="metrics line on stderr every N seconds; 0: off")
    prometheus_port: int | None = Field(None, ge=0, le=65535, description="serve /metrics on this port; None: off")
    # Loopback by default: exposing it on the plant network is a decision, not an accident.
    prometheus_host: str = Field("127.0.0.1", description="address the Prometheus endpoint binds to")
