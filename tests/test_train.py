"""`edge train autoencoder`: real Keras training on synthetic images (tests/synthetic.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_edge_case, run_edge_in_process
from synthetic import good_image, write_images

from edge.errors import EdgeError
from edge.imaging import list_images
from edge.preprocess import Preprocessing, Preprocessor, to_unit_float
from edge.scoring import ScoreConfig, error_maps, frame_scores

pytest.importorskip("tensorflow")


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """What a user sees on bad input: exit 2, one `error: …` line on stderr, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def tiny(**overrides):
    options = dict(
        size=16,
        filters=(4, 8),
        latent=8,
        epochs=2,
        batch_size=8,
        patience=0,
        seed=0,
        threads=1,
        progress=False,
        log=lambda _m: None,
    )
    options.update(overrides)
    return options


# --- the shared run (tests/conftest.py: 32x32 grey, 6 epochs on synthetic train/good) -------------


def test_run_folder_has_everything_export_and_calibration_need(trained_run, synthetic_mvtec):
    for name in ("model.keras", "run.json", "history.json", "history.png", "reconstructions.png"):
        assert (trained_run / name).stat().st_size > 0, name
    run = json.loads((trained_run / "run.json").read_text())
    assert run["kind"] == "autoencoder"
    assert Preprocessing.model_validate(run["preprocessing"]) == Preprocessing(width=32, height=32, color="grey")
    assert ScoreConfig.model_validate(run["score"]) == ScoreConfig()
    assert run["image_folder"] == str((synthetic_mvtec / "train" / "good").resolve())  # MVTec root → train/good
    train, val = set(run["train_files"]), set(run["val_files"])
    assert len(val) == 6 and not train & val  # 10 % of 60 held back, never trained on
    assert train | val == {str(p.resolve()) for p in list_images(synthetic_mvtec / "train" / "good")}
    assert run["seed"] == 0 and run["architecture"]["filters"] == [8, 16] and run["architecture"]["latent"] == 16
    assert run["epochs_run"] == 15 and run["edge_inspect_version"]


