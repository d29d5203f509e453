"""The model-kind table (export/kinds.py) and run.json's "arch", including runs of earlier versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.bundle import read_card
from edge.detector import DETECTOR_FACTORIES
from edge.errors import EdgeError
from train.runinfo import run_arch

PREPROCESSING = {"width": 16, "height": 16, "color": "grey"}


def test_every_kind_names_a_device_detector():
    from export.kinds import MODEL_KINDS

    images = {"padim", "memory", "draem", "conv", "dense", "latent_kmeans", "classifier"}
    assert set(MODEL_KINDS) == images | {"signal_dense", "signal_conv1d"}
    for kind in MODEL_KINDS.values():
        assert kind.detector in DETECTOR_FACTORIES, kind.arch


@pytest.mark.parametrize(
    ("run", "arch"),
    [
        # written by this version: "arch" says it
        ({"kind": "autoencoder", "arch": "dense"}, "dense"),
        ({"kind": "anomaly_map", "arch": "draem"}, "draem"),
        # written before every run recorded "arch"
        ({"kind": "autoencoder", "architecture": {"arch": "conv"}}, "conv"),
        ({"kind": "autoencoder", "architecture": {"arch": "dense"}}, "dense"),
        ({"kind": "autoencoder"}, "conv"),
        ({"kind": "autoencoder", "architecture": {"arch": "conv"}, "latent_kmeans": {"k": 3}}, "latent_kmeans"),
        ({"kind": "classifier", "class_names": ["crack", "no_crack"]}, "classifier"),
        ({"kind": "anomaly_map", "arch": "padim"}, "padim"),
    ],
)
def test_run_arch_reads_or_infers_the_kind(run, arch):
    assert run_arch(run) == arch


def test_unknown_arch_is_one_clear_error(tmp_path):
    from export.run import export_run

    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "run.json").write_text(json.dumps({"kind": "anomaly_map", "arch": "wavelets", "preprocessing": {}}))
    with pytest.raises(EdgeError, match="unknown model arch 'wavelets'"):
        export_run(tmp_path, "float32")


def _old_dense_run(run_dir: Path) -> Path:
    """A run folder as the previous version wrote it: run.json with no top-level "arch"."""
    pytest.importorskip("tensorflow")
    from train.autoencoder import build_autoencoder
    from train.tfenv import import_tensorflow

    import_tensorflow(threads=1)
    run_dir.mkdir()
    build_autoencoder((16, 16, 1), latent=4, arch="dense", units=(8,)).save(run_dir / "model.keras")
    run = {
        "kind": "autoencoder",
        "model": "model.keras",
        "preprocessing": PREPROCESSING,
        "score": {"kind": "mean"},
        "train_files": [],
        "val_files": [],
        "architecture": {"name": "dense_autoencoder", "arch": "dense", "units": [8], "latent": 4},
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


def test_a_run_of_the_previous_version_still_exports(tmp_path):
    from export.run import export_run

    model = export_run(_old_dense_run(tmp_path / "old"), "float32", check_parity=False, log=lambda _m: None)
    card = read_card(model)
    assert card.kind == "autoencoder" and card.quantization == "float32"
    assert card.preprocessing.input_shape == (16, 16, 1)
    assert card.extra["run"] == str((tmp_path / "old").resolve())
