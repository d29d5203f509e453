import cv2
import numpy as np

from edge.scoring import ScoreConfig, error_maps, frame_scores, peak_box


def test_error_map_is_squared_error_averaged_over_channels():
    inputs = np.full((1, 4, 4, 3), 255, np.uint8)
    recon = np.ones((1, 4, 4, 3), np.float32)
    recon[0, 1, 2, 0] = 0.0  # one channel of one pixel fully wrong
    maps = error_maps(inputs, recon)
    assert maps.shape == (1, 4, 4)
    assert np.isclose(maps[0, 1, 2], 1.0 / 3.0)
    assert np.isclose(maps.sum(), 1.0 / 3.0)


def test_ssim_error_is_zero_for_a_perfect_reconstruction_and_structural():
    """1 - SSIM forgives a uniform brightness shift more than a changed texture of the same energy."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0.3, 0.7, (64, 64)).astype(np.float32), (0, 0), 1.0)
    inputs = np.rint(texture * 255).astype(np.uint8)[None, :, :, None]
    exact = inputs.astype(np.float32) / 255
    assert np.abs(error_maps(inputs, exact, "ssim")).max() < 1e-4
    shifted = exact + 0.05  # brighter everywhere
    noise = rng.normal(0, 1, exact.shape).astype(np.float32)
    changed = exact + noise * (0.05 / noise.std())  # the same mean squared error, new structure
    assert np.isclose(error_maps(inputs, shifted).mean(), error_maps(inputs, changed).mean(), rtol=0.05)
    ssim_shift, ssim_change = error_maps(inputs, shifted, "ssim"), error_maps(inputs, changed, "ssim")
    assert ssim_shift.shape == (1, 64, 64) and 0 <= ssim_shift.min() and ssim_change.max() <= 1
    assert ssim_change.mean() > 3 * ssim_shift.mean()


def test_score_describes_itself():
    assert ScoreConfig(kind="max_blur", blur_sigma=4).describe() == "max_blur(sigma=4)"
    assert ScoreConfig(kind="mean", error="ssim").describe() == "mean of ssim error"


def test_score_kinds():
    maps = np.zeros((2, 20, 20), np.float32)
    maps[1, 5, 5] = 1.0  # one hot pixel
    mean = frame_scores(maps, ScoreConfig(kind="mean"))
    assert np.allclose(mean, [0.0, 1.0 / 400])
    topk = frame_scores(maps, ScoreConfig(kind="topk_mean", topk=0.01))  # 4 pixels
    assert np.allclose(topk, [0.0, 0.25])
    blur = frame_scores(maps, ScoreConfig(kind="max_blur", blur_sigma=1.0))
    assert blur[0] == 0.0 and 0.0 < blur[1] < 1.0
    # a small defect stands out far more in max_blur than in the whole-image mean
    assert blur[1] / mean[1] > 10


def test_peak_box_scales_to_frame():
    m = np.zeros((32, 32), np.float32)
    m[8:12, 20:24] = 1.0
    x, y, w, h = peak_box(m, (320, 640))  # frame is 10x taller, 20x wider
    assert 20 * 18 <= x <= 20 * 21 and 10 * 6 <= y <= 10 * 9
    assert w >= 20 and h >= 10