def test_history_is_sane(trained_run):
    history = json.loads((trained_run / "history.json").read_text())
    run = json.loads((trained_run / "run.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == run["epochs_run"]
    assert all(np.isfinite(history["loss"] + history["val_loss"]))
    assert history["loss"][-1] < history["loss"][0]  # it learned something
    assert run["best_val_loss"] == pytest.approx(min(history["val_loss"]))
    assert run["best_epoch"] == int(np.argmin(history["val_loss"])) + 1


def test_figures_are_images(trained_run):
    for name in ("history.png", "reconstructions.png"):
        image = cv2.imread(str(trained_run / name))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100, name


def test_model_reconstructs_held_back_images_better_than_their_mean_image(trained_run):
    """In inference mode (BatchNorm moving statistics), not just in training mode: a model whose
    moving statistics lag behind reconstructs flat grey and does worse than this trivial baseline."""
    import keras

    from train.data import frames_from_files

    run = json.loads((trained_run / "run.json").read_text())
    prep = Preprocessing.model_validate(run["preprocessing"])
    train, _ = frames_from_files(run["train_files"], prep)
    val, _ = frames_from_files(run["val_files"], prep)
    x_val = to_unit_float(val)
    rec = keras.models.load_model(trained_run / "model.keras").predict(x_val, verbose=0)
    model_mse = float(np.mean((x_val - rec) ** 2))
    mean_image_mse = float(np.mean((x_val - to_unit_float(train).mean(axis=0)) ** 2))
    assert model_mse < 0.5 * mean_image_mse
    assert model_mse == pytest.approx(run["best_val_loss"], rel=1e-3)  # what run.json reports is what it does


def test_trained_model_flags_defects(trained_run, synthetic_mvtec):
    """Even the tiny model reconstructs unseen good parts better than defective ones."""
    import keras

    model = keras.models.load_model(trained_run / "model.keras")
    prep = Preprocessor(Preprocessing(width=32, height=32))
    scores = {}
    for label in ("good", "defect"):
        frames = prep.prepare_batch(
            [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in list_images(synthetic_mvtec / "test" / label)]
        )
        rec = model.predict(to_unit_float(frames), verbose=0)
        scores[label] = frame_scores(error_maps(frames, rec), ScoreConfig())
    assert scores["defect"].mean() > scores["good"].mean()


# --- behaviour on other data -------------------------------------------------------------------


def test_same_seed_same_model_other_seed_other_model(tmp_path, synthetic_mvtec):
    import keras

    data = synthetic_mvtec / "train" / "good"
    runs = [train_run(data, tmp_path / name, seed) for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    weights = [keras.models.load_model(r / "model.keras").get_weights() for r in runs]
    histories = [json.loads((r / "history.json").read_text()) for r in runs]
    assert all(np.array_equal(x, y) for x, y in zip(weights[0], weights[1], strict=True))
    assert histories[0] == histories[1]
    assert (
        json.loads((runs[0] / "run.json").read_text())["val_files"]
        == json.loads((runs[1] / "run.json").read_text())["val_files"]
    )
    assert not all(np.array_equal(x, y) for x, y in zip(weights[0], weights[2], strict=True))


def train_run(data: Path, out: Path, seed: int) -> Path:
    from train.autoencoder import train_autoencoder

    return train_autoencoder(data, out, **tiny(seed=seed))


def test_colour_is_inferred_and_mixed_channels_can_be_forced(tmp_path):
    import keras

    from train.autoencoder import train_autoencoder
    from train.data import load_training_images

    colour = tmp_path / "colour"
    write_images(colour, 6, seed=1, size=32, color=True)
    run = train_autoencoder(colour, tmp_path / "rgb", **tiny())
    assert json.loads((run / "run.json").read_text())["preprocessing"]["color"] == "rgb"
    assert keras.models.load_model(run / "model.keras").input_shape == (None, 16, 16, 3)

    write_images(colour, 3, seed=2, size=32)  # grey files among colour ones (named like the others: overwrite 3)
    with pytest.raises(EdgeError, match="mixed channel counts"):
        train_autoencoder(colour, tmp_path / "mixed", **tiny())
    # --color grey converts them all: the reading train_autoencoder does (its run.json records this
    # preprocessing and the model takes its input shape), without a second training to show it
    forced = load_training_images(colour, 16, "grey")
    assert forced.preprocessing.color == "grey" and forced.frames.shape == (6, 16, 16, 1)


def test_architecture_matches_input_and_refuses_sizes_it_cannot_mirror():
    from train.autoencoder import build_autoencoder, parse_filters

    model = build_autoencoder((48, 48, 3), (8, 16, 32), 12)
    assert model.input_shape == model.output_shape == (None, 48, 48, 3)
    assert model.get_layer("latent").output.shape[-1] == 12
    with pytest.raises(EdgeError, match="not divisible by 8"):
        build_autoencoder((36, 36, 1), (8, 16, 32), 12)
    assert parse_filters("32, 64") == (32, 64)
    with pytest.raises(EdgeError, match="--filters"):
        parse_filters("32,x")


# --- the command line --------------------------------------------------------------------------


def test_cli_trains_on_mixed_sizes_skips_a_truncated_file_and_says_where_things_went(tmp_path):
    """Different sizes get resized; a truncated file is skipped and counted, not fatal; the run says
    where everything went (one end-to-end training for all of it: each costs seconds of tracing)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "good"
    folder.mkdir()
    for i, size in enumerate([40, 64, 48, 64, 40, 56, 64, 64]):
        cv2.imwrite(str(folder / f"img_{i}.png"), good_image(rng, size))
    data = (folder / "img_0.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "run"
    result = run_edge_in_process(  # in this process, fds captured: TensorFlow's C++ notices would show
        "train", "autoencoder", "--arch", "conv", "--data", folder, "--out", out, "--size", "16",
        "--filters", "4,8", "--latent", "8", "--epochs", "1", "--threads", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "model.keras").is_file() and (out / "run.json").is_file()
    run = json.loads((out / "run.json").read_text())
    assert [Path(p).name for p in run["skipped_files"]] == ["cut.png"]
    assert len(run["train_files"]) + len(run["val_files"]) == 8
    assert "skipped 1 unreadable" in result.stderr and "different sizes" in result.stderr
    assert "epoch 1/1: loss" in result.stderr  # progress, one line per epoch when not on a terminal
    assert str(out / "model.keras") in result.stderr and "edge export" in result.stderr
    assert "Traceback" not in result.stderr and "remapper" not in result.stderr


@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "mixed", "filters", "size", "color"])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, case):
    folder = tmp_path / "data"
    extra: list[str] = []
    needles: tuple[str, ...] = ()
    if case == "missing":
        needles = ("folder not found",)
    elif case == "empty":
        folder.mkdir()
        needles = ("no images in",)
    elif case == "truncated":
        for path in write_images(folder, 3, seed=0):
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 3])
        needles = ("none of the 3",)
    elif case == "mixed":
        write_images(folder, 2, seed=0)
        cv2.imwrite(str(folder / "colour.png"), np.full((64, 64, 3), 120, np.uint8))
        needles = ("mixed channel counts", "--color")
    else:
        write_images(folder, 2, seed=0)
        extra, needles = {
            "filters": (["--filters", "32,abc"], ("--filters",)),
            "size": (["--size", "18"], ("not divisible by 4",)),
            "color": (["--color", "blue"], ("--color",)),
        }[case]
    # "missing" as a real process (what the process itself prints and returns); the rest in this one.
    result = run_edge_case(
        "train",
        "autoencoder",
        "--arch",
        "conv",
        "--data",
        str(folder),
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "1",
        *extra,
        real_process=case == "missing",
    )
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "run" / "model.keras").exists()
