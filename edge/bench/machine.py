"""The machine a benchmark ran on: CPU, cores, library versions, and the process's peak memory."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from edge import __version__
from edge.model import interpreter_backend


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _cpu_model() -> str:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    # x86: "model name"; Raspberry Pi: "Model" (the board) or "Hardware"; else what Python knows.
    for key in ("model name", "model", "hardware", "cpu model"):
        value = fields.get(key, "")
        if value and not value.isdigit():
            return value
    return platform.processor() or platform.machine()


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    backend, _ = interpreter_backend()
    versions = {
        "edge-inspect": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    dist = {
        "ai-edge-litert": "ai-edge-litert",
        "tflite-runtime": "tflite-runtime",
        "tensorflow.lite": "tensorflow",
    }.get(backend)
    if dist:
        versions[backend] = _version(dist) or "?"
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "system": f"{platform.system()} {platform.release()}",
        "interpreter": backend,
        "versions": versions,
        "opencv_threads": cv2.getNumThreads(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB.

    Linux: VmHWM from /proc/self/status, the high-water mark of this program's own memory.
    (ru_maxrss is not used there: a child started from a big parent inherits the parent's figure.)
    Elsewhere ru_maxrss (bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: `5` to /proc/self/clear_refs resets VmHWM); False if not possible."""
    import gc

    gc.collect()  # models of earlier measurements must not count
    _peak_seen[0] = max(_peak_seen[0], peak_rss_mb())
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


_peak_seen = [0.0]  # the highest peak before the last reset_peak_rss()


def whole_peak_rss_mb() -> float:
    """Peak RSS of this process since it started, across reset_peak_rss() windows."""
    return max(_peak_seen[0], peak_rss_mb())
