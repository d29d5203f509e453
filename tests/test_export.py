"""`edge export`: real TFLite conversion of the shared tiny run, run by the device's interpreter code."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_edge, run_edge_in_process

from edge.bundle import ModelCard, card_path, read_card
from edge.detector import AutoencoderDetector
from edge.errors import EdgeError
from edge.imaging import list_images
from edge.model import TFLiteModel
from edge.preprocess import Preprocessing, Preprocessor
from train.data import load_images

pytest.importorskip("tensorflow")

REPO = Path(__file__).resolve().parent.parent


def edge_cli(*args: str) -> subprocess.CompletedProcess:
    return run_edge(*args)


def frames(folder: Path, preprocessing: Preprocessing) -> np.ndarray:
    return Preprocessor(preprocessing).prepare_batch(load_images(list_images(folder)).images)


def test_int8_model_takes_and_gives_uint8_and_has_its_card(int8_model):
    model = TFLiteModel(int8_model)
    assert model.input.dtype == "uint8" and [o.dtype for o in model.outputs] == ["uint8"]
    assert model.input_hwc == (32, 32, 1) and model.outputs[0].shape[1:] == (32, 32, 1)
    card = read_card(int8_model)
    assert card.kind == "autoencoder" and card.quantization == "int8"
    assert card.preprocessing == Preprocessing(width=32, height=32, color="grey")
    assert card.source.endswith("model.keras")
    parity = card.extra["parity"]
    assert parity["source"] == "validation" and parity["images"] == 6
    # A correlation over the run's 6 held-back images is noisy: the shared tiny run trained with seeds
    # 0-4 gives 0.935, 0.999, 0.997, 0.994, 0.978 here (0.935 is seed 0, the fixture's). The card must
    # carry a parity that says "same ranking"; the 20-image test below holds the strict 0.98 line.
    assert parity["score_pearson"] > 0.9


def test_int8_model_on_the_device_code_separates_defects(int8_model, synthetic_mvtec):
    """The exported model, through edge.detector as `edge run` uses it, scores defects higher."""
    from sklearn.metrics import roc_auc_score

    card = read_card(int8_model)
    detector = AutoencoderDetector(TFLiteModel(int8_model), card.score)
    good = detector.detect(frames(synthetic_mvtec / "test" / "good", card.preprocessing))
    bad = detector.detect(frames(synthetic_mvtec / "test" / "defect", card.preprocessing))
    assert good.maps.shape == (10, 32, 32)
    auroc = roc_auc_score([0] * 10 + [1] * 10, np.concatenate([good.scores, bad.scores]))
    assert auroc >= 0.8, auroc


def test_int8_parity_with_keras_on_unseen_good_and_defective_images(trained_run, int8_model, synthetic_mvtec):
    import keras

    from export.autoencoder import parity

    card = read_card(int8_model)
    model = keras.models.load_model(trained_run / "model.keras", compile=False)
    batch = np.concatenate([frames(synthetic_mvtec / "test" / d, card.preprocessing) for d in ("good", "defect")])
    result = parity(model, int8_model, batch, card.score, "test")
    assert result.images == 20
    assert result.score_pearson > 0.98  # int8 keeps the ranking of the scores
    assert result.score_max_rel_diff < 0.2
    assert result.pixel_max_abs_diff < 0.1  # a few uint8 steps


@pytest.mark.parametrize("quantize, pixel_tol", [("float32", 1e-4), ("float16", 1e-2), ("dynamic", 0.1)])
def test_float_exports_run_and_match_keras(trained_run, tmp_path, quantize, pixel_tol):
    from export.run import export_run

    messages: list[str] = []
    path = export_run(trained_run, quantize, out=tmp_path, log=messages.append)
    assert path == tmp_path / f"model_{quantize}.tflite"
    model = TFLiteModel(path)
    assert model.input.dtype == "float32" and model.outputs[0].dtype == "float32"
    card = read_card(path)
    assert card.quantization == quantize
    parity = card.extra["parity"]
    assert parity["pixel_max_abs_diff"] < pixel_tol
    assert parity["score_pearson"] > 0.99
    assert any(m.startswith("parity on 6 validation images") for m in messages)


def test_int8_without_training_images_needs_representative(trained_run, tmp_path, synthetic_mvtec):
    from export.run import export_run

    moved = tmp_path / "run"
    shutil.copytree(trained_run, moved, ignore=shutil.ignore_patterns("export"))
    run = json.loads((moved / "run.json").read_text())
    run["train_files"] = [str(tmp_path / "gone" / Path(p).name) for p in run["train_files"]]
    run["val_files"] = [str(tmp_path / "gone" / Path(p).name) for p in run["val_files"]]
    (moved / "run.json").write_text(json.dumps(run))
    with pytest.raises(EdgeError, match="--representative DIR"):
        export_run(moved, "int8", log=lambda _m: None)
    assert not (moved / "export" / "model_int8.tflite").exists()

    messages: list[str] = []
    path = export_run(moved, "int8", representative=synthetic_mvtec / "test" / "good", log=messages.append)
    assert TFLiteModel(path).input.dtype == "uint8"
    assert "10 representative frames" in messages[0]
    assert "parity not checked" in "\n".join(messages)  # no image of the run is left to compare on
    assert "parity" not in read_card(path).extra


def test_cli_prints_the_model_path_last_on_stdout(trained_run, tmp_path):
    out = tmp_path / "m.tflite"
    result = run_edge_in_process("export", str(trained_run), "--quantize", "float16", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(out)]  # nothing else on stdout: TF's chatter is kept off it
    assert "parity on 6 validation images" in result.stderr
    assert ModelCard.model_validate_json(card_path(out).read_text()).quantization == "float16"
    assert "Traceback" not in result.stderr and "Saved artifact" not in result.stderr


def _one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def test_cli_missing_run_dir(tmp_path):
    _one_line_error(edge_cli("export", str(tmp_path / "nope")), "run folder not found")


def test_cli_run_dir_without_model(tmp_path):  # the real process is test_cli_missing_run_dir's
    (tmp_path / "run.json").write_text("{}")
    _one_line_error(run_edge_in_process("export", str(tmp_path)), "no model.keras")


def test_cli_unknown_quantization(trained_run):
    _one_line_error(run_edge_in_process("export", str(trained_run), "--quantize", "int4"), "unknown --quantize 'int4'")


MAGNETIC_TILE = REPO.parent / "shared" / "datasets" / "magnetic-tile"


@pytest.mark.skipif(not (MAGNETIC_TILE / "train" / "good").is_dir(), reason="needs ../shared/datasets/magnetic-tile")
def test_int8_keeps_score_ranking_on_real_magnetic_tile(tmp_path):
    """Real, dark, textured images are where a BatchNorm left after the activation wrecked int8;
    with the default architecture int8 must keep the ranking of the scores.
    Data: Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects", The Visual Computer 2020."""
    from export.run import export_run
    from train.autoencoder import train_autoencoder

    subset = tmp_path / "good"
    subset.mkdir()
    for path in list_images(MAGNETIC_TILE / "train" / "good")[::8]:  # 70 images keep it quick
        (subset / path.name).symlink_to(path)
    # 12 epochs of batch 8 at 32 px: enough for the old layer order (BatchNorm after LeakyReLU) to
    # fail, score correlation -0.21 / 0.31 / 0.975 and worst score off by 346 / 219 / 51 % (seeds
    # 0 / 1 / 2); the default gives 0.9991 / 0.9990 / 0.9999 and 7 / 10 / 6 %. Same verdicts at
    # 64 px and with 140 images, which cost twice the time.
    run = train_autoencoder(
        subset,
        tmp_path / "run",
        size=32,
        epochs=12,
        batch_size=8,
        patience=0,
        seed=0,
        threads=1,
        progress=False,
        log=lambda _m: None,
    )
    parity = read_card(export_run(run, "int8", log=lambda _m: None)).extra["parity"]
    assert parity["images"] == 7
    assert parity["score_pearson"] > 0.99, parity
    assert parity["score_max_rel_diff"] < 0.2, parity


