"""Frame geometry: ROI, mask, overlapping tiles, stitching; one batched invoke per frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.detector import Detection
from edge.errors import EdgeError
from edge.preprocess import Preprocessing, Preprocessor
from edge.scoring import ScoreConfig
from edge.tiling import FrameScorer, GeometryConfig, Tiler, TilingConfig, grid


class BrightnessDetector:
    """A stand-in model with a known answer: the error map of a tile is its own brightness.

    So the stitched map must reproduce the frame (scaled to [0, 1]) wherever the tiles land.
    """

    label = "anomaly"

    def __init__(self, score: ScoreConfig | None = None):
        self.score = score or ScoreConfig(kind="max_blur")
        self.batches: list[int] = []

    def detect(self, batch_u8: np.ndarray) -> Detection:
        self.batches.append(len(batch_u8))
        maps = batch_u8.astype(np.float32).mean(axis=3) / 255.0
        return Detection(maps.reshape(len(maps), -1).max(axis=1), maps)


def grey_frame(h: int, w: int, spot: tuple[int, int] | None = None, size: int = 5) -> np.ndarray:
    frame = np.zeros((h, w), np.uint8)
    if spot is not None:
        x, y = spot
        frame[y : y + size, x : x + size] = 255
    return frame


def assert_box_around(box, x, y, size, slack=3):
    """The alert box holds the defect and is not much bigger (peak_box smooths the map a little)."""
    bx, by, bw, bh = box
    assert bx <= x and by <= y and bx + bw >= x + size and by + bh >= y + size, box
    assert bx >= x - slack and by >= y - slack and bw <= size + 2 * slack and bh <= size + 2 * slack, box


@pytest.mark.parametrize("length,tile,overlap", [(1280, 64, 0.25), (100, 64, 0.5), (65, 64, 0.0), (720, 128, 0.1)])
def test_grid_covers_the_frame_with_at_least_the_requested_overlap(length, tile, overlap):
    starts = grid(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    gaps = np.diff(starts)
    assert (gaps > 0).all()
    assert (tile - gaps >= int(tile * overlap) - 1).all()  # neighbours share at least the overlap


def test_smaller_than_a_tile_is_one_tile():
    assert grid(50, 64, 0.25) == [0]


def test_defect_in_one_tile_lands_at_its_place_in_the_stitched_map():
    pre = Preprocessing(width=32, height=32, color="grey")
    tiler = Tiler(pre, GeometryConfig(tiling=TilingConfig(overlap=0.25)))
    frame = grey_frame(90, 150, spot=(121, 63))
    detector = BrightnessDetector()
    scored = FrameScorer(detector, tiler).score(frame)
    layout = tiler.layout(frame.shape)
    assert detector.batches == [len(layout.tiles)] and len(layout.tiles) > 1  # all tiles in ONE invoke
    assert scored.map.shape == frame.shape  # tiles at the model size: the map is at frame resolution
    np.testing.assert_allclose(scored.map, frame / 255.0, atol=1e-6)
    assert_box_around(tiler.box(scored.map, frame.shape), 121, 63, 5)


def test_overlaps_are_averaged():
    pre = Preprocessing(width=32, height=32, color="grey")
    tiler = Tiler(pre, GeometryConfig(tiling=TilingConfig(overlap=0.5)))
    layout = tiler.layout((32, 64))
    assert [t[0] for t in layout.tiles] == [0, 16, 32]
    maps = np.stack([np.full((32, 32), v, np.float32) for v in (1.0, 2.0, 4.0)])
    heat = tiler.stitch(maps, (32, 64))
    assert heat[5, 8] == 1.0  # first tile only
    assert heat[5, 20] == pytest.approx(1.5)  # tiles 0 and 1
    assert heat[5, 40] == pytest.approx(3.0)  # tiles 1 and 2
    assert heat[5, 60] == 4.0


def test_larger_tiles_are_resized_and_the_map_follows_their_scale():
    pre = Preprocessing(width=32, height=32, color="grey")
    tiler = Tiler(pre, GeometryConfig(tiling=TilingConfig(tile=(64, 64), overlap=0.0)))
    frame = grey_frame(128, 192, spot=(130, 70), size=8)
    scored = FrameScorer(BrightnessDetector(), tiler).score(frame)
    assert scored.map.shape == (64, 96)  # half the frame: 32 model pixels per 64 frame pixels
    assert_box_around(tiler.box(scored.map, frame.shape), 130, 70, 8, slack=5)


def test_roi_crops_and_boxes_come_back_in_frame_pixels():
    pre = Preprocessing(width=32, height=32, color="grey")
    tiler = Tiler(pre, GeometryConfig(roi=(40, 20, 96, 64), tiling=TilingConfig()))
    frame = grey_frame(120, 200, spot=(100, 50))
    frame[0:10, 0:10] = 255  # outside the ROI: must not show
    scored = FrameScorer(BrightnessDetector(), tiler).score(frame)
    assert scored.map.shape == (64, 96)
    assert_box_around(tiler.box(scored.map, frame.shape), 100, 50, 5)
    canvas = tiler.frame_map(scored.map, frame.shape)
    assert canvas.shape == frame.shape and canvas[:10, :10].max() == 0 and canvas[52, 102] == 1.0


def test_roi_given_at_run_time_replaces_the_bundle_roi():
    pre = Preprocessing(width=32, height=32, color="grey", roi=(0, 0, 32, 32))
    assert Tiler(pre, GeometryConfig(roi=(10, 10, 40, 40))).roi == (10, 10, 40, 40)
    assert Tiler(pre).roi == (0, 0, 32, 32)


def test_without_tiling_the_model_input_is_the_preprocessed_frame():
    pre = Preprocessing(width=32, height=32, color="rgb")
    frame = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    batch = Tiler(pre).tiles(frame)
    assert batch.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(batch[0], Preprocessor(pre).prepare(frame))


def test_colour_tiles_keep_three_channels():
    pre = Preprocessing(width=16, height=16, color="rgb")
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    batch = Tiler(pre, GeometryConfig(tiling=TilingConfig(overlap=0.0))).tiles(frame)
    assert batch.shape == (6, 16, 16, 3)
    assert (batch[..., 2] == 200).all() and (batch[..., 0] == 0).all()  # RGB order for the model


def test_mask_pixels_do_not_count(tmp_path):
    pre = Preprocessing(width=32, height=32, color="grey")
    frame = grey_frame(64, 64, spot=(5, 5), size=10)  # a "defect" on a fixture we mask out
    mask = np.full((64, 64), 255, np.uint8)
    mask[:24, :24] = 0
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    geometry = GeometryConfig(mask="mask.png", tiling=TilingConfig(overlap=0.0))
    for kind in ("mean", "max_blur", "topk_mean"):
        tiler = Tiler(pre, geometry, base=tmp_path)
        scored = FrameScorer(BrightnessDetector(ScoreConfig(kind=kind)), tiler).score(frame)
        assert scored.map[:24, :24].max() == 0.0
        assert scored.score == 0.0, kind
        unmasked = FrameScorer(
            BrightnessDetector(ScoreConfig(kind=kind)), Tiler(pre, GeometryConfig(tiling=TilingConfig(overlap=0.0)))
        ).score(frame)
        assert unmasked.score > 0.0, kind


def test_masked_mean_is_over_inspected_pixels_only(tmp_path):
    pre = Preprocessing(width=32, height=32, color="grey")
    frame = np.full((32, 32), 255, np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[:, 16:] = 255
    cv2.imwrite(str(tmp_path / "half.png"), mask)
    tiler = Tiler(pre, GeometryConfig(mask=str(tmp_path / "half.png")))
    scored = FrameScorer(BrightnessDetector(ScoreConfig(kind="mean")), tiler).score(frame)
    assert scored.score == pytest.approx(1.0)  # not 0.5: ignored pixels are not counted as good


def test_mask_at_roi_size_is_accepted(tmp_path):
    pre = Preprocessing(width=32, height=32, color="grey")
    cv2.imwrite(str(tmp_path / "m.png"), np.full((40, 50), 255, np.uint8))
    tiler = Tiler(pre, GeometryConfig(roi=(10, 10, 50, 40), mask="m.png"), base=tmp_path)
    assert tiler.layout((100, 100)).mask.all()


@pytest.mark.parametrize(
    "geometry,frame_hw,message",
    [
        (GeometryConfig(roi=(100, 0, 50, 50)), (64, 128), "outside the 128x64 frame"),
        (GeometryConfig(mask="wrong.png"), (64, 64), "draw the mask at the frame or ROI size"),
        (GeometryConfig(mask="black.png"), (64, 64), "all black"),
        (GeometryConfig(mask="missing.png"), (64, 64), "mask image not found"),
    ],
)
def test_bad_geometry_is_one_clear_error(tmp_path, geometry, frame_hw, message):
    cv2.imwrite(str(tmp_path / "wrong.png"), np.full((10, 10), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((64, 64), np.uint8))
    pre = Preprocessing(width=32, height=32, color="grey")
    with pytest.raises(EdgeError, match=message):
        Tiler(pre, geometry, base=tmp_path).tiles(np.zeros(frame_hw, np.uint8))


def test_tiling_config_validates():
    with pytest.raises(ValueError):
        TilingConfig(overlap=0.95)
    with pytest.raises(ValueError):
        TilingConfig(tile=(0, 64))
    with pytest.raises(ValueError):
        GeometryConfig(unknown=1)


# -- with the real TFLite model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def free_batch_model(trained_run, tmp_path_factory):
    """The tiny autoencoder exported with a free batch dimension (float32), resizable per frame."""
    import keras

    from export.convert import convert_keras

    path = tmp_path_factory.mktemp("free-batch") / "model.tflite"
    model = keras.models.load_model(trained_run / "model.keras", compile=False)
    path.write_bytes(convert_keras(model, "float32", fixed_batch=False))
    return path


@pytest.mark.parametrize("export", ["fixed", "free"])
def test_tiles_score_like_tiles_one_by_one(export, int8_model, free_batch_model):
    """Fixed-batch exports (the default) take tiles one by one and are never resized; a free-batch
    export takes all tiles of a frame in one invoke, its input tensor resized once."""
    from edge.detector import AutoencoderDetector
    from edge.model import TFLiteModel
    from edge.scoring import error_maps

    path = int8_model if export == "fixed" else free_batch_model
    model = TFLiteModel(path, num_threads=1)
    assert model.fixed_batch == (1 if export == "fixed" else None)
    detector = AutoencoderDetector(model, ScoreConfig(kind="max_blur"))
    pre = Preprocessing(width=32, height=32, color="grey")
    tiler = Tiler(pre, GeometryConfig(tiling=TilingConfig(overlap=0.25)))
    scorer = FrameScorer(detector, tiler)
    resizes = []
    original = model._interpreter.resize_tensor_input
    model._interpreter.resize_tensor_input = lambda *a, **k: (resizes.append(a[1]), original(*a, **k))[1]
    rng = np.random.default_rng(1)
    frames = [rng.integers(90, 160, (72, 120), dtype=np.uint8) for _ in range(4)]
    scored = [scorer.score(f) for f in frames]
    n_tiles = len(tiler.layout((72, 120)).tiles)
    assert resizes == ([] if export == "fixed" else [[n_tiles, 32, 32, 1]])  # free: once, for the first frame

    # one invoke per tile gives the same stitched map
    model2 = TFLiteModel(path, num_threads=1)
    tiles = tiler.tiles(frames[-1]).copy()
    maps = np.concatenate([error_maps(t[None], model2.predict(t[None])[0]) for t in tiles])
    np.testing.assert_allclose(tiler.stitch(maps, (72, 120)), scored[-1].map, atol=1e-5)


def test_a_folder_of_many_frame_sizes_does_not_grow_memory():
    tiler = Tiler(Preprocessing(width=16, height=16, color="grey"), GeometryConfig(tiling=TilingConfig()))
    for size in range(40, 60):
        assert tiler.tiles(np.zeros((size, size + 3), np.uint8)).shape[1:] == (16, 16, 1)
    assert len(tiler._layouts) <= 8
