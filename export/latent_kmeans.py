"""`edge export` for a run with latent k-means (train/latent_kmeans.py), as ONE .tflite for the device.

Encoder + a layer computing min_k ||z - c_k|| (centroids as constants), reshaped to a
(N, 1, 1, 1) "map", with model kind "anomaly_map" and ScoreConfig kind "mean": the device's
anomaly-map detector upsamples that 1x1 map to a constant image and its mean is exactly the
distance, so calibration, `edge run` and `edge eval` use it unchanged (the heatmap is flat: this
score does not localise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from edge.bundle import ModelCard, write_card
from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from edge.preprocess import Preprocessing, to_unit_float
from edge.scoring import ScoreConfig
from export.convert import convert_keras, export_target
from export.representative import int8_representative, synthetic_defects
from train.data import frames_from_files
from train.keras_infer import keras_outputs
from train.latent_kmeans import KMEANS_FILE, encoder_of
from train.runinfo import MODEL_FILE, load_keras_run_model, read_run
from train.tfenv import native_output_captured

CARD_KIND = "anomaly_map"  # a (N, 1, 1, 1) map whose mean is the distance
MAX_REPRESENTATIVE = 4000


def _turned(frames_u8: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """Training frames rotated or flipped: normal intensities (encoder ranges unchanged), far latents."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = frames_u8[rng.integers(len(frames_u8))]
        turned = np.rot90(f, 1 + i % 3) if f.shape[0] == f.shape[1] and i % 4 != 3 else f[::-1]
        out.append(np.ascontiguousarray(turned))
    return np.stack(out)


def build_distance_model(model, centroids: np.ndarray):
    """Encoder + min over centroids of ||z - c||, output (N, 1, 1, 1)."""
    import keras
    from keras import layers, ops

    c = np.asarray(centroids, np.float32)

    class NearestCentroidDistance(layers.Layer):
        # differences, not ||z||² - 2z·c + ||c||²: the expanded form cancels badly in int8
        def call(self, z):
            diff = ops.expand_dims(z, 1) - ops.convert_to_tensor(c)[None]
            d2 = ops.min(ops.sum(ops.square(diff), axis=2), axis=1)
            return ops.reshape(ops.sqrt(d2), (-1, 1, 1, 1))

    encoder = encoder_of(model)
    out = NearestCentroidDistance(name="latent_distance")(encoder.output)
    return keras.Model(encoder.inputs[0], out, name="latent_kmeans")


def export_latent_kmeans(
    run_dir: str | Path,
    quantize: str = "int8",
    *,
    out: Optional[str | Path] = None,
    representative: Optional[str | Path] = None,
    synthetic: int = 60,
    log: Log = _stderr,
) -> Path:
    """RUN_DIR (with latent_kmeans.npz) → RUN_DIR/export/latent_kmeans_<quantize>.tflite + card.

    int8 ranges: every training frame (up to MAX_REPRESENTATIVE; with 200, on MNIST, the top output
    level lay below the 0.999 training quantile) plus `synthetic` frames with drawn blemishes and
    `synthetic` rotated/flipped ones, to leave some room above the largest training distance.
    Distances beyond the range read the top level (still above any threshold set on training images).
    """
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    if not (run_dir / KMEANS_FILE).is_file():
        raise EdgeError(f"{run_dir} has no {KMEANS_FILE}; fit it with `edge train autoencoder --latent-kmeans K`")
    with np.load(run_dir / KMEANS_FILE) as npz:
        centroids = npz["centroids"]
    preprocessing = Preprocessing.model_validate(run["preprocessing"])
    model = build_distance_model(load_keras_run_model(run_dir, "edge train autoencoder"), centroids)
    rep = None
    if quantize == "int8":
        rep = _representative(run_dir, run, preprocessing, representative, synthetic, log)
    log(f"converting encoder + {len(centroids)} centroids to TFLite ({quantize}) …")
    with native_output_captured():
        blob = convert_keras(model, quantize, rep)
    target = export_target(run_dir, quantize, out, stem="latent_kmeans")
    target.write_bytes(blob)

    extra: dict = {"arch": "latent_kmeans", "k": int(len(centroids)), "run": str(run_dir.resolve())}
    extra.update(_parity(model, target, run, preprocessing, log))
    card = ModelCard(
        kind=CARD_KIND,
        quantization=quantize,
        preprocessing=preprocessing,  # type: ignore[arg-type]
        score=ScoreConfig(kind="mean"),
        source=str((run_dir / MODEL_FILE).resolve()),
        extra=extra,
    )
    write_card(target, card)
    log(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB): output = distance to the nearest latent centroid")
    log(f"next: edge calibrate {target} --normal DIR --out BUNDLE")
    return target


def _representative(
    run_dir: Path,
    run: dict,
    preprocessing: Preprocessing,
    representative: Optional[str | Path],
    synthetic: int,
    log: Log,
) -> np.ndarray:
    """int8 range frames: the training frames (or a given folder), plus drawn and turned ones."""
    rep = None
    if representative is None:
        # every training frame (up to a few thousand; the distance model is small): the output's
        # top int8 level must lie above the largest training distance, or a threshold at a high
        # training quantile lands on the saturated top level and nothing is ever flagged
        rep, _ = frames_from_files(run.get("train_files", []), preprocessing, MAX_REPRESENTATIVE)
        log(f"int8 ranges from {len(rep)} training frames (all of them, up to {MAX_REPRESENTATIVE})")
    if representative is not None or len(rep) == 0:
        rep = int8_representative(run_dir, run, preprocessing, representative, "a few dozen good images", log)
    if synthetic:
        rep = np.concatenate([rep, synthetic_defects(rep, synthetic), _turned(rep, synthetic)])
    return rep


def _parity(model, target: Path, run: dict, preprocessing: Preprocessing, log: Log) -> dict:
    """{"parity": …}: Keras distance vs .tflite distance on held-back frames; {} with fewer than two."""
    from edge.model import TFLiteModel

    frames, _ = frames_from_files(run.get("val_files", []) or run.get("train_files", []), preprocessing, 64)
    if len(frames) < 2:
        return {}
    keras_d = np.asarray(keras_outputs(model, to_unit_float(frames))).ravel()
    lite_d = TFLiteModel(target, num_threads=1).predict(frames)[0].ravel()
    r = float(np.corrcoef(keras_d, lite_d)[0, 1]) if np.std(keras_d) > 0 and np.std(lite_d) > 0 else None
    parity = {
        "images": int(len(frames)),
        "score_pearson": r,
        "score_max_abs_diff": float(np.abs(keras_d - lite_d).max()),
    }
    log(
        f"parity on {len(frames)} images: distance correlation {r if r is None else round(r, 4)}, "
        f"max |diff| {parity['score_max_abs_diff']:.3g}"
    )
    return {"parity": parity}