def _two_output_model():
    import keras

    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.BatchNormalization()(features))
    return keras.Model(inputs, [keras.layers.Dense(2)(pooled), features])


def _tflite_outputs(flatbuffer: bytes, tmp_path: Path, frames_u8: np.ndarray) -> list[np.ndarray]:
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuffer)
    return sorted(TFLiteModel(path).predict(frames_u8), key=lambda o: o.ndim)


def test_the_frozen_conversion_and_the_savedmodel_fallback_give_keras_outputs(tmp_path, monkeypatch, caplog):
    """convert_keras converts the traced inference function (export.convert._converter); where a
    TensorFlow release no longer offers that path it falls back to from_keras_model. Both must give
    the Keras model's own outputs, every output, with no deprecation notice on the terminal."""
    import tensorflow as tf

    from export.convert import convert_keras

    model = _two_output_model()
    frames_u8 = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    expected = sorted((np.asarray(o) for o in model(frames_u8 / np.float32(255), training=False)), key=np.ndim)
    frozen = _tflite_outputs(convert_keras(model, "float32"), tmp_path, frames_u8)
    assert not [r for r in caplog.records if "trackable_obj" in r.getMessage()]

    def gone(*_args, **_kwargs):
        raise AttributeError("from_concrete_functions was removed")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_concrete_functions", gone)
    fallback = _tflite_outputs(convert_keras(model, "float32"), tmp_path, frames_u8)
    for outputs in (frozen, fallback):
        assert [o.shape[1:] for o in outputs] == [(2,), (8, 8, 4)]
        for got, want in zip(outputs, expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_keras_outputs_eager_and_traced_agree_output_by_output(monkeypatch):
    """train.keras_infer.keras_outputs: a few images run eagerly, many through model.predict; the
    parity checks and figures read the same outputs either way, in the model's output order."""
    import train.keras_infer as keras_infer

    model = _two_output_model()
    x = np.random.default_rng(1).random((5, 8, 8, 3), dtype=np.float32)
    eager = keras_infer.keras_outputs(model, x, batch_size=2)  # three batches, the last one short
    monkeypatch.setattr(keras_infer, "EAGER_MAX_PIXELS", 0)
    traced = keras_infer.keras_outputs(model, x, batch_size=2)
    assert [o.shape for o in eager] == [o.shape for o in traced] == [(5, 2), (5, 8, 8, 4)]
    for a, b in zip(eager, traced, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
