"""The interpreter alone: the ceiling for a model on these cores, and batched tiles against one by one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from edge.bench.stats import latency_stats
from edge.model import ModelBase
from edge.runtime import RuntimeOptions, open_model

WARMUP_INVOKES = 10


def _random_batch(model: ModelBase, n: int, seed: int = 0) -> np.ndarray:
    h, w, c = model.input_hwc
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def bench_invoke(model_path: Path, threads: int, iterations: int, runtime: Optional[RuntimeOptions] = None) -> dict:
    """The interpreter alone: input set once, then `iterations` invokes timed one by one."""
    model = open_model(model_path, runtime, threads)
    model.set_input(_random_batch(model, 1))
    for _ in range(WARMUP_INVOKES):
        model.invoke()
    times = np.empty(iterations, np.float64)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(iterations):
        a = time.perf_counter()
        model.invoke()
        times[i] = time.perf_counter() - a
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "runtime": model.runtime,
        "fps": round(iterations / wall, 2),
        "cpu_ms": round(1000 * cpu / iterations, 3),
        "ms": latency_stats(times),
    }


def _invoke_each(model: ModelBase, batch: np.ndarray) -> None:
    """One invoke per tile, input setting included (what a fixed-batch model has to do)."""
    for t in batch:
        model.set_input(t[None])
        model.invoke()


def _tiles_one_by_one_only(single: ModelBase, batch: np.ndarray, iterations: int) -> dict:
    """A model exported with a fixed batch of 1: the tiles can only go one by one (predict() does so)."""
    tiles = len(batch)
    for t in batch[:3]:
        single.predict(t[None])
    times = np.empty(iterations)
    for i in range(iterations):
        a = time.perf_counter()
        _invoke_each(single, batch)
        times[i] = time.perf_counter() - a
    return {
        "tiles": tiles,
        "fixed_batch": 1,
        "one_by_one_ms_per_tile": round(1000 * float(np.median(times)) / tiles, 3),
        "batched_ms_per_tile": None,
        "speedup": None,
    }


def bench_tiles(
    model_path: Path, threads: int, tiles: int, iterations: int, runtime: Optional[RuntimeOptions] = None
) -> dict:
    """`tiles` tiles in one batched invoke vs the same tiles one invoke each (set_input included)."""
    single = open_model(model_path, runtime, threads)
    batch = _random_batch(single, tiles, seed=1)
    if single.fixed_batch == 1:
        return _tiles_one_by_one_only(single, batch, iterations)
    batched = open_model(model_path, runtime, threads)
    for _ in range(3):  # warm both, and let the batched one resize its input once
        batched.predict(batch)
        for t in batch:
            single.predict(t[None])
    one_by_one = np.empty(iterations)
    in_one = np.empty(iterations)
    for i in range(iterations):
        a = time.perf_counter()
        _invoke_each(single, batch)
        b = time.perf_counter()
        batched.set_input(batch)
        batched.invoke()
        c = time.perf_counter()
        one_by_one[i], in_one[i] = b - a, c - b
    s, m = float(np.median(one_by_one)), float(np.median(in_one))
    return {
        "tiles": tiles,
        "one_by_one_ms_per_tile": round(1000 * s / tiles, 3),
        "batched_ms_per_tile": round(1000 * m / tiles, 3),
        "speedup": round(s / m, 2) if m > 0 else None,
    }
