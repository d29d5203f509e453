import numpy as np
import pytest
from pydantic import ValidationError

from edge.errors import EdgeError
from edge.preprocess import Preprocessing, Preprocessor, to_unit_float


def test_grey_frame_of_any_size_becomes_model_sized():
    pre = Preprocessor(Preprocessing(width=32, height=24, color="grey"))
    out = pre.prepare(np.full((480, 640, 3), 200, np.uint8))
    assert out.shape == (24, 32, 1) and out.dtype == np.uint8
    assert int(out.mean()) == 200


def test_colour_is_rgb_order():
    pre = Preprocessor(Preprocessing(width=8, height=8, color="rgb"))
    bgr = np.zeros((16, 16, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's BGR
    out = pre.prepare(bgr)
    assert out.shape == (8, 8, 3)
    assert out[..., 2].min() == 255 and out[..., 0].max() == 0


def test_grey_input_to_rgb_model():
    out = Preprocessor(Preprocessing(width=8, height=8, color="rgb")).prepare(np.full((8, 8), 7, np.uint8))
    assert out.shape == (8, 8, 3) and (out == 7).all()


def test_roi_crops_before_resize():
    frame = np.zeros((100, 100), np.uint8)
    frame[10:30, 40:80] = 255
    pre = Preprocessor(Preprocessing(width=10, height=5, roi=(40, 10, 40, 20)))
    assert (pre.prepare(frame) == 255).all()


def test_roi_outside_frame_is_a_clear_error():
    pre = Preprocessor(Preprocessing(width=8, height=8, roi=(90, 90, 20, 20)))
    with pytest.raises(EdgeError, match="outside"):
        pre.prepare(np.zeros((100, 100), np.uint8))


def test_bad_config_is_refused():
    with pytest.raises(ValidationError):
        Preprocessing(width=0, height=8)
    with pytest.raises(ValidationError):
        Preprocessing(width=8, height=8, colour="grey")


def test_batch_and_unit_float():
    pre = Preprocessor(Preprocessing(width=4, height=4))
    batch = pre.prepare_batch([np.zeros((9, 9), np.uint8), np.full((5, 7), 255, np.uint8)])
    assert batch.shape == (2, 4, 4, 1)
    f = to_unit_float(batch)
    assert f.dtype == np.float32 and f[0].max() == 0.0 and f[1].min() == 1.0
