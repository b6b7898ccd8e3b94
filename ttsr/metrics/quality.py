"""PSNR and SSIM in the mmediting conventions, on HxWx3 uint8 RGB images.

Both crop ``crop_border`` pixels from every side (0 = no crop) and work on [0, 255] values in
float64.  ``convert_to='y'`` scores the BT.601 luma of mmcv ``bgr2ycbcr(y_only=True)``.
SSIM is Wang et al.'s with an 11x11 Gaussian window (sigma 1.5) applied only where it fits
("valid"), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, averaged over the channels.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CONVENTIONS = ("rgb", "y", "mmediting-0.x")
SSIM_MODES = ("standard", "mmediting-0.x")

SSIM_WINDOW = 11
_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
# RGB channel that mmediting 0.x SSIM scores alone: channel 0 of its BGR arrays.
_BLUE = 2


def _gaussian_kernel() -> np.ndarray:
    """1-D kernel of cv2.getGaussianKernel(11, 1.5); its outer product is mmediting's 2-D window."""
    offsets = np.arange(SSIM_WINDOW, dtype=np.float64) - (SSIM_WINDOW - 1) / 2
    kernel = np.exp(-(offsets ** 2) / (2 * _SIGMA ** 2))
    normalised: np.ndarray = kernel / kernel.sum()
    return normalised


_KERNEL = _gaussian_kernel()


def _prepare(pred: np.ndarray, gt: np.ndarray, crop_border: int,
             convert_to: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Check, convert to float64 (luma if asked) and crop; returns two HxWxC arrays."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"expected two HxWx3 images of the same size, got {pred.shape} and {gt.shape}")
    if crop_border < 0 or 2 * crop_border >= min(pred.shape[:2]):
        raise ValueError(f"crop_border {crop_border} leaves nothing of a {pred.shape[0]}x{pred.shape[1]} image; "
                         f"use a border in [0, {(min(pred.shape[:2]) - 1) // 2}]")
    images = [pred.astype(np.float64), gt.astype(np.float64)]
    if convert_to is not None:
        if convert_to.lower() != "y":
            raise ValueError(f"convert_to must be None or 'y', got {convert_to!r}")
        images = [16.0 + image @ np.array([65.481, 128.553, 24.966]) / 255.0 for image in images]
        images = [image[..., None] for image in images]
    if crop_border:
        images = [image[crop_border:-crop_border, crop_border:-crop_border] for image in images]
    return images[0], images[1]


def psnr(pred: np.ndarray, gt: np.ndarray, crop_border: int = 4, convert_to: str | None = None) -> float:
    """Peak signal-to-noise ratio in dB over all channels (data range 255); inf for identical images."""
    pred, gt = _prepare(pred, gt, crop_border, convert_to)
    mse = float(np.mean((pred - gt) ** 2))
    return math.inf if mse == 0 else 20.0 * math.log10(255.0 / math.sqrt(mse))


def _filter_valid(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian filtering of an HxW array where the whole window fits ("valid")."""
    rows = sliding_window_view(image, SSIM_WINDOW, axis=0) @ _KERNEL
    filtered: np.ndarray = sliding_window_view(rows, SSIM_WINDOW, axis=1) @ _KERNEL
    return filtered


def _ssim_channel(pred: np.ndarray, gt: np.ndarray) -> float:
    mu_pred, mu_gt = _filter_valid(pred), _filter_valid(gt)
    var_pred = _filter_valid(pred * pred) - mu_pred ** 2
    var_gt = _filter_valid(gt * gt) - mu_gt ** 2
    covariance = _filter_valid(pred * gt) - mu_pred * mu_gt
    ssim_map = ((2 * mu_pred * mu_gt + _C1) * (2 * covariance + _C2)
                / ((mu_pred ** 2 + mu_gt ** 2 + _C1) * (var_pred + var_gt + _C2)))
    return float(ssim_map.mean())


def ssim(pred: np.ndarray, gt: np.ndarray, crop_border: int = 4, convert_to: str | None = None,
         mode: str = "standard") -> float:
    """Structural similarity, mean over the channels.

    ``mode='mmediting-0.x'`` reproduces the SSIM that mmediting 0.x reported (and the TTSR model zoo
    published): its crop ``img[cb:-cb, cb:-cb, None]`` added an axis, so only the first channel of its
    BGR image, blue, was scored.  The bug needs a crop, so with ``crop_border=0`` or on Y this mode
    equals ``'standard'``, as in mmediting (open-mmlab/mmagic issue #1342).
    """
    if mode not in SSIM_MODES:
        raise ValueError(f"SSIM mode must be one of {SSIM_MODES}, got {mode!r}")
    pred, gt = _prepare(pred, gt, crop_border, convert_to)
    if min(pred.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping, "
                         f"got {pred.shape[0]}x{pred.shape[1]}; use larger images or a smaller crop_border")
    channels = range(pred.shape[2])
    if mode == "mmediting-0.x" and crop_border and pred.shape[2] == 3:
        channels = range(_BLUE, _BLUE + 1)
    return float(np.mean([_ssim_channel(pred[..., c], gt[..., c]) for c in channels]))


def score(pred: np.ndarray, gt: np.ndarray, convention: str, crop_border: int = 4) -> tuple[float, float]:
    """(PSNR, SSIM) in one of ``CONVENTIONS``: 'rgb', 'y', or 'mmediting-0.x' (RGB PSNR, blue-only SSIM)."""
    if convention == "rgb":
        return psnr(pred, gt, crop_border), ssim(pred, gt, crop_border)
    if convention == "y":
        return psnr(pred, gt, crop_border, "y"), ssim(pred, gt, crop_border, "y")
    if convention == "mmediting-0.x":
        return psnr(pred, gt, crop_border), ssim(pred, gt, crop_border, mode="mmediting-0.x")
    raise ValueError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
