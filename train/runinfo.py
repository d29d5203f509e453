"""The run folder written by `edge train …` and read by `edge export`: file names and run.json.

run.json names its model with two keys: "kind", what the trained model is to the device (an
autoencoder, a classifier, or a model whose output is the anomaly map), and "arch", which of
the model kinds in export/kinds.py made it (its trainer, its exporter). `run_arch` is the one
place that reads "arch", and the one place that infers it for runs written before every run
recorded it.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge.errors import EdgeError

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
PADIM_FILE = "padim.npz"  # the feature model's fitted Gaussians: its run has no model.keras
MEMORY_FILE = "memory.npz"  # the memory model's bank of good cells: no model.keras either


def read_run_json(run_dir: str | Path) -> dict:
    """run.json of any training run, checked enough that later steps can trust it.

    A run folder holds its model: model.keras, padim.npz for the feature model, memory.npz for
    the memory model.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgeError(f"run folder not found: {run_dir} (make one with `edge train autoencoder --out {run_dir}`)")
    if not any((run_dir / name).is_file() for name in (MODEL_FILE, PADIM_FILE, MEMORY_FILE)):
        raise EdgeError(
            f"{run_dir} has no {MODEL_FILE}: not a training run folder (train with `edge train autoencoder`)"
        )
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise EdgeError(f"{run_dir} has no {RUN_FILE} beside its model; re-run `edge train` to write it")
    try:
        run = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeError(f"{path} is not valid JSON ({exc}); re-run `edge train`") from None
    missing = [k for k in ("kind", "preprocessing") if k not in run] if isinstance(run, dict) else ["(all)"]
    if missing:
        raise EdgeError(f"{path} lacks {', '.join(missing)}; re-run `edge train`")
    return run


def read_run(run_dir: str | Path) -> dict:
    """run.json of a run whose model is RUN_DIR/model.keras (every kind but the feature model)."""
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not (run_dir / MODEL_FILE).is_file():
        raise EdgeError(
            f"{run_dir} has no {MODEL_FILE}: not a training run folder (train with `edge train autoencoder`)"
        )
    return read_run_json(run_dir)


def write_run(run_dir: str | Path, run: dict) -> Path:
    path = Path(run_dir) / RUN_FILE
    path.write_text(json.dumps(run, indent=2) + "\n")
    return path


def run_arch(run: dict) -> str:
    """The run's "arch": the key of its model kind in export/kinds.py.

    Every run written by this version records it. Earlier versions recorded it only for the
    feature model ("padim") and DRAEM ("draem"); for the others it follows from what they did
    record: a classifier run is "classifier", an autoencoder run with fitted latent k-means is
    "latent_kmeans", any other autoencoder run is its architecture's arch ("conv" or "dense").
    """
    if "arch" in run:
        return str(run["arch"])
    if run["kind"] == "classifier":
        return "classifier"
    if run["kind"] == "autoencoder":
        if run.get("latent_kmeans"):
            return "latent_kmeans"
        return str(run.get("architecture", {}).get("arch", "conv"))
    raise EdgeError(f"run.json of kind {run['kind']!r} names no arch; re-run `edge train`")


def load_keras_run_model(run_dir: str | Path, retrain: str):
    """RUN_DIR/model.keras, or one clear line naming the file and the command that makes it."""
    from train.tfenv import import_tensorflow, native_output_captured

    import_tensorflow()
    import keras

    path = Path(run_dir) / MODEL_FILE
    try:
        with native_output_captured():
            return keras.models.load_model(path, compile=False)
    except Exception as exc:  # a corrupt or foreign file: say which, not a traceback
        raise EdgeError(f"cannot load {path} ({type(exc).__name__}: {exc}); re-run `{retrain}`") from None
