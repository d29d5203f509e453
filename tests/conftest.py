"""Shared, session-scoped test fixtures (expensive things are built once per test run).

Models: `trained_run` (a tiny autoencoder run folder trained on synthetic 32x32 grey images) and
`int8_model` (its full-int8 .tflite with the model card beside it). Data: `synthetic_mvtec`
(MVTec AD layout; the run was trained on its train/good, so test/good and test/defect are unseen).

Under pytest-xdist every worker is a session of its own; these three are built once for the whole
run by whichever worker asks first (`built_once`), and the others reuse the files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable

import pytest
from synthetic import make_mvtec  # tests/ is on sys.path (rootdir conftest, no __init__.py)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers already fill the cores. TensorFlow's thread pools on top oversubscribe them and its
    # spinning threads take each other's time: three tiny trainings in each of two processes took
    # 36 s with 2 threads apiece, 27 s with 1. Read when TensorFlow starts; CLI subprocesses inherit it.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


@pytest.hookimpl(optionalhook=True)  # the device-only install has no xdist
def pytest_xdist_auto_num_workers(config) -> int | None:
    """`-n auto`: one worker more than xdist's own count (the cores). A quarter of the suite's test
    time waits on real time (streams at a camera's pace, servers, brokers, timeouts), not on the
    CPU; a third worker on 2 cores fills it. The whole suite (773 tests, work stealing), one run each
    on the same quiet 2-core machine: 211 s with 2 workers, 181 s with 3, 215 s with 4.
    PYTEST_XDIST_AUTO_NUM_WORKERS, when set, still decides."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist reads it
    from xdist.plugin import pytest_xdist_auto_num_workers as cores

    return cores(config) + 1


def pytest_configure(config) -> None:
    """`-n` without `--dist`: work stealing, not xdist's default "load". Load hands out the last
    tests in chunks of about ten, so one worker can be left alone with a stretch of real-time tests
    (a chunk of test_stream_faults ran 40 s after the others had finished). Work stealing gives
    each worker a third of the files in order, and a worker that runs dry takes half of the longest
    queue left; a file's tests mostly stay on one worker, so module fixtures are built once."""
    if getattr(config.option, "dist", "no") == "load" and not any(
        str(arg).startswith("--dist") for arg in config.invocation_params.args
    ):
        config.option.dist = "worksteal"


# The tiny model every model-using test shares: small enough to train in seconds on 2 cores.
TINY_AE = dict(
    size=32, filters=(8, 16), latent=16, epochs=15, batch_size=8, learning_rate=3e-3, val_split=0.1, patience=0, seed=0
)


def _quiet(_message: str) -> None:
    pass


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """`build(folder)` run once per test run, whatever the number of xdist workers.

    The first worker to get here builds under the base temp folder they all share (its parent, under
    xdist), holding a lock; the others wait on the lock and get the path it returned. Without xdist
    it is simply built.
    """
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "built_once"
    shared.mkdir(exist_ok=True)
    done = shared / f"{name}.path"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            done.write_text(str(build(shared / name)))
    return Path(done.read_text())


@pytest.fixture(scope="session")
def synthetic_mvtec(tmp_path_factory) -> Path:
    """MVTec AD layout of 64x64 grey images: train/good (60), test/good (10), test/defect (10) + masks."""
    return built_once(
        tmp_path_factory,
        "synthetic_mvtec",
        lambda folder: make_mvtec(folder / "synthetic", n_train=60, n_test_good=10, n_test_bad=10, size=64),
    )


@pytest.fixture(scope="session")
def trained_run(synthetic_mvtec, tmp_path_factory) -> Path:
    """RUN_DIR of `edge train autoencoder` on synthetic_mvtec at 32x32 grey (model.keras, run.json, …).

    15 epochs: enough that it reconstructs unseen good images ~10x better than their mean image.
    """
    pytest.importorskip("tensorflow")

    def train(folder: Path) -> Path:
        from train.autoencoder import train_autoencoder

        return train_autoencoder(synthetic_mvtec, folder / "ae", threads=1, progress=False, log=_quiet, **TINY_AE)

    return built_once(tmp_path_factory, "trained_run", train)


@pytest.fixture(scope="session")
def int8_model(trained_run, tmp_path_factory) -> Path:
    """Path to trained_run's full-int8 .tflite (uint8 in/out); its card <model>.json lies beside it."""

    def export(_folder: Path) -> Path:
        from export.run import export_run

        return export_run(trained_run, "int8", log=_quiet)

    return built_once(tmp_path_factory, "int8_model", export)
