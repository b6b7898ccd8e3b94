import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ttsr.metrics import CONVENTIONS, psnr, score, ssim

SKIMAGE_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def noisy_pair(shape=(40, 52, 3), seed=0, noise=20):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, shape).astype(np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return pred, gt


def luma(image):
    return 16.0 + image.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0


@pytest.mark.parametrize("offset", [1, 3, 10, 50])
def test_psnr_of_constant_offset(offset):
    gt = np.full((16, 20, 3), 100, np.uint8)
    pred = gt + np.uint8(offset)
    assert psnr(pred, gt) == pytest.approx(20 * math.log10(255 / offset), abs=1e-12)


def test_psnr_identical_is_inf():
    pred, _ = noisy_pair()
    assert psnr(pred, pred.copy()) == math.inf


def test_crop_border_excludes_the_border():
    pred, gt = noisy_pair((30, 30, 3))
    gt[4:-4, 4:-4] = pred[4:-4, 4:-4]
    assert psnr(pred, gt, crop_border=4) == math.inf
    assert psnr(pred, gt, crop_border=3) < math.inf
    assert psnr(pred, gt, crop_border=0) < math.inf
    assert ssim(pred, gt, crop_border=4) == pytest.approx(1.0, abs=1e-12)
    # Windows centred 5 px in still reach into the 4 px band.
    assert ssim(pred, gt, crop_border=0) < 1 - 1e-6


@pytest.mark.parametrize("border", [0, 4])
def test_psnr_matches_skimage(border):
    pred, gt = noisy_pair()
    inner = slice(border, -border) if border else slice(None)
    expected = peak_signal_noise_ratio(gt[inner, inner], pred[inner, inner], data_range=255)
    assert psnr(pred, gt, crop_border=border) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("border", [0, 4])
def test_ssim_rgb_matches_skimage(border):
    pred, gt = noisy_pair(seed=1)
    inner = slice(border, -border) if border else slice(None)
    expected = structural_similarity(gt[inner, inner], pred[inner, inner], channel_axis=-1, **SKIMAGE_SSIM)
    assert ssim(pred, gt, crop_border=border) == pytest.approx(expected, abs=1e-10)


def test_y_mode_matches_skimage_on_luma():
    pred, gt = noisy_pair(seed=2)
    pred_y, gt_y = luma(pred)[4:-4, 4:-4], luma(gt)[4:-4, 4:-4]
    assert psnr(pred, gt, convert_to="y") == pytest.approx(
        peak_signal_noise_ratio(gt_y, pred_y, data_range=255), abs=1e-10)
    assert ssim(pred, gt, convert_to="Y") == pytest.approx(
        structural_similarity(gt_y, pred_y, **SKIMAGE_SSIM), abs=1e-10)


def test_luma_of_white_and_black():
    black, white = np.zeros((20, 20, 3), np.uint8), np.full((20, 20, 3), 255, np.uint8)
    # Y(white) = 16 + 219 = 235, Y(black) = 16.
    assert psnr(black, white, convert_to="y") == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)


def test_mmediting_mode_is_blue_channel_ssim():
    pred, gt = noisy_pair(seed=3)
    # Distort the channels differently so that per-channel SSIMs differ.
    pred[..., 0] = gt[..., 0]
    pred[..., 2] = np.clip(gt[..., 2].astype(int) + 60 * (np.arange(gt.shape[1]) % 2), 0, 255)
    # mmediting 0.x: BGR arrays, crop img[cb:-cb, cb:-cb, None] -> (H', W', 1, 3), loop over axis 2 (length 1)
    # scoring img[..., 0] -> the first BGR channel.
    def scored_channel(rgb):
        cropped = rgb[..., ::-1][4:-4, 4:-4, None]
        assert cropped.shape[2] == 1
        return cropped[..., 0][..., 0]

    np.testing.assert_array_equal(scored_channel(gt), gt[4:-4, 4:-4, 2])
    expected = structural_similarity(scored_channel(gt), scored_channel(pred), **SKIMAGE_SSIM)
    old = ssim(pred, gt, mode="mmediting-0.x")
    assert old == pytest.approx(expected, abs=1e-10)
    assert abs(old - ssim(pred, gt)) > 0.05


def test_mmediting_mode_without_crop_or_on_y_is_standard():
    pred, gt = noisy_pair(seed=4)
    assert ssim(pred, gt, crop_border=0, mode="mmediting-0.x") == ssim(pred, gt, crop_border=0)
    assert ssim(pred, gt, convert_to="y", mode="mmediting-0.x") == ssim(pred, gt, convert_to="y")


def test_score_conventions():
    pred, gt = noisy_pair(seed=5)
    assert set(CONVENTIONS) == {"rgb", "y", "mmediting-0.x"}
    assert score(pred, gt, "rgb") == (psnr(pred, gt), ssim(pred, gt))
    assert score(pred, gt, "y", crop_border=0) == (psnr(pred, gt, 0, "y"), ssim(pred, gt, 0, "y"))
    assert score(pred, gt, "mmediting-0.x") == (psnr(pred, gt), ssim(pred, gt, mode="mmediting-0.x"))
    with pytest.raises(ValueError, match="unknown convention"):
        score(pred, gt, "bgr")


def test_bad_arguments():
    pred, gt = noisy_pair((24, 24, 3))
    with pytest.raises(ValueError, match="same size"):
        psnr(pred, gt[:-1])
    with pytest.raises(ValueError, match="crop_border 12"):
        psnr(pred, gt, crop_border=12)
    with pytest.raises(ValueError, match="convert_to"):
        psnr(pred, gt, convert_to="ycbcr")
    with pytest.raises(ValueError, match="11x11"):
        ssim(pred, gt, crop_border=7)
    with pytest.raises(ValueError, match="mode"):
        ssim(pred, gt, mode="matlab")
