import json

import pytest

from edge.bundle import (
    SCHEMA_VERSION,
    Manifest,
    ModelInfo,
    TensorSpec,
    Threshold,
    load_bundle,
    write_bundle,
)
from edge.errors import EdgeError
from edge.preprocess import Preprocessing
from edge.scoring import ScoreConfig


def _manifest() -> Manifest:
    spec = TensorSpec(shape=[1, 8, 8, 1], dtype="uint8", scale=1 / 255, zero_point=0)
    return Manifest(
        model=ModelInfo(file="model.tflite", sha256="", quantization="int8", input=spec, outputs=[spec]),
        preprocessing=Preprocessing(width=8, height=8),
        score=ScoreConfig(kind="max_blur"),
        threshold=Threshold(value=0.01, method="quantile:0.999"),
    )


@pytest.fixture
def bundle_dir(tmp_path):
    model = tmp_path / "src.tflite"
    model.write_bytes(b"pretend flatbuffer")
    write_bundle(tmp_path / "bundle", _manifest(), model)
    return tmp_path / "bundle"


def test_round_trip_verifies_hash(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.threshold == 0.01
    assert bundle.manifest.score.kind == "max_blur"
    assert len(bundle.manifest.model.sha256) == 64
    assert load_bundle(bundle_dir / "bundle.json").path == bundle_dir


def test_tampered_model_is_refused(bundle_dir):
    (bundle_dir / "model.tflite").write_bytes(b"someone swapped the model")
    with pytest.raises(EdgeError, match="hash mismatch.*re-run `edge calibrate`"):
        load_bundle(bundle_dir)


def test_unknown_schema_version_is_refused(bundle_dir):
    path = bundle_dir / "bundle.json"
    raw = json.loads(path.read_text())
    raw["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(raw))
    with pytest.raises(EdgeError, match="schema version"):
        load_bundle(bundle_dir)


def test_unknown_key_is_refused(bundle_dir):
    path = bundle_dir / "bundle.json"
    raw = json.loads(path.read_text())
    raw["threshold"]["valeu"] = 3
    path.write_text(json.dumps(raw))
    with pytest.raises(EdgeError, match="threshold.valeu"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda raw: raw["threshold"].update(value=float("nan")), "threshold.value"),
        (lambda raw: raw["model"]["input"].update(scale=float("inf")), "model.input.scale"),
        (lambda raw: raw.update(metrics={"image_auroc": float("nan")}), "metrics.image_auroc"),
        (lambda raw: raw.update(extra={"cam": {"bias": [0.5, float("-inf")]}}), "extra.cam.bias.1"),
    ],
)
def test_nan_and_infinity_anywhere_in_bundle_json_are_refused(bundle_dir, edit, key):
    """A `threshold: NaN` bundle used to load, run and alert on nothing, without a word."""
    path = bundle_dir / "bundle.json"
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))  # NaN, Infinity, -Infinity: what Python's json writes
    with pytest.raises(EdgeError, match=rf"bundle.json is invalid: {key}: must be a finite number, not"):
        load_bundle(bundle_dir)


def test_a_number_too_large_for_a_float_is_refused(bundle_dir):
    path = bundle_dir / "bundle.json"
    path.write_text(path.read_text().replace('"value": 0.01', '"value": 1e999'))
    with pytest.raises(EdgeError, match="threshold.value: must be a finite number, not inf"):
        load_bundle(bundle_dir)


def test_nan_in_a_model_card_is_refused(tmp_path):
    from edge.bundle import ModelCard, read_card, write_card

    model = tmp_path / "model.tflite"
    write_card(model, ModelCard(quantization="int8", preprocessing=Preprocessing(width=8, height=8)))
    card = model.with_suffix(".json")
    card.write_text(card.read_text().replace('"blur_sigma": 2.0', '"blur_sigma": NaN'))
    with pytest.raises(EdgeError, match="score.blur_sigma: must be a finite number, not nan"):
        read_card(model)


def test_bundle_json_that_is_not_text_is_one_line(bundle_dir):
    (bundle_dir / "bundle.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EdgeError, match="is not valid JSON"):
        load_bundle(bundle_dir)


def test_missing_bundle_and_missing_manifest(tmp_path):
    with pytest.raises(EdgeError, match="bundle not found"):
        load_bundle(tmp_path / "nope")
    with pytest.raises(EdgeError, match="no bundle.json"):
        load_bundle(tmp_path)


def test_mask_is_hashed_and_checked(tmp_path):
    from edge.tiling import GeometryConfig

    model = tmp_path / "src.tflite"
    model.write_bytes(b"pretend flatbuffer")
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "mask.png").write_bytes(b"pretend mask")
    manifest = _manifest()
    manifest.geometry = GeometryConfig(mask="mask.png")
    write_bundle(out, manifest, model)
    assert set(load_bundle(out).manifest.files) == {"mask.png"}
    (out / "mask.png").write_bytes(b"someone painted over the mask")
    with pytest.raises(EdgeError, match="mask.png was changed after calibration"):
        load_bundle(out)
    (out / "mask.png").unlink()
    with pytest.raises(EdgeError, match="bundle file missing"):
        load_bundle(out)
