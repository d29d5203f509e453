"""The tutorials' latent-space k-means score: the fit (desktop) on an autoencoder run.

K-means (scikit-learn) on the autoencoder's bottleneck vectors ("latent" layer) of the training
images; the centroids go to RUN_DIR/latent_kmeans.npz and run.json "latent_kmeans", and run.json
"arch" becomes "latent_kmeans", so `edge export` builds the distance model (export/latent_kmeans.py):
ONE .tflite whose output is the distance from an image's latent vector to the nearest centroid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing, to_unit_float
from train.runinfo import load_keras_run_model, read_run, write_run

KMEANS_FILE = "latent_kmeans.npz"


def encoder_of(model):
    """The autoencoder's input → its "latent" layer output, as a Keras model."""
    import keras

    try:
        latent = model.get_layer("latent")
    except ValueError:
        raise EdgeError("this model has no layer named 'latent'; retrain it with `edge train autoencoder`") from None
    return keras.Model(model.inputs[0], latent.output, name="encoder")


def latent_vectors(model, frames_u8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    encoder = encoder_of(model)
    out = [
        np.asarray(encoder(to_unit_float(frames_u8[i : i + batch_size]), training=False))
        for i in range(0, len(frames_u8), batch_size)
    ]
    return np.concatenate(out).astype(np.float32)


def nearest_distance(z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Reference score in numpy: (N, D) latents → (N,) distance to the nearest centroid."""
    d2 = ((z[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    return np.sqrt(d2.min(axis=1))


def fit_latent_kmeans(
    run_dir: str | Path, k: int, *, model=None, frames: Optional[np.ndarray] = None, seed: int = 0, log: Log = _stderr
) -> np.ndarray:
    """Fit K-means on the run's training latents; write latent_kmeans.npz and run.json; return centroids."""
    from sklearn.cluster import KMeans

    from train.data import frames_from_files

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    if run["kind"] != "autoencoder":
        raise EdgeError(f"{run_dir} holds a {run['kind']!r} run; latent k-means needs an autoencoder run")
    if model is None:
        model = load_keras_run_model(run_dir, "edge train autoencoder")
    if frames is None:
        frames, _ = frames_from_files(run.get("train_files", []), Preprocessing.model_validate(run["preprocessing"]))
    if len(frames) < k:
        raise EdgeError(f"--latent-kmeans {k} needs at least {k} training images; {len(frames)} can be read")
    z = latent_vectors(model, frames)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    centroids = km.cluster_centers_.astype(np.float32)
    train_dist = nearest_distance(z, centroids)
    np.savez(run_dir / KMEANS_FILE, centroids=centroids, train_distance=train_dist)
    run["latent_kmeans"] = {
        "k": int(k),
        "file": KMEANS_FILE,
        "latent_dim": int(z.shape[1]),
        "images": int(len(z)),
        "train_distance_mean": float(train_dist.mean()),
        "train_distance_max": float(train_dist.max()),
    }
    run["arch"] = "latent_kmeans"  # what `edge export` now builds from this run (export/kinds.py)
    write_run(run_dir, run)
    log(
        f"latent k-means: {k} centroids on {len(z)} training latents ({z.shape[1]} dims); "
        f"training distances mean {train_dist.mean():.3g}, max {train_dist.max():.3g} → {run_dir / KMEANS_FILE}"
    )
    return centroids
