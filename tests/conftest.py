"""Shared, session-scoped test fixtures (expensive things are built once per test session).

Models: `trained_run` (a tiny autoencoder run folder trained on synthetic 32x32 grey images) and
`int8_model` (its full-int8 .tflite with the model card beside it). Data: `synthetic_mvtec`
(MVTec AD layout; the run was trained on its train/good, so test/good and test/defect are unseen).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import make_mvtec  # tests/ is on sys.path (rootdir conftest, no __init__.py)

# The tiny model every model-using test shares: small enough to train in seconds on 2 cores.
TINY_AE = dict(
    size=32, filters=(8, 16), latent=16, epochs=15, batch_size=8, learning_rate=3e-3, val_split=0.1, patience=0, seed=0
)


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="session")
def synthetic_mvtec(tmp_path_factory) -> Path:
    """MVTec AD layout of 64x64 grey images: train/good (60), test/good (10), test/defect (10) + masks."""
    return make_mvtec(tmp_path_factory.mktemp("data") / "synthetic", n_train=60, n_test_good=10, n_test_bad=10, size=64)


@pytest.fixture(scope="session")
def trained_run(synthetic_mvtec, tmp_path_factory) -> Path:
    """RUN_DIR of `edge train autoencoder` on synthetic_mvtec at 32x32 grey (model.keras, run.json, …).

    15 epochs: enough that it reconstructs unseen good images ~10x better than their mean image.
    """
    pytest.importorskip("tensorflow")
    from train.autoencoder import train_autoencoder

    out = tmp_path_factory.mktemp("runs") / "ae"
    return train_autoencoder(synthetic_mvtec, out, threads=2, progress=False, log=_quiet, **TINY_AE)


@pytest.fixture(scope="session")
def int8_model(trained_run) -> Path:
    """Path to trained_run's full-int8 .tflite (uint8 in/out); its card <model>.json lies beside it."""
    from export.run import export_run

    return export_run(trained_run, "int8", log=_quiet)
